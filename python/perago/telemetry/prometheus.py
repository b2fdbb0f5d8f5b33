"""The Prometheus scrape endpoint (``perago start --metrics-port``).

In thread mode the worker process serves its registry on the port itself. In process mode every
worker process serves its own registry on an ephemeral loopback port and tells the supervisor
which (a ``metrics <port>`` status line); the supervisor serves the port and answers each scrape
with the union of its own series and every live worker's, each worker's samples labelled with its
``worker_id`` so that equal series of two slots stay apart.
"""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from prometheus_client.registry import CollectorRegistry

LOOPBACK = "127.0.0.1"
# Where a host's scrape endpoint listens: every interface, as Prometheus exporters do (the
# series carry no secrets).
PUBLIC_BIND = "0.0.0.0"
SCRAPE_TIMEOUT_SECONDS = 2.0
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_REGISTRY: dict[str, CollectorRegistry] = {}


def process_registry() -> CollectorRegistry:
    """This process's own registry (never prometheus_client's global one, which holds the
    client library's process collectors and anything a task body registers)."""
    from prometheus_client.registry import CollectorRegistry

    return _REGISTRY.setdefault("process", CollectorRegistry(auto_describe=True))


def render(registry: CollectorRegistry) -> bytes:
    from prometheus_client.exposition import generate_latest

    return generate_latest(registry)


class _Handler(BaseHTTPRequestHandler):
    body: Callable[[], bytes]

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] not in ("/metrics", "/"):
            self.send_error(404)
            return
        try:
            payload = type(self).body()
        except Exception as exc:  # a broken scrape must never take the worker down
            self.send_error(500, type(exc).__name__)
            return
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        return None  # scrapes are not worth a log line each


def serve(body: Callable[[], bytes], *, host: str, port: int) -> ThreadingHTTPServer:
    """Serve ``body()`` at ``/metrics`` on a daemon thread; returns the bound server."""
    handler = type("MetricsHandler", (_Handler,), {"body": staticmethod(body)})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="perago-metrics", daemon=True).start()
    return server


def start_process_endpoint(
    *,
    host: str = PUBLIC_BIND,
    port: int | None = None,
    merge: Callable[[bytes], bytes] | None = None,
) -> tuple[PrometheusMetricReader, int]:
    """A reader into this process's registry, served on ``host:port`` (0: any free port);
    ``merge`` turns this process's exposition into what a scrape gets (a supervisor's)."""
    from opentelemetry.exporter.prometheus import PrometheusMetricReader

    registry = process_registry()
    reader = PrometheusMetricReader(registry=registry)
    if merge is None:
        server = serve(lambda: render(registry), host=host, port=port or 0)
    else:
        server = serve(lambda: merge(render(registry)), host=host, port=port or 0)
    return reader, int(server.server_address[1])


def _scrape(port: int) -> str:
    url = f"http://{LOOPBACK}:{port}/metrics"
    with urllib.request.urlopen(url, timeout=SCRAPE_TIMEOUT_SECONDS) as response:
        text: str = response.read().decode("utf-8")
        return text


def merged_exposition(own: bytes, workers: Sequence[tuple[str, int]]) -> bytes:
    """``own`` series plus each live worker's (``(worker_id, port)``), one exposition.

    A worker that does not answer in time is left out of this scrape (Prometheus sees its series
    go stale, the honest answer for a slot that is restarting).
    """
    from prometheus_client.parser import text_string_to_metric_families

    texts: list[tuple[str, str]] = []
    if workers:
        with ThreadPoolExecutor(max_workers=min(8, len(workers))) as pool:
            futures = [(worker, pool.submit(_scrape, port)) for worker, port in workers]
            for worker, future in futures:
                try:
                    texts.append((worker, future.result()))
                except Exception:  # a worker that cannot answer is skipped
                    continue
    families: dict[str, Any] = {}
    for family in text_string_to_metric_families(own.decode("utf-8")):
        families[family.name] = family
    for worker, text in texts:
        for family in text_string_to_metric_families(text):
            merged = families.setdefault(family.name, _empty_like(family))
            for sample in family.samples:
                labels = {**sample.labels, "worker_id": worker}
                merged.samples.append(sample._replace(labels=labels))
    return _render_families(families.values())


def _empty_like(family: Any) -> Any:
    from prometheus_client.metrics_core import Metric

    return Metric(family.name, family.documentation, family.type, family.unit)


def _render_families(families: Iterable[Any]) -> bytes:
    from prometheus_client.registry import CollectorRegistry

    class _Fixed:
        def collect(self) -> Iterator[Any]:
            yield from families

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed())
    return render(registry)
