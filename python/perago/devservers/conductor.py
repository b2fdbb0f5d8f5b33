"""How to run Conductor OSS on loopback, offline, and tell when it is healthy."""

from __future__ import annotations

import json
import os
from pathlib import Path

from perago.devservers.process import LOOPBACK, http_get, loopback_url

HEALTH_PATH = "/health"


def command(java: Path, jar: Path, data_dir: Path, port: int, heap: str = "1g") -> list[str]:
    """Conductor 3.32.x with its default SQLite persistence/queue/index in ``data_dir``.

    Overrides: loopback bind, the gRPC server off (it would bind 0.0.0.0:8090), the AI
    integrations off (offline), no sample workflows.
    """
    db_url = f"jdbc:sqlite:{data_dir / 'conductor.db'}?busy_timeout=15000&journal_mode=WAL"
    return [
        str(java),
        f"-Xmx{heap}",
        "-XX:+UseSerialGC",  # 2 cores shared with builds: fewer GC threads
        "-XX:TieredStopAtLevel=1",  # faster start; dev/test throughput is ample
        "-Djava.net.preferIPv4Stack=true",
        "-jar",
        str(jar),
        f"--server.address={LOOPBACK}",
        f"--server.port={port}",
        f"--spring.datasource.url={db_url}",
        "--conductor.db.type=sqlite",
        "--conductor.queue.type=sqlite",
        "--conductor.indexing.type=sqlite",
        "--conductor.grpc-server.enabled=false",
        "--conductor.integrations.ai.enabled=false",
        "--conductor.app.ownerEmailMandatory=false",
        "--loadSample=false",
    ]


def environment() -> dict[str, str]:
    # Keep API keys of the developer's shell (OPENAI_API_KEY, ...) away from the server.
    return {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}


base_url = loopback_url


def api_url(port: int) -> str:
    return base_url(port) + "/api"


def is_healthy(url: str) -> bool:
    """``url`` is the server root (not …/api); healthy means ``{"healthy": true}``."""
    status, body = http_get(url + HEALTH_PATH)
    if status != 200:
        return False
    try:
        return bool(json.loads(body).get("healthy"))
    except (ValueError, AttributeError):
        return False
