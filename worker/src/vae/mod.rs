//! The VAE task: the image-folder loader (`images`), the MLP VAE (`model`) with its
//! hand-written CPU passes (`fast`), its training loop (`train`) and the pictures it leaves
//! (`artifacts`).

pub mod artifacts;
pub mod fast;
pub mod images;
pub mod model;
pub mod train;
