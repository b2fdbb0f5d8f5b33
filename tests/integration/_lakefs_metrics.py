"""lakeFS's own request counters (Prometheus ``/metrics``): what the servers saw, for tests that
count requests instead of trusting the client's report."""

from __future__ import annotations

import re
import urllib.request

_COUNT = re.compile(r"^api_request_duration_seconds_count\{([^}]*)\} ([0-9.e+]+)$", re.MULTILINE)
_OPERATION = re.compile(r'operation="([^"]+)"')


def operation_counts(server_url: str) -> dict[str, int]:
    """Requests served so far per API operation, lower-cased (``getobject``, ``uploadobject``)."""
    root = server_url.removesuffix("/").removesuffix("/api/v1")
    with urllib.request.urlopen(root + "/metrics", timeout=10) as response:
        text = response.read().decode()
    counts: dict[str, int] = {}
    for labels, value in _COUNT.findall(text):
        match = _OPERATION.search(labels)
        if match:
            name = match[1].lower()
            counts[name] = counts.get(name, 0) + int(float(value))
    return counts
