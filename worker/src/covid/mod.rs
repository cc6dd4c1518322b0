//! The COVID-19 task: the sequence classifier (`model`), its hand-written CPU passes
//! (`bptt`), its training loop (`train`) and the pictures and files it leaves (`artifacts`).

pub mod artifacts;
pub mod bptt;
pub mod model;
pub mod train;
