//! perago-core: the pure Rust engine behind perago (no pyo3 here).
//!
//! The Python binding lives in `perago-py`; it maps [`Error`] to Python exceptions in one place.

pub mod cancel;
pub mod error;
pub mod hash;
pub mod lakefs;
pub mod pool;
pub mod transfer;

pub use cancel::CancelToken;
pub use error::{Error, Result};
