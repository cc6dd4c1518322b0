//! Cross-process tests of wick live in `tests/`; this crate has no library code.
