//! The COVID-19 task: the sequence classifier (`model`), its hand-written CPU passes
//! (`bptt`), its training loop with model selection on a validation set (`train`), the
//! temperature scaling of its probabilities (`calibrate`) and the pictures and files it
//! leaves (`artifacts`).

pub mod artifacts;
pub mod bptt;
pub mod calibrate;
pub mod model;
pub mod train;
