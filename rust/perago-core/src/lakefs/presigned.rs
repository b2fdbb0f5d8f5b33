//! Requests to presigned object-store URLs (S3, `MinIO`, ...), and lakeFS's staging and multipart
//! calls that hand them out.
//!
//! A presigned URL is a credential: it is never `Debug`-printed, and no error built here quotes
//! it, the object store's signing details, or a transport error that could embed it.

use std::fmt;
use std::io::Read;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use ureq::http::Response;
use ureq::Body;

use super::client::{
    error_body, lakefs_json, object_response, status_failure, transport_failure, LakeFsClient,
};
use super::objects::ObjectBody;
use crate::retry::Failure;

/// A presigned URL and when it stops working (Unix seconds), when lakeFS says.
#[derive(Clone, PartialEq, Eq)]
pub struct PresignedUrl {
    url: String,
    expires_at: Option<u64>,
}

impl fmt::Debug for PresignedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PresignedUrl")
            .field("url", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl PresignedUrl {
    /// `expiry` as lakeFS reports it: absent or 0 means unknown.
    pub fn new(url: String, expiry: Option<i64>) -> Self {
        let expires_at = expiry
            .and_then(|t| u64::try_from(t).ok())
            .filter(|&t| t > 0);
        Self { url, expires_at }
    }

    /// Whether the URL is known to expire within `margin` from now (a URL without a known
    /// expiry is trusted until the object store refuses it).
    pub fn expires_within(&self, margin: Duration) -> bool {
        let Some(expires_at) = self.expires_at else {
            return false;
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        now.saturating_add(margin.as_secs()) >= expires_at
    }
}

/// A request the object store refused because its signature no longer holds (HTTP 403): worth
/// one retry with a fresh URL, not more.
pub fn is_refused_signature(failure: &Failure) -> bool {
    failure.status == Some(403)
}

/// GET a presigned URL, optionally the byte range `[start, end)`. One try.
pub fn open_presigned(
    client: &LakeFsClient,
    url: &PresignedUrl,
    range: Option<(u64, u64)>,
) -> Result<ObjectBody, Failure> {
    let mut request = client.object_store().get(&url.url);
    if let Some((start, end)) = range {
        request = request.header("Range", format!("bytes={}-{}", start, end - 1));
    }
    let response = request.call().map_err(object_store_transport_failure)?;
    Ok(ObjectBody::new(object_response(
        response,
        range.is_some(),
        object_store_failure,
    )?))
}

/// PUT `len` bytes from `body` to a presigned URL (a whole object or one multipart part).
/// Returns the object store's `ETag`, unquoted. One try.
pub fn put_presigned(
    client: &LakeFsClient,
    url: &PresignedUrl,
    body: &mut dyn Read,
    len: u64,
) -> Result<String, Failure> {
    let mut response = client
        .object_store()
        .put(&url.url)
        .header("Content-Length", len.to_string())
        .send(ureq::SendBody::from_reader(body))
        .map_err(object_store_transport_failure)?;
    if !response.status().is_success() {
        return Err(object_store_failure(&mut response));
    }
    let etag = response
        .headers()
        .get("ETag")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().trim_matches('"').to_owned())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Failure::permanent(None, "object store answered a PUT without an ETag"))?;
    Ok(etag)
}

/// A transport failure on a presigned request, with every variant that can quote the URL
/// replaced by a fixed description.
#[allow(clippy::needless_pass_by_value)] // a `map_err` adapter
fn object_store_transport_failure(err: ureq::Error) -> Failure {
    match err {
        ureq::Error::BadUri(_) | ureq::Error::Http(_) => {
            Failure::permanent(None, "lakeFS handed out an unusable presigned URL")
        }
        ureq::Error::RequireHttpsOnly(_) | ureq::Error::ConnectProxyFailed(_) => {
            Failure::permanent(
                None,
                "the presigned URL cannot be reached under this TLS or proxy setting",
            )
        }
        other => {
            let mut failure = transport_failure(other);
            failure.detail = format!("object store: {}", failure.detail);
            failure
        }
    }
}

/// A refusal by the object store: its status and the `<Code>`/`<Message>` of its XML error
/// only (other elements, such as a canonical request, can quote the signature).
fn object_store_failure(response: &mut Response<Body>) -> Failure {
    let status = response.status().as_u16();
    let body = error_body(response);
    let mut detail = format!("object store HTTP {status}");
    let code = xml_element(&body, "Code");
    let message = xml_element(&body, "Message");
    for part in [code, message].into_iter().flatten() {
        detail.push_str(": ");
        detail.extend(part.chars().take(300));
    }
    Failure {
        transient: status >= 500 || status == 429 || status == 408,
        status: Some(status),
        detail,
    }
}

fn xml_element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find("</")? + start;
    let text = xml[start..end].trim();
    (!text.is_empty() && !text.contains("X-Amz-")).then_some(text)
}

#[derive(Deserialize)]
struct StagingLocationJson {
    physical_address: String,
    #[serde(default)]
    presigned_url: Option<String>,
    #[serde(default)]
    presigned_url_expiry: Option<i64>,
}

/// Where lakeFS wants an object staged, and the presigned URL to PUT it to.
#[derive(Clone, Debug)]
pub struct StagingLocation {
    pub physical_address: String,
    pub url: PresignedUrl,
}

fn lakefs_ok(request: Result<Response<Body>, ureq::Error>) -> Result<(), Failure> {
    let mut response = request.map_err(transport_failure)?;
    if !response.status().is_success() {
        return Err(status_failure(&mut response));
    }
    Ok(())
}

/// One path on one branch, for the staging and multipart calls.
#[derive(Clone, Copy, Debug)]
pub struct BranchObject<'a> {
    pub repo: &'a str,
    pub branch: &'a str,
    pub path: &'a str,
}

impl BranchObject<'_> {
    fn url(&self, client: &LakeFsClient, tail: &[&str], query: &[(&str, &str)]) -> String {
        let mut segments = vec![
            "repositories",
            self.repo,
            "branches",
            self.branch,
            "staging",
        ];
        segments.extend_from_slice(tail);
        let mut all_query = vec![("path", self.path)];
        all_query.extend_from_slice(query);
        client.url(&segments, &all_query)
    }
}

/// A fresh staging location with a presigned PUT URL (`getPhysicalAddress`). One try.
pub fn get_physical_address(
    client: &LakeFsClient,
    object: BranchObject<'_>,
) -> Result<StagingLocation, Failure> {
    let url = object.url(client, &["backing"], &[("presign", "true")]);
    let location: StagingLocationJson = lakefs_json(client.get(&url).call(), "staging location")?;
    let presigned = location
        .presigned_url
        .filter(|u| !u.is_empty())
        .ok_or_else(|| Failure::permanent(None, "lakeFS returned no presigned staging URL"))?;
    Ok(StagingLocation {
        url: PresignedUrl::new(presigned, location.presigned_url_expiry),
        physical_address: location.physical_address,
    })
}

/// Make the object at `physical_address` (uploaded there with `etag`) the branch's `path`
/// (`linkPhysicalAddress`). Idempotent for one address, so safe to retry. One try.
pub fn link_physical_address(
    client: &LakeFsClient,
    object: BranchObject<'_>,
    physical_address: &str,
    etag: &str,
    size: u64,
) -> Result<(), Failure> {
    let url = object.url(client, &["backing"], &[]);
    let payload = serde_json::json!({
        "staging": { "physical_address": physical_address },
        "checksum": etag,
        "size_bytes": size,
    });
    lakefs_ok(
        client
            .put(&url)
            .header("Content-Type", "application/json")
            .send(payload.to_string()),
    )
}

#[derive(Deserialize)]
struct MultipartJson {
    upload_id: String,
    physical_address: String,
    #[serde(default)]
    presigned_urls: Vec<String>,
}

/// A presigned multipart upload lakeFS opened: parts go to `part_urls[n - 1]`.
#[derive(Debug)]
pub struct MultipartUpload {
    pub upload_id: String,
    pub physical_address: String,
    pub part_urls: Vec<PresignedUrl>,
}

/// Open a presigned multipart upload of `parts` parts (`createPresignMultipartUpload`). One try.
pub fn create_multipart(
    client: &LakeFsClient,
    object: BranchObject<'_>,
    parts: usize,
) -> Result<MultipartUpload, Failure> {
    let count = parts.to_string();
    let url = object.url(client, &["pmpu"], &[("parts", &count)]);
    let upload: MultipartJson = lakefs_json(client.post(&url).send_empty(), "multipart upload")?;
    if upload.presigned_urls.len() != parts {
        let opened = MultipartUpload {
            upload_id: upload.upload_id,
            physical_address: upload.physical_address,
            part_urls: Vec::new(),
        };
        let _ = abort_multipart(client, object, &opened); // unusable: leave nothing behind
        return Err(Failure::permanent(
            None,
            format!(
                "lakeFS presigned {} of {parts} multipart parts",
                upload.presigned_urls.len()
            ),
        ));
    }
    Ok(MultipartUpload {
        part_urls: upload
            .presigned_urls
            .into_iter()
            .map(|u| PresignedUrl::new(u, None))
            .collect(),
        upload_id: upload.upload_id,
        physical_address: upload.physical_address,
    })
}

#[derive(Deserialize)]
struct UploadToJson {
    presigned_url: String,
}

/// A fresh presigned URL for part `part_number` (1-based) of an open upload (`uploadPart`).
pub fn presign_part(
    client: &LakeFsClient,
    object: BranchObject<'_>,
    upload: &MultipartUpload,
    part_number: usize,
) -> Result<PresignedUrl, Failure> {
    let number = part_number.to_string();
    let url = object.url(client, &["pmpu", &upload.upload_id, "parts", &number], &[]);
    let payload = serde_json::json!({ "physical_address": upload.physical_address });
    let to: UploadToJson = lakefs_json(
        client
            .put(&url)
            .header("Content-Type", "application/json")
            .send(payload.to_string()),
        "part URL",
    )?;
    Ok(PresignedUrl::new(to.presigned_url, None))
}

/// Assemble the parts (`ETag`s in part order) and link the object into the branch
/// (`completePresignMultipartUpload`). One try.
pub fn complete_multipart(
    client: &LakeFsClient,
    object: BranchObject<'_>,
    upload: &MultipartUpload,
    etags: &[String],
) -> Result<(), Failure> {
    let url = object.url(client, &["pmpu", &upload.upload_id], &[]);
    let parts: Vec<serde_json::Value> = etags
        .iter()
        .enumerate()
        .map(|(i, etag)| serde_json::json!({ "part_number": i + 1, "etag": etag }))
        .collect();
    let payload = serde_json::json!({
        "physical_address": upload.physical_address,
        "parts": parts,
    });
    lakefs_ok(
        client
            .put(&url)
            .header("Content-Type", "application/json")
            .send(payload.to_string()),
    )
}

/// Abort an open upload so no parts stay behind on the object store. One try.
pub fn abort_multipart(
    client: &LakeFsClient,
    object: BranchObject<'_>,
    upload: &MultipartUpload,
) -> Result<(), Failure> {
    let url = object.url(client, &["pmpu", &upload.upload_id], &[]);
    let payload = serde_json::json!({ "physical_address": upload.physical_address });
    lakefs_ok(
        client
            .delete(&url)
            .header("Content-Type", "application/json")
            .send(payload.to_string()),
    )
}

#[derive(Deserialize)]
struct StatJson {
    physical_address: String,
    #[serde(default)]
    physical_address_expiry: Option<i64>,
    #[serde(default)]
    size_bytes: Option<u64>,
}

fn stat(
    client: &LakeFsClient,
    repo: &str,
    reference: &str,
    path: &str,
    presign: bool,
) -> Result<StatJson, Failure> {
    let url = client.url(
        &["repositories", repo, "refs", reference, "objects", "stat"],
        &[
            ("path", path),
            ("presign", if presign { "true" } else { "false" }),
        ],
    );
    lakefs_json(client.get(&url).call(), "object stat")
}

/// The physical address lakeFS records for `path` on `reference` (`statObject`). One try.
pub fn physical_address(
    client: &LakeFsClient,
    repo: &str,
    reference: &str,
    path: &str,
) -> Result<String, Failure> {
    Ok(stat(client, repo, reference, path, false)?.physical_address)
}

/// A fresh presigned GET URL for one object (`statObject` with `presign=true`), and the size
/// lakeFS now records for it. One try.
pub fn presign_download(
    client: &LakeFsClient,
    repo: &str,
    reference: &str,
    path: &str,
) -> Result<(PresignedUrl, Option<u64>), Failure> {
    let stat = stat(client, repo, reference, path, true)?;
    if !stat.physical_address.starts_with("http") {
        return Err(Failure::permanent(
            None,
            "lakeFS returned no presigned URL for the object",
        ));
    }
    Ok((
        PresignedUrl::new(stat.physical_address, stat.physical_address_expiry),
        stat.size_bytes,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_never_show_in_debug() {
        let url = PresignedUrl::new(
            "https://s3/bucket/key?X-Amz-Signature=deadbeef".into(),
            Some(1_900_000_000),
        );
        let text = format!("{url:?}");
        assert!(
            !text.contains("deadbeef") && !text.contains("s3/bucket"),
            "{text}"
        );
        assert!(text.contains("1900000000"), "{text}");
    }

    #[test]
    fn expiry_is_judged_against_the_clock() {
        let past = PresignedUrl::new("u".into(), Some(1));
        assert!(past.expires_within(Duration::ZERO));
        let far = PresignedUrl::new("u".into(), Some(i64::from(u32::MAX) * 2));
        assert!(!far.expires_within(Duration::from_secs(60)));
        for unknown in [None, Some(0), Some(-5)] {
            assert!(!PresignedUrl::new("u".into(), unknown).expires_within(Duration::MAX));
        }
    }

    #[test]
    fn object_store_errors_keep_code_and_message_only() {
        let xml = "<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code>\
            <Message>Request has expired</Message>\
            <CanonicalRequest>GET /b/k X-Amz-Signature=abc</CanonicalRequest></Error>";
        assert_eq!(xml_element(xml, "Code"), Some("AccessDenied"));
        assert_eq!(xml_element(xml, "Message"), Some("Request has expired"));
        assert_eq!(xml_element(xml, "CanonicalRequest"), None);
        assert_eq!(xml_element("not xml", "Code"), None);
    }
}
