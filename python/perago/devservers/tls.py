"""TLS material of a dev server: a directory holding its certificate, key and issuing CA.

The layout is MinIO's ``--certs-dir`` (``public.crt``, ``private.key``); lakeFS is pointed at the
same files. Clients trust ``ca.crt`` through ``SSL_CERT_FILE`` / ``REQUESTS_CA_BUNDLE``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TlsFiles:
    directory: Path

    @property
    def certificate(self) -> Path:
        return self.directory / "public.crt"

    @property
    def private_key(self) -> Path:
        return self.directory / "private.key"

    @property
    def ca_certificate(self) -> Path:
        return self.directory / "ca.crt"
