//! Connection settings, authentication and response classification for lakeFS calls.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use percent_encoding::{utf8_percent_encode, AsciiSet, PercentEncode, NON_ALPHANUMERIC};
use ureq::http::Response;
use ureq::Body;

use super::capabilities::{StorageCapabilities, TransferMode};
use crate::error::{Error, Result};
use crate::retry::{Failure, RetryPolicy};

/// Variables naming a PEM bundle of trusted CA certificates, in the order they are consulted;
/// like OpenSSL and `requests`, a bundle replaces the built-in (Mozilla) roots.
pub const CA_BUNDLE_VARIABLES: [&str; 2] = ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"];

/// An access key pair. The secret is write-only: it never appears in `Debug` output.
#[derive(Clone)]
pub struct Credentials {
    access_key_id: String,
    secret_access_key: String,
}

impl Credentials {
    pub fn new(access_key_id: impl Into<String>, secret_access_key: impl Into<String>) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
        }
    }

    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    fn basic_authorization(&self) -> String {
        let pair = format!("{}:{}", self.access_key_id, self.secret_access_key);
        format!("Basic {}", base64(pair.as_bytes()))
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

/// Timeouts, retries and connection reuse of one client.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    pub retry: RetryPolicy,
    /// TCP (and TLS) connection establishment.
    pub connect_timeout: Duration,
    /// Longest silence on an established connection (each read or write), and the wait for
    /// response headers; large transfers are bounded by progress, not by total duration.
    pub io_timeout: Duration,
    /// Idle keep-alive connections kept for reuse; should be at least the transfer concurrency.
    pub max_idle_connections: usize,
    /// Whether bytes move through lakeFS or directly to the object store (presigned URLs).
    pub transfer_mode: TransferMode,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(10),
            io_timeout: Duration::from_secs(120),
            max_idle_connections: 64,
            transfer_mode: TransferMode::Auto,
        }
    }
}

/// A configured lakeFS endpoint. Cheap to share by reference across worker threads.
pub struct LakeFsClient {
    api_base: String,
    authorization: String,
    agent: ureq::Agent,
    retry: RetryPolicy,
    transfer_mode: TransferMode,
    /// `GET /config`, asked once, the first time a transfer needs it.
    capabilities: OnceLock<StorageCapabilities>,
}

const USER_AGENT: &str = concat!("perago/", env!("CARGO_PKG_VERSION"));

impl fmt::Debug for LakeFsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LakeFsClient")
            .field("api_base", &self.api_base)
            .field("retry", &self.retry)
            .field("transfer_mode", &self.transfer_mode)
            .finish_non_exhaustive()
    }
}

impl LakeFsClient {
    /// `endpoint` is the server URL, with or without the `/api/v1` suffix.
    pub fn new(endpoint: &str, credentials: &Credentials, options: ClientOptions) -> Result<Self> {
        let api_base = normalize_endpoint(endpoint)?;
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(options.connect_timeout))
            .timeout_recv_response(Some(options.io_timeout))
            .timeout_per_read(Some(options.io_timeout))
            .timeout_per_write(Some(options.io_timeout))
            .max_idle_connections(options.max_idle_connections)
            .max_idle_connections_per_host(options.max_idle_connections)
            .user_agent(USER_AGENT)
            .tls_config(tls_config_from_environment()?)
            .build();
        Ok(Self {
            authorization: credentials.basic_authorization(),
            agent: ureq::Agent::new_with_config(config),
            retry: options.retry,
            transfer_mode: options.transfer_mode,
            capabilities: OnceLock::new(),
            api_base,
        })
    }

    pub fn transfer_mode(&self) -> TransferMode {
        self.transfer_mode
    }

    pub(super) fn cached_capabilities(&self) -> &OnceLock<StorageCapabilities> {
        &self.capabilities
    }

    pub fn api_base(&self) -> &str {
        &self.api_base
    }

    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// Whether the endpoint names this machine (`localhost` or a loopback address; no DNS
    /// lookup): streams to it are CPU-bound, never limited by per-connection bandwidth.
    pub fn is_loopback(&self) -> bool {
        endpoint_is_loopback(&self.api_base)
    }

    /// `<api_base>/<seg>/<seg>...?k=v&...`, every segment and value percent-encoded.
    pub(super) fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> String {
        let mut url = self.api_base.clone();
        for segment in segments {
            url.push('/');
            url.extend(percent_encode(segment));
        }
        for (i, (key, value)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(key);
            url.push('=');
            url.extend(percent_encode(value));
        }
        url
    }

    pub(super) fn get(&self, url: &str) -> ureq::RequestBuilder<ureq::typestate::WithoutBody> {
        self.agent
            .get(url)
            .header("Authorization", &self.authorization)
    }

    pub(super) fn post(&self, url: &str) -> ureq::RequestBuilder<ureq::typestate::WithBody> {
        self.agent
            .post(url)
            .header("Authorization", &self.authorization)
    }

    pub(super) fn put(&self, url: &str) -> ureq::RequestBuilder<ureq::typestate::WithBody> {
        self.agent
            .put(url)
            .header("Authorization", &self.authorization)
    }

    pub(super) fn delete(&self, url: &str) -> ureq::RequestBuilder<ureq::typestate::WithBody> {
        self.agent
            .delete(url)
            .header("Authorization", &self.authorization)
            .force_send_body()
    }

    /// The shared agent, without lakeFS's credentials: presigned URLs carry their own signature
    /// (a second authorization would be refused by the object store).
    pub(super) fn object_store(&self) -> &ureq::Agent {
        &self.agent
    }
}

/// TLS roots: the PEM bundle named by the first of [`CA_BUNDLE_VARIABLES`] that is set and not
/// empty, else Mozilla's roots built into the binary.
fn tls_config_from_environment() -> Result<ureq::tls::TlsConfig> {
    let bundle = CA_BUNDLE_VARIABLES.iter().find_map(|name| {
        std::env::var_os(name)
            .filter(|value| !value.is_empty())
            .map(|value| (*name, value))
    });
    let builder = ureq::tls::TlsConfig::builder();
    let Some((variable, path)) = bundle else {
        return Ok(builder.build());
    };
    let certificates = read_ca_bundle(Path::new(&path)).map_err(|reason| {
        Error::InvalidArgument(format!(
            "{variable}={}: {reason}",
            Path::new(&path).display()
        ))
    })?;
    Ok(builder
        .root_certs(ureq::tls::RootCerts::Specific(Arc::new(certificates)))
        .build())
}

fn read_ca_bundle(
    path: &Path,
) -> std::result::Result<Vec<ureq::tls::Certificate<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read the CA bundle: {e}"))?;
    let mut certificates = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(cert)) => certificates.push(cert),
            Ok(_) => {}
            Err(e) => return Err(format!("not a PEM bundle: {e}")),
        }
    }
    if certificates.is_empty() {
        return Err("the CA bundle holds no PEM certificate".into());
    }
    Ok(certificates)
}

fn endpoint_is_loopback(url: &str) -> bool {
    let authority = url
        .split("://")
        .nth(1)
        .unwrap_or("")
        .split('/')
        .next()
        .unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or(""),
        None => authority
            .rsplit_once(':')
            .map_or(authority, |(host, _port)| host),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn normalize_endpoint(endpoint: &str) -> Result<String> {
    let trimmed = endpoint.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("http://")
        .or_else(|| trimmed.strip_prefix("https://"))
        .ok_or_else(|| {
            Error::InvalidArgument(format!(
                "lakeFS endpoint must start with http:// or https://: {trimmed:?}"
            ))
        })?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "lakeFS endpoint has no host: {trimmed:?}"
        )));
    }
    if authority.contains('@') {
        // Never echo it: the user part may hold a secret.
        return Err(Error::InvalidArgument(
            "lakeFS endpoint must not embed credentials; pass them separately".into(),
        ));
    }
    if trimmed.ends_with("/api/v1") {
        Ok(trimmed.to_owned())
    } else {
        Ok(format!("{trimmed}/api/v1"))
    }
}

/// Classify a failure to get a response at all (or to finish reading one).
#[allow(clippy::needless_pass_by_value)] // a `map_err` adapter: it receives the error by value
pub(super) fn transport_failure(err: ureq::Error) -> Failure {
    let transient = matches!(
        err,
        ureq::Error::Io(_)
            | ureq::Error::Timeout(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::Protocol(_)
            | ureq::Error::BodyStalled
    );
    Failure {
        transient,
        status: None,
        detail: err.to_string(),
    }
}

/// Turn a non-success response into a classified failure carrying lakeFS's own message.
pub(super) fn status_failure(response: &mut Response<Body>) -> Failure {
    let status = response.status().as_u16();
    failure_from_status(status, &error_body(response))
}

/// The start of an error response's body (enough for any message), or "" if unreadable.
pub(super) fn error_body(response: &mut Response<Body>) -> String {
    response
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_to_string()
        .unwrap_or_default()
}

/// The JSON body of a lakeFS answer (`what` names it in the error), or the classified failure
/// of a non-success status or a broken body. One try.
pub(super) fn lakefs_json<T: for<'de> serde::Deserialize<'de>>(
    request: std::result::Result<Response<Body>, ureq::Error>,
    what: &str,
) -> std::result::Result<T, Failure> {
    let mut response = request.map_err(transport_failure)?;
    if !response.status().is_success() {
        return Err(status_failure(&mut response));
    }
    let text = response
        .body_mut()
        .with_config()
        .limit(256 * 1024 * 1024)
        .read_to_string()
        .map_err(transport_failure)?;
    serde_json::from_str(&text)
        .map_err(|e| Failure::permanent(None, format!("unexpected {what} response: {e}")))
}

/// The body of an object GET that must answer 200 (or 206 for a `range`), else the failure
/// `refusal` classifies.
pub(super) fn object_response(
    mut response: Response<Body>,
    range: bool,
    refusal: fn(&mut Response<Body>) -> Failure,
) -> std::result::Result<ureq::BodyReader<'static>, Failure> {
    let status = response.status().as_u16();
    let expected = if range { 206 } else { 200 };
    if status != expected {
        if response.status().is_success() {
            return Err(Failure::permanent(
                Some(status),
                format!("expected HTTP {expected}, got HTTP {status}"),
            ));
        }
        return Err(refusal(&mut response));
    }
    Ok(response.into_body().into_reader())
}

/// Classify a non-success `status` whose body is `body` (lakeFS's JSON error or plain text).
fn failure_from_status(status: u16, body: &str) -> Failure {
    let message = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_else(|| body.to_owned());
    let mut detail = format!("HTTP {status}");
    let message = message.trim();
    if !message.is_empty() {
        detail.push_str(": ");
        detail.extend(message.chars().take(500));
    }
    Failure {
        transient: is_transient_status(status),
        status: Some(status),
        detail,
    }
}

/// HTTP statuses worth retrying: server-side trouble, throttling, request timeout.
fn is_transient_status(status: u16) -> bool {
    status >= 500 || status == 429 || status == 408
}

/// Everything but RFC 3986's unreserved characters (`A-Z a-z 0-9 - _ . ~`) is encoded, so a
/// value can be neither a path separator nor a query delimiter.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn percent_encode(value: &str) -> PercentEncode<'_> {
    utf8_percent_encode(value, COMPONENT)
}

fn base64(input: &[u8]) -> String {
    BASE64.encode(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn status_classification() {
        for s in [500, 502, 503, 504, 429, 408] {
            assert!(is_transient_status(s), "{s}");
        }
        for s in [400, 401, 403, 404, 409, 412] {
            assert!(!is_transient_status(s), "{s}");
        }
    }

    #[test]
    fn error_statuses_carry_the_servers_message_and_retry_class() {
        let failure = failure_from_status(404, r#"{"message":"object absent"}"#);
        assert_eq!(failure.status, Some(404));
        assert!(!failure.transient);
        assert_eq!(failure.detail, "HTTP 404: object absent");
        let failure = failure_from_status(503, "busy\n");
        assert!(
            failure.transient && failure.detail == "HTTP 503: busy",
            "{failure:?}"
        );
        assert_eq!(failure_from_status(502, "").detail, "HTTP 502");
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let creds = Credentials::new("AKIAEXAMPLE", "super-secret-value");
        let client =
            LakeFsClient::new("http://127.0.0.1:1", &creds, ClientOptions::default()).unwrap();
        for text in [format!("{creds:?}"), format!("{client:?}")] {
            assert!(!text.contains("super-secret-value"), "{text}");
            assert!(
                !text.contains(&base64(b"AKIAEXAMPLE:super-secret-value")),
                "{text}"
            );
        }
    }

    #[test]
    fn loopback_endpoints_are_recognised_without_dns() {
        for url in [
            "http://127.0.0.1:8000/api/v1",
            "http://localhost/api/v1",
            "http://[::1]:8000/api/v1",
            "https://127.3.4.5/api/v1",
        ] {
            assert!(endpoint_is_loopback(url), "{url}");
        }
        for url in [
            "http://10.0.0.7:8000/api/v1",
            "https://lakefs.example.com/api/v1",
            "http://[2001:db8::1]:8000/api/v1",
            "http://localhost.example.com/api/v1",
        ] {
            assert!(!endpoint_is_loopback(url), "{url}");
        }
    }

    #[test]
    fn endpoints_are_normalized_and_validated() {
        assert_eq!(
            normalize_endpoint("http://h:8000/").unwrap(),
            "http://h:8000/api/v1"
        );
        assert_eq!(
            normalize_endpoint("https://h/api/v1/").unwrap(),
            "https://h/api/v1"
        );
        assert!(normalize_endpoint("h:8000").is_err());
        assert!(normalize_endpoint("http://").is_err());
        let err = normalize_endpoint("http://key:topsecret@h").unwrap_err();
        assert!(!err.to_string().contains("topsecret"));
    }

    #[test]
    fn urls_encode_segments_and_query_values() {
        let client = LakeFsClient::new(
            "http://h",
            &Credentials::new("a", "b"),
            ClientOptions::default(),
        )
        .unwrap();
        assert_eq!(
            client.url(
                &["repositories", "r", "refs", "feat/x"],
                &[("path", "a b/ü&c")]
            ),
            "http://h/api/v1/repositories/r/refs/feat%2Fx?path=a%20b%2F%C3%BC%26c"
        );
    }
}
