//! A whole-object GET over a plain-HTTP connection of its own, handing the caller the socket
//! positioned at the first body byte so the kernel can move the body into a file (`splice`).
//!
//! ureq owns its sockets and copies every body byte through its own buffer; for objects of
//! hundreds of megabytes those copies are a measurable share of a download's CPU. This path
//! is taken only where it is certainly equivalent: `http://` endpoints without a configured
//! proxy, one request per connection (`Connection: close`), identity-encoded bodies with a
//! `Content-Length`. Anything else is reported as [`SocketGet::Unsuitable`] and the caller uses
//! the ureq path for that object.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::client::{failure_from_status, LakeFsClient, USER_AGENT};
use super::retry::Failure;

/// The response head may be at most this large (lakeFS sends well under 1 KiB).
const MAX_HEAD: usize = 64 << 10;
/// Bytes of an error body worth reading for its message.
const MAX_ERROR_BODY: usize = 64 << 10;

/// Where a plain-HTTP client connects: `host:port` for the socket, authority for `Host:`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PlainHttpTarget {
    host: String,
    port: u16,
    authority: String,
    /// The URL prefix (`http://authority`) that request URLs start with.
    origin: String,
}

impl PlainHttpTarget {
    /// `None` for `https://` endpoints (TLS stays with ureq).
    pub(crate) fn parse(api_base: &str) -> Option<Self> {
        let rest = api_base.strip_prefix("http://")?;
        let authority = rest.split('/').next()?.to_owned();
        let (host, port) = match authority.strip_prefix('[') {
            Some(bracketed) => {
                let (host, after) = bracketed.split_once(']')?;
                let port = match after.strip_prefix(':') {
                    Some(p) => p.parse().ok()?,
                    None if after.is_empty() => 80,
                    None => return None,
                };
                (host.to_owned(), port)
            }
            None => match authority.rsplit_once(':') {
                Some((host, port)) => (host.to_owned(), port.parse().ok()?),
                None => (authority.clone(), 80),
            },
        };
        if host.is_empty() {
            return None;
        }
        Some(Self {
            origin: format!("http://{authority}"),
            host,
            port,
            authority,
        })
    }
}

/// An object body waiting on its socket.
pub(crate) struct SocketBody {
    pub socket: TcpStream,
    /// Body bytes that arrived in the same reads as the response head.
    pub early_bytes: Vec<u8>,
    pub content_length: u64,
}

pub(crate) enum SocketGet {
    Body(SocketBody),
    /// The server answered in a form this path does not handle (a redirect, a chunked,
    /// compressed or unsized body); the caller fetches the object through ureq instead.
    Unsuitable,
}

/// Start reading the whole object `path` of `repo@reference`. `None` when the client's endpoint
/// cannot use this path at all (TLS or a proxy). One try, like `open_object`.
pub(crate) fn open_object_socket(
    client: &LakeFsClient,
    repo: &str,
    reference: &str,
    path: &str,
) -> Option<Result<SocketGet, Failure>> {
    let target = client.plain_http_target()?;
    let url = client.url(
        &["repositories", repo, "refs", reference, "objects"],
        &[("path", path), ("presign", "false")],
    );
    let request_target = url.strip_prefix(&target.origin)?;
    Some(get(client, target, request_target))
}

fn get(
    client: &LakeFsClient,
    target: &PlainHttpTarget,
    request_target: &str,
) -> Result<SocketGet, Failure> {
    let timeouts = client.timeouts();
    let mut socket = connect(target, timeouts.connect).map_err(|e| {
        Failure::transient(None, format!("connecting to {}: {e}", target.authority))
    })?;
    let io = |e: io::Error| Failure::transient(None, describe_io(&e));
    socket.set_read_timeout(Some(timeouts.io)).map_err(io)?;
    socket.set_write_timeout(Some(timeouts.io)).map_err(io)?;
    let request = format!(
        "GET {request_target} HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\nUser-Agent: {}\r\n\
         Accept-Encoding: identity\r\nConnection: close\r\n\r\n",
        target.authority,
        client.authorization(),
        USER_AGENT,
    );
    socket
        .write_all(request.as_bytes())
        .map_err(|e| Failure::transient(None, format!("sending request: {e}")))?;

    let (head, mut buffered) = read_head(&mut socket)?;
    match head.status {
        200 => {}
        // ureq follows redirects (an object store behind a proxy, say); this path does not.
        300..=399 => return Ok(SocketGet::Unsuitable),
        status if (200..300).contains(&status) => {
            return Err(Failure::permanent(
                Some(status),
                format!("expected HTTP 200, got HTTP {status}"),
            ))
        }
        status => {
            let limit = head
                .content_length
                .map_or(MAX_ERROR_BODY, |n| (n as usize).min(MAX_ERROR_BODY));
            if !head.chunked {
                buffered.truncate(limit);
                let _ = (&mut socket)
                    .take((limit - buffered.len()) as u64)
                    .read_to_end(&mut buffered);
            }
            let text = String::from_utf8_lossy(&buffered);
            return Err(failure_from_status(status, &text));
        }
    }
    let content_length = match head.content_length {
        Some(n) if !head.chunked && !head.encoded => n,
        _ => return Ok(SocketGet::Unsuitable),
    };
    if buffered.len() as u64 > content_length {
        return Err(Failure::transient(
            None,
            format!("server sent more than its {content_length}-byte content length"),
        ));
    }
    Ok(SocketGet::Body(SocketBody {
        socket,
        early_bytes: buffered,
        content_length,
    }))
}

fn connect(target: &PlainHttpTarget, timeout: Duration) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "host has no address");
    for address in (target.host.as_str(), target.port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&address, timeout) {
            Ok(socket) => return Ok(socket),
            Err(e) => last = e,
        }
    }
    Err(last)
}

pub(crate) fn describe_io(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            "timed out waiting for the server".into()
        }
        _ => format!("reading response: {e}"),
    }
}

#[derive(Debug, PartialEq, Eq)]
struct ResponseHead {
    status: u16,
    content_length: Option<u64>,
    chunked: bool,
    /// A `Content-Encoding` other than identity.
    encoded: bool,
}

/// Read until the end of the response head; returns it and the body bytes read past it.
fn read_head(socket: &mut impl Read) -> Result<(ResponseHead, Vec<u8>), Failure> {
    let mut buffer = vec![0u8; 16 << 10];
    let mut filled = 0;
    loop {
        match parse_head(&buffer[..filled])? {
            Some((head, len)) => {
                buffer.truncate(filled);
                buffer.drain(..len);
                return Ok((head, buffer));
            }
            None if filled == MAX_HEAD => {
                return Err(Failure::transient(None, "response head larger than 64 KiB"))
            }
            None => {}
        }
        if filled == buffer.len() {
            buffer.resize((buffer.len() * 2).min(MAX_HEAD), 0);
        }
        match socket.read(&mut buffer[filled..]) {
            Ok(0) => {
                return Err(Failure::transient(
                    None,
                    "connection closed before the response head",
                ))
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Failure::transient(None, describe_io(&e))),
        }
    }
}

/// `Some((head, head_length))` once `bytes` hold a whole response head.
fn parse_head(bytes: &[u8]) -> Result<Option<(ResponseHead, usize)>, Failure> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => {
            return Err(Failure::transient(
                None,
                format!("malformed response head: {e}"),
            ))
        }
    };
    let status = response.code.unwrap_or(0);
    if (100..200).contains(&status) {
        // An interim response (100 Continue) is never sent to a plain GET; refuse rather than
        // mis-frame the body.
        return Err(Failure::transient(
            Some(status),
            format!("unexpected interim response HTTP {status}"),
        ));
    }
    let mut head = ResponseHead {
        status,
        content_length: None,
        chunked: false,
        encoded: false,
    };
    for header in response.headers.iter() {
        let value = std::str::from_utf8(header.value).unwrap_or("").trim();
        if header.name.eq_ignore_ascii_case("content-length") {
            let parsed = value.parse::<u64>().map_err(|_| {
                Failure::transient(None, format!("invalid Content-Length {value:?}"))
            })?;
            if head.content_length.is_some_and(|n| n != parsed) {
                return Err(Failure::transient(
                    None,
                    "conflicting Content-Length headers",
                ));
            }
            head.content_length = Some(parsed);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            head.chunked = true;
        } else if header.name.eq_ignore_ascii_case("content-encoding") {
            head.encoded |= !value.eq_ignore_ascii_case("identity");
        }
    }
    Ok(Some((head, len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_targets_are_parsed_and_tls_is_left_to_ureq() {
        let t = PlainHttpTarget::parse("http://127.0.0.1:8000/api/v1").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", 8000));
        assert_eq!(t.origin, "http://127.0.0.1:8000");
        let t = PlainHttpTarget::parse("http://[::1]:9/api/v1").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.authority.as_str()),
            ("::1", 9, "[::1]:9")
        );
        let t = PlainHttpTarget::parse("http://lakefs/api/v1").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("lakefs", 80));
        assert!(PlainHttpTarget::parse("https://lakefs/api/v1").is_none());
        assert!(PlainHttpTarget::parse("http://h:notaport/api/v1").is_none());
    }

    fn head(text: &str) -> Result<Option<(ResponseHead, usize)>, Failure> {
        parse_head(text.as_bytes())
    }

    #[test]
    fn heads_are_framed_by_length_and_encoding() {
        let (h, len) = head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
            .unwrap()
            .unwrap();
        assert_eq!(len, 38);
        assert_eq!(h.content_length, Some(5));
        assert!(!h.chunked && !h.encoded);
        let (h, _) = head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(h.chunked);
        let (h, _) = head("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 1\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(h.encoded);
        assert!(head("HTTP/1.1 200 OK\r\nContent-Len").unwrap().is_none());
        assert!(head("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").is_err());
        assert!(head("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n").is_err());
        assert!(head("HTTP/1.1 100 Continue\r\n\r\n").is_err());
    }

    /// A client of a one-shot peer on 127.0.0.1 that answers any request with `response`.
    fn client_of_peer(response: &'static [u8]) -> LakeFsClient {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut peer, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") && peer.read(&mut byte).unwrap_or(0) == 1 {
                request.push(byte[0]);
            }
            let _ = peer.write_all(response);
        });
        LakeFsClient::new(
            &format!("http://{address}"),
            &super::super::Credentials::new("key", "secret"),
            super::super::ClientOptions::default(),
        )
        .unwrap()
    }

    fn open(response: &'static [u8]) -> Result<SocketGet, Failure> {
        open_object_socket(&client_of_peer(response), "repo", "main", "dir/x.bin").unwrap()
    }

    #[test]
    fn error_statuses_carry_the_servers_message_and_retry_class() {
        let wire = b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n\
                     Content-Length: 27\r\n\r\n{\"message\":\"object absent\"}";
        let failure = open(wire).err().unwrap();
        assert_eq!(failure.status, Some(404));
        assert!(!failure.transient);
        assert_eq!(failure.detail, "HTTP 404: object absent");
        let failure = open(b"HTTP/1.1 503 Busy\r\nContent-Length: 4\r\n\r\nbusy")
            .err()
            .unwrap();
        assert!(
            failure.transient && failure.detail == "HTTP 503: busy",
            "{failure:?}"
        );
        let failure = open(b"HTTP/1.1 206 Partial\r\nContent-Length: 0\r\n\r\n")
            .err()
            .unwrap();
        assert!(!failure.transient && failure.status == Some(206));
    }

    #[test]
    fn bodies_this_path_cannot_frame_are_left_to_ureq() {
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
        assert!(matches!(open(chunked), Ok(SocketGet::Unsuitable)));
        let no_length = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nabc";
        assert!(matches!(open(no_length), Ok(SocketGet::Unsuitable)));
        let gzip = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc";
        assert!(matches!(open(gzip), Ok(SocketGet::Unsuitable)));
        let moved = b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n";
        assert!(matches!(open(moved), Ok(SocketGet::Unsuitable)));
        match open(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel") {
            Ok(SocketGet::Body(body)) => {
                assert_eq!(body.content_length, 5);
                assert_eq!(body.early_bytes, b"hel");
            }
            _ => panic!("expected a body"),
        }
    }

    #[test]
    fn an_unreachable_server_is_a_transient_failure() {
        let client = LakeFsClient::new(
            "http://127.0.0.1:9",
            &super::super::Credentials::new("key", "secret"),
            super::super::ClientOptions::default(),
        )
        .unwrap();
        let failure = open_object_socket(&client, "r", "main", "x")
            .unwrap()
            .err()
            .unwrap();
        assert!(failure.transient && failure.status.is_none(), "{failure:?}");
        assert!(
            failure.detail.starts_with("connecting to 127.0.0.1:9"),
            "{}",
            failure.detail
        );
    }

    #[test]
    fn a_head_is_read_across_short_reads_and_keeps_the_early_body_bytes() {
        struct Trickle(Vec<u8>, usize);
        impl Read for Trickle {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(3).min(self.0.len() - self.1);
                buf[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
                self.1 += n;
                Ok(n)
            }
        }
        let mut wire = Trickle(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope".to_vec(),
            0,
        );
        let (h, early) = read_head(&mut wire).unwrap();
        assert_eq!(h.status, 404);
        assert!(b"nope".starts_with(&early));
        let mut cut = Trickle(b"HTTP/1.1 200 OK\r\n".to_vec(), 0);
        let err = read_head(&mut cut).err().unwrap();
        assert!(err.transient && err.detail.contains("before the response head"));
    }
}
