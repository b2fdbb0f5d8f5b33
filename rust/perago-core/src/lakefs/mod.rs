//! A small blocking client for the lakeFS REST API (the subset perago's transfers need).

pub mod client;
pub mod objects;
pub mod retry;
pub(crate) mod socket_get;

pub use client::{ClientOptions, Credentials, LakeFsClient};
pub use objects::{delete_objects, list_objects, ObjectInfo};
pub use retry::RetryPolicy;
