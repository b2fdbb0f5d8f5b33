//! The lakeFS REST API: the only module that speaks HTTP (one `ureq` agent per client).
//!
//! Its public surface is what `transfer` and the binding use: a configured [`LakeFsClient`],
//! listing, whole or ranged object reads, streaming uploads and bulk deletes, through lakeFS or
//! (`presigned`) directly against the object store. Each call is one
//! try classified into a [`crate::retry::Failure`] (transient or not, with lakeFS's message),
//! or runs its own retries when it owns the whole operation (listing, deletes).

mod capabilities;
mod client;
mod objects;
pub mod presigned;

pub use capabilities::{
    data_path, storage_capabilities, DataPath, StorageCapabilities, TransferMode,
};
pub use client::{ClientOptions, Credentials, LakeFsClient, CA_BUNDLE_VARIABLES};
pub use objects::{
    delete_objects, for_each_listing_page, list_objects, open_object, resolve_commit,
    upload_object, ObjectBody, ObjectInfo, PAGE_SIZE,
};
