"""How to run a local MinIO (an S3-compatible object store) for lakeFS's ``s3`` blockstore.

MinIO listens on loopback only, with generated root credentials; the web console is disabled.
The one S3 call perago itself makes, creating the bucket, is signed here with AWS Signature
Version 4 (standard library only), so no S3 SDK is needed.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import os
import secrets
import string
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from perago.devservers.errors import DevServerError
from perago.devservers.process import LOOPBACK, answers_2xx, loopback_url

HEALTH_PATH = "/minio/health/live"
REGION = "us-east-1"
DEFAULT_BUCKET = "perago-dev"


@dataclass(frozen=True)
class MinioCredentials:
    access_key_id: str  # MINIO_ROOT_USER
    secret_access_key: str  # MINIO_ROOT_PASSWORD

    def __repr__(self) -> str:  # the secret never reaches logs or reprs
        return f"MinioCredentials(access_key_id={self.access_key_id!r}, secret_access_key=***)"


@dataclass(frozen=True)
class S3Target:
    """Where lakeFS's s3 blockstore keeps objects: a bucket on the dev MinIO."""

    endpoint: str  # http://127.0.0.1:<port>, path-style
    region: str
    bucket: str
    access_key_id: str
    secret_access_key: str

    def __repr__(self) -> str:
        return (
            f"S3Target(endpoint={self.endpoint!r}, region={self.region!r}, "
            f"bucket={self.bucket!r}, access_key_id={self.access_key_id!r}, "
            "secret_access_key=***)"
        )

    @property
    def namespace_root(self) -> str:
        """``s3://<bucket>``: repositories' storage namespaces live under it."""
        return f"s3://{self.bucket}"


def generate_credentials() -> MinioCredentials:
    alphabet = string.ascii_uppercase + string.digits
    key_id = "PERAGOMINIO" + "".join(secrets.choice(alphabet) for _ in range(9))
    return MinioCredentials(key_id, secrets.token_urlsafe(30))


def command(
    binary: Path, data_dir: Path, port: int, console_port: int, certs_dir: Path | None = None
) -> list[str]:
    # The console is disabled (MINIO_BROWSER=off); its address is still pinned to loopback.
    # With ``certs_dir`` (public.crt + private.key) MinIO serves https only.
    tls = [] if certs_dir is None else ["--certs-dir", str(certs_dir)]
    return [
        str(binary),
        "server",
        str(data_dir / "data"),
        "--address",
        f"{LOOPBACK}:{port}",
        "--console-address",
        f"{LOOPBACK}:{console_port}",
        *tls,
    ]


def environment(creds: MinioCredentials) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MINIO_", "AWS_"))}
    env.update(
        MINIO_ROOT_USER=creds.access_key_id,
        MINIO_ROOT_PASSWORD=creds.secret_access_key,
        MINIO_BROWSER="off",
        MINIO_UPDATE="off",
        MINIO_SITE_REGION=REGION,
    )
    return env


base_url = loopback_url


def is_healthy(url: str) -> bool:
    return answers_2xx(url + HEALTH_PATH)


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def signed_request(
    method: str,
    url: str,
    creds: MinioCredentials,
    *,
    region: str = REGION,
    body: bytes = b"",
    now: datetime.datetime | None = None,
) -> urllib.request.Request:
    """A request signed with AWS Signature Version 4 (header form, service ``s3``); a query
    string (``?uploads``, ``?prefix=a``) is signed in its canonical, sorted form."""
    parsed = urllib.parse.urlsplit(url)
    query = "&".join(
        f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
        for k, v in sorted(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))
    )
    moment = now or datetime.datetime.now(datetime.UTC)
    amz_date = moment.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    payload_hash = hashlib.sha256(body).hexdigest()
    host = parsed.netloc
    path = urllib.parse.quote(parsed.path or "/", safe="/-_.~")
    headers = {"host": host, "x-amz-content-sha256": payload_hash, "x-amz-date": amz_date}
    signed_headers = ";".join(sorted(headers))
    canonical = "\n".join(
        [
            method,
            path,
            query,
            "".join(f"{name}:{headers[name]}\n" for name in sorted(headers)),
            signed_headers,
            payload_hash,
        ]
    )
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = _hmac(("AWS4" + creds.secret_access_key).encode(), day)
    for part in (region, "s3", "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    request = urllib.request.Request(url, data=body if method in {"PUT", "POST"} else None)
    request.method = method
    request.add_header("x-amz-content-sha256", payload_hash)
    request.add_header("x-amz-date", amz_date)
    request.add_header(
        "Authorization",
        f"AWS4-HMAC-SHA256 Credential={creds.access_key_id}/{scope}, "
        f"SignedHeaders={signed_headers}, Signature={signature}",
    )
    return request


def s3_call(
    method: str, url: str, creds: MinioCredentials, *, timeout: float = 10.0
) -> tuple[int, bytes]:
    """Status and body of a signed S3 call (error statuses are returned, not raised)."""
    try:
        with urllib.request.urlopen(signed_request(method, url, creds), timeout=timeout) as resp:
            return int(resp.status), bytes(resp.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), bytes(exc.read() or b"")
    except (urllib.error.URLError, OSError) as exc:
        raise DevServerError(f"MinIO at {url} did not answer: {exc}") from exc


def ensure_bucket(
    endpoint: str, bucket: str, creds: MinioCredentials, *, init_timeout: float = 60.0
) -> bool:
    """Create ``bucket`` (path-style); False when it already existed and is ours.

    MinIO answers its liveness probe before its object layer is ready and refuses requests
    with 503 ``XMinioServerNotInitialized`` meanwhile: those are retried for ``init_timeout``.
    """
    deadline = time.monotonic() + init_timeout
    while True:
        status, body = s3_call("PUT", f"{endpoint}/{bucket}", creds)
        if status == 503 and b"XMinioServerNotInitialized" in body and time.monotonic() < deadline:
            time.sleep(0.2)
            continue
        break
    if 200 <= status < 300:
        return True
    if status == 409 and b"BucketAlreadyOwnedByYou" in body:
        return False
    raise DevServerError(
        f"creating bucket {bucket} on {endpoint} failed: HTTP {status}: "
        f"{body.decode(errors='replace')[:300]}"
    )
