//! The VAE task: the image-folder loader (`images`), the MLP VAE (`model`), its training
//! loop (`train`) and the pictures it leaves (`artifacts`).

pub mod artifacts;
pub mod images;
pub mod model;
pub mod train;
