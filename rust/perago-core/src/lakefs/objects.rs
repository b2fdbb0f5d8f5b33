//! Object-level lakeFS calls: paginated listing, (ranged) reads, streaming uploads, bulk deletes.

use std::io::Read;

use serde::Deserialize;

use super::client::{
    lakefs_json, object_response, status_failure, transport_failure, LakeFsClient,
};
use super::presigned::PresignedUrl;
use crate::cancel::CancelToken;
use crate::error::{Error, Result};
use crate::retry::{with_retries, AttemptError, Failure};

/// lakeFS returns at most this many entries per listing page and accepts at most this many paths
/// per bulk delete.
pub const PAGE_SIZE: usize = 1000;

/// One listed object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Full object path in the repository.
    pub path: String,
    pub size: u64,
    /// lakeFS checksum (an ETag-like digest; not BLAKE3).
    pub checksum: String,
    /// A presigned GET URL, when the listing asked for them.
    pub presigned: Option<PresignedUrl>,
    /// Where the object's bytes live in the object store; empty when `presigned` holds them
    /// (a presigned listing returns the URL in its place).
    pub physical_address: String,
}

#[derive(Deserialize)]
struct ListPage {
    pagination: Pagination,
    results: Vec<ListEntry>,
}

#[derive(Deserialize)]
struct Pagination {
    has_more: bool,
    #[serde(default)]
    next_offset: String,
}

#[derive(Deserialize)]
struct ListEntry {
    path: String,
    #[serde(default)]
    path_type: Option<String>,
    #[serde(default)]
    size_bytes: Option<u64>,
    #[serde(default)]
    checksum: String,
    #[serde(default)]
    physical_address: String,
    #[serde(default)]
    physical_address_expiry: Option<i64>,
}

/// All objects of `repo@reference` whose path starts with `raw_prefix` (exactly as given: callers
/// pass `"dir/"` to avoid sibling prefixes, or `""` for the whole repository). With `presign`,
/// every object carries a presigned GET URL (an error if the server hands out none).
pub fn list_objects(
    client: &LakeFsClient,
    repo: &str,
    reference: &str,
    raw_prefix: &str,
    presign: bool,
    cancel: &CancelToken,
) -> Result<Vec<ObjectInfo>> {
    let mut objects = Vec::new();
    for_each_listing_page(
        client,
        repo,
        reference,
        raw_prefix,
        presign,
        cancel,
        |page| {
            objects.extend(page);
            Ok(())
        },
    )?;
    Ok(objects)
}

/// [`list_objects`] one page (at most [`PAGE_SIZE`] objects) at a time, in listing order, so a
/// caller never needs to hold the whole listing.
pub fn for_each_listing_page(
    client: &LakeFsClient,
    repo: &str,
    reference: &str,
    raw_prefix: &str,
    presign: bool,
    cancel: &CancelToken,
    mut on_page: impl FnMut(Vec<ObjectInfo>) -> Result<()>,
) -> Result<()> {
    let mut after = String::new();
    let amount = PAGE_SIZE.to_string();
    let target = || format!("{repo}@{reference}:{raw_prefix}");
    loop {
        let url = client.url(
            &["repositories", repo, "refs", reference, "objects", "ls"],
            &[
                ("prefix", raw_prefix),
                ("after", &after),
                ("amount", &amount),
                ("user_metadata", "false"),
                ("presign", if presign { "true" } else { "false" }),
            ],
        );
        let page: ListPage = with_retries(
            client.retry_policy(),
            cancel,
            "list objects",
            &target,
            || Ok(lakefs_json(client.get(&url).call(), "listing")?),
        )?;
        let mut objects = Vec::with_capacity(page.results.len());
        for entry in page.results {
            // Only objects: listings without a delimiter never return common prefixes, but be safe.
            if entry.path_type.as_deref().is_none_or(|t| t == "object") {
                let (presigned, physical_address) = if presign {
                    if !entry.physical_address.starts_with("http") {
                        return Err(Error::LakeFs {
                            operation: "list objects",
                            target: target(),
                            status: None,
                            detail: format!(
                                "presigned listing returned no URL for {:?}",
                                entry.path
                            ),
                        });
                    }
                    (
                        Some(PresignedUrl::new(
                            entry.physical_address,
                            entry.physical_address_expiry,
                        )),
                        String::new(),
                    )
                } else {
                    (None, entry.physical_address)
                };
                objects.push(ObjectInfo {
                    path: entry.path,
                    size: entry.size_bytes.unwrap_or(0),
                    checksum: entry.checksum,
                    presigned,
                    physical_address,
                });
            }
        }
        on_page(objects)?;
        if !page.pagination.has_more {
            return Ok(());
        }
        if page.pagination.next_offset.is_empty() || page.pagination.next_offset == after {
            return Err(Error::LakeFs {
                operation: "list objects",
                target: target(),
                status: None,
                detail: "server reported more pages without a new offset".into(),
            });
        }
        after = page.pagination.next_offset;
    }
}

/// The commit id `reference` (a commit id, branch or tag) points at now.
pub fn resolve_commit(
    client: &LakeFsClient,
    repo: &str,
    reference: &str,
    cancel: &CancelToken,
) -> Result<String> {
    #[derive(Deserialize)]
    struct Commit {
        id: String,
    }
    let url = client.url(&["repositories", repo, "commits", reference], &[]);
    let commit: Commit = with_retries(
        client.retry_policy(),
        cancel,
        "get commit",
        &|| format!("{repo}@{reference}"),
        || Ok(lakefs_json(client.get(&url).call(), "commit")?),
    )?;
    Ok(commit.id)
}

/// The body of an object being received. A read error is the connection failing midway: the
/// caller retries the whole read (or range).
pub struct ObjectBody(ureq::BodyReader<'static>);

impl ObjectBody {
    pub(super) fn new(reader: ureq::BodyReader<'static>) -> Self {
        Self(reader)
    }
}

impl Read for ObjectBody {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

/// Start reading an object, optionally a byte range `[start, end)`. One try, no retry: the
/// caller retries the whole read because a body can fail midway.
pub fn open_object(
    client: &LakeFsClient,
    repo: &str,
    reference: &str,
    path: &str,
    range: Option<(u64, u64)>,
) -> std::result::Result<ObjectBody, Failure> {
    let url = client.url(
        &["repositories", repo, "refs", reference, "objects"],
        &[("path", path), ("presign", "false")],
    );
    let mut request = client.get(&url);
    if let Some((start, end)) = range {
        request = request.header("Range", format!("bytes={}-{}", start, end - 1));
    }
    let response = request.call().map_err(transport_failure)?;
    Ok(ObjectBody(object_response(
        response,
        range.is_some(),
        status_failure,
    )?))
}

/// Upload `len` bytes read from `body` as the object `path` on `branch` (raw octet-stream body,
/// streamed; never buffered whole). One try: the caller reopens the source for a retry.
pub fn upload_object(
    client: &LakeFsClient,
    repo: &str,
    branch: &str,
    path: &str,
    body: &mut dyn Read,
    len: u64,
) -> std::result::Result<(), Failure> {
    let url = client.url(
        &["repositories", repo, "branches", branch, "objects"],
        &[("path", path)],
    );
    let mut response = client
        .post(&url)
        .header("Content-Type", "application/octet-stream")
        .header("Content-Length", len.to_string())
        .send(ureq::SendBody::from_reader(body))
        .map_err(transport_failure)?;
    if !response.status().is_success() {
        return Err(status_failure(&mut response));
    }
    Ok(())
}

#[derive(Deserialize)]
struct DeleteErrors {
    #[serde(default)]
    errors: Vec<DeleteError>,
}

#[derive(Deserialize)]
struct DeleteError {
    #[serde(default)]
    path: String,
    #[serde(default)]
    message: String,
}

/// Delete `paths` from `branch` in bulk calls of at most [`PAGE_SIZE`] paths each.
/// Returns the number of paths submitted. Deleting a path that does not exist is not an error.
pub fn delete_objects(
    client: &LakeFsClient,
    repo: &str,
    branch: &str,
    paths: &[String],
    cancel: &CancelToken,
) -> Result<usize> {
    let url = client.url(
        &[
            "repositories",
            repo,
            "branches",
            branch,
            "objects",
            "delete",
        ],
        &[],
    );
    for batch in paths.chunks(PAGE_SIZE) {
        let payload = serde_json::to_vec(&serde_json::json!({ "paths": batch }))
            .map_err(|e| Error::InvalidArgument(format!("cannot encode delete request: {e}")))?;
        let target = || {
            format!(
                "{repo}@{branch}: {} paths starting at {:?}",
                batch.len(),
                batch.first().map(String::as_str).unwrap_or_default()
            )
        };
        with_retries(
            client.retry_policy(),
            cancel,
            "delete objects",
            &target,
            || {
                let mut response = client
                    .post(&url)
                    .header("Content-Type", "application/json")
                    .send(&payload[..])
                    .map_err(transport_failure)?;
                if !response.status().is_success() {
                    return Err(status_failure(&mut response).into());
                }
                let text = response
                    .body_mut()
                    .with_config()
                    .limit(64 * 1024 * 1024)
                    .read_to_string()
                    .unwrap_or_default();
                let errors = serde_json::from_str::<DeleteErrors>(&text)
                    .map(|d| d.errors)
                    .unwrap_or_default();
                match errors.first() {
                    None => Ok(()),
                    Some(first) => Err(AttemptError::Remote(Failure::permanent(
                        None,
                        format!(
                            "{} paths not deleted; first {:?}: {}",
                            errors.len(),
                            first.path,
                            first.message
                        ),
                    ))),
                }
            },
        )?;
    }
    Ok(paths.len())
}
