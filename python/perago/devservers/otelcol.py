"""Build a small OpenTelemetry Collector from the Go module proxy, and configure it.

The collector has the OTLP receiver (gRPC and HTTP), the batch processor, and the file and debug
exporters: enough to take what perago's OpenTelemetry SDK sends and write it, one OTLP/JSON
object a line, to a file that tests and developers can read. It is built like MinIO (see
``provision.py``): into the cache, under a temporary name, guarded by a file lock.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from perago.devservers import paths
from perago.devservers.errors import DevServerError
from perago.devservers.process import LOOPBACK, free_port
from perago.devservers.provision import (
    Progress,
    _exclusive,
    _go_env,
    _run_logged,
    _which,
    print_progress,
)

# The collector ships two version lines from one release: the modules still at 0.x and the ones
# declared stable at 1.x. Every module of a release must come from that same release, and the
# contrib file exporter must match the core release exactly, or `go get` pulls two
# incompatible cores. v0.165.0 (stable v1.71.0, contrib v0.165.0) is the newest core release
# the proxy serves; its go.mod asks for go 1.26.0, no newer than this machine's Go, and it
# builds and runs here.
# v0.161.0 (stable v1.67.0, contrib v0.161.0) also builds and runs here with the same main.go,
# should the pin have to go back.
OTELCOL_VERSION = "v0.165.0"
OTELCOL_STABLE_VERSION = "v1.71.0"
CONTRIB_VERSION = "v0.165.0"

_CORE = "go.opentelemetry.io/collector"
_CONTRIB = "github.com/open-telemetry/opentelemetry-collector-contrib"

# Exactly the packages main.go imports, each pinned, so the build list is fixed by these versions
# alone (a module left out would be resolved to whatever is newest that day). Packages, not just
# their modules: `go get` of a package also records the checksums of everything it imports.
_PACKAGES: tuple[str, ...] = (
    f"{_CORE}/otelcol@{OTELCOL_VERSION}",
    f"{_CORE}/service/telemetry/otelconftelemetry@{OTELCOL_VERSION}",
    f"{_CORE}/receiver/otlpreceiver@{OTELCOL_VERSION}",
    f"{_CORE}/processor/batchprocessor@{OTELCOL_VERSION}",
    f"{_CORE}/exporter/debugexporter@{OTELCOL_VERSION}",
    f"{_CORE}/component@{OTELCOL_STABLE_VERSION}",
    f"{_CORE}/confmap@{OTELCOL_STABLE_VERSION}",
    f"{_CORE}/confmap/provider/envprovider@{OTELCOL_STABLE_VERSION}",
    f"{_CORE}/confmap/provider/fileprovider@{OTELCOL_STABLE_VERSION}",
    f"{_CORE}/exporter@{OTELCOL_STABLE_VERSION}",
    f"{_CORE}/processor@{OTELCOL_STABLE_VERSION}",
    f"{_CORE}/receiver@{OTELCOL_STABLE_VERSION}",
    f"{_CONTRIB}/exporter/fileexporter@{CONTRIB_VERSION}",
)

# A hand-written main instead of the `ocb` builder: ocb is one more program to fetch and pin,
# and all it would generate is this list of factories.
_MAIN_GO = """\
package main

import (
\t"log"

\t"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/fileexporter"
\t"go.opentelemetry.io/collector/component"
\t"go.opentelemetry.io/collector/confmap"
\t"go.opentelemetry.io/collector/confmap/provider/envprovider"
\t"go.opentelemetry.io/collector/confmap/provider/fileprovider"
\t"go.opentelemetry.io/collector/exporter"
\t"go.opentelemetry.io/collector/exporter/debugexporter"
\t"go.opentelemetry.io/collector/otelcol"
\t"go.opentelemetry.io/collector/processor"
\t"go.opentelemetry.io/collector/processor/batchprocessor"
\t"go.opentelemetry.io/collector/receiver"
\t"go.opentelemetry.io/collector/receiver/otlpreceiver"
\t"go.opentelemetry.io/collector/service/telemetry/otelconftelemetry"
)

func factories() (otelcol.Factories, error) {
\tvar f otelcol.Factories
\tvar err error
\tf.Receivers, err = otelcol.MakeFactoryMap[receiver.Factory](otlpreceiver.NewFactory())
\tif err != nil {
\t\treturn f, err
\t}
\tf.Processors, err = otelcol.MakeFactoryMap[processor.Factory](batchprocessor.NewFactory())
\tif err != nil {
\t\treturn f, err
\t}
\tf.Exporters, err = otelcol.MakeFactoryMap[exporter.Factory](
\t\tfileexporter.NewFactory(), debugexporter.NewFactory())
\tif err != nil {
\t\treturn f, err
\t}
\t// The service refuses to start without a telemetry factory.
\tf.Telemetry = otelconftelemetry.NewFactory()
\treturn f, nil
}

func main() {
\tsettings := otelcol.CollectorSettings{
\t\tFactories: factories,
\t\tBuildInfo: component.BuildInfo{
\t\t\tCommand:     "perago-otelcol",
\t\t\tDescription: "OpenTelemetry Collector for the perago dev servers",
\t\t\tVersion:     "@VERSION@",
\t\t},
\t\tConfigProviderSettings: otelcol.ConfigProviderSettings{
\t\t\tResolverSettings: confmap.ResolverSettings{
\t\t\t\tProviderFactories: []confmap.ProviderFactory{
\t\t\t\t\tfileprovider.NewFactory(),
\t\t\t\t\tenvprovider.NewFactory(),
\t\t\t\t},
\t\t\t\tDefaultScheme: "env",
\t\t\t},
\t\t},
\t}
\tif err := otelcol.NewCommand(settings).Execute(); err != nil {
\t\tlog.Fatal(err)
\t}
}
"""


@dataclass(frozen=True)
class OtelcolBinary:
    version: str
    otelcol: Path


def otelcol_dir(version: str = OTELCOL_VERSION) -> Path:
    return paths.servers_dir() / "otelcol" / version


def otelcol_binary(version: str = OTELCOL_VERSION) -> OtelcolBinary:
    return OtelcolBinary(version, otelcol_dir(version) / "bin" / "otelcol")


def cached_otelcol() -> OtelcolBinary | None:
    """The pinned collector if already built, without touching the network."""
    binary = otelcol_binary()
    return binary if binary.otelcol.is_file() else None


def _build_otelcol(version: str, progress: Progress) -> OtelcolBinary:
    go = _which("go", "/usr/local/go/bin")
    env = _go_env()
    root = otelcol_dir(version)
    src = root / "src"
    src.mkdir(parents=True, exist_ok=True)
    log = root / "build.log"
    log.write_text(f"# OpenTelemetry Collector {version} build, started {time.ctime()}\n")
    # Rewritten on every build so that an interrupted earlier attempt leaves nothing behind in
    # the requirements. `go 1.26.0` is upstream's own directive: with GOTOOLCHAIN=local an older
    # Go fails here with a clear message instead of deep inside the dependency graph.
    (src / "go.mod").write_text("module localbuild/otelcol\n\ngo 1.26.0\n")
    (src / "main.go").write_text(_MAIN_GO.replace("@VERSION@", version.removeprefix("v")))
    progress(f"downloading OpenTelemetry Collector {version} modules (cold: about 135 MB)")
    # No `go mod tidy`: it also resolves the test-only imports of the file exporter, and the
    # proxy refuses one of those (otlpencodingextension), although the build never needs it.
    _run_logged([go, "get", *_PACKAGES], cwd=src, env=env, log=log)
    binary = otelcol_binary(version)
    binary.otelcol.parent.mkdir(parents=True, exist_ok=True)
    partial = binary.otelcol.with_name(binary.otelcol.name + ".partial")
    progress(f"compiling OpenTelemetry Collector {version} (cold: a few minutes)")
    # -mod=readonly: after the pinned `go get`, a build that wants any other module is a mistake
    # in _PACKAGES, and should fail rather than quietly take that module's newest version.
    _run_logged(
        [go, "build", "-mod=readonly", "-trimpath", "-ldflags", "-s -w", "-o", str(partial), "."],
        cwd=src,
        env=env,
        log=log,
    )
    partial.replace(binary.otelcol)
    return binary


def ensure_otelcol(progress: Progress = print_progress) -> OtelcolBinary:
    """The cached collector, built from the Go module proxy on first use."""
    cached = cached_otelcol()
    if cached is not None:
        return cached
    with _exclusive(paths.servers_dir() / "otelcol.lock", progress):
        cached = cached_otelcol()
        if cached is not None:
            return cached
        started = time.monotonic()
        binary = _build_otelcol(OTELCOL_VERSION, progress)
        progress(
            f"built OpenTelemetry Collector {OTELCOL_VERSION} in {time.monotonic() - started:.0f}s"
        )
        return binary


def _yaml_string(value: str) -> str:
    # A JSON string is a valid YAML double-quoted scalar. The collector expands `${...}` in
    # every value, and `$$` is its escape for a literal `$`.
    return json.dumps(value.replace("$", "$$"))


def config_yaml(grpc_port: int, http_port: int, output_path: Path, *, debug: bool = False) -> str:
    """Collector config: OTLP on loopback in, traces and metrics out to ``output_path``.

    Each line of the output is one OTLP/JSON export request, ``{"resourceSpans": [...]}`` or
    ``{"resourceMetrics": [...]}``. The file is truncated when the collector starts. ``debug``
    also logs a line per batch on the collector's stderr.
    """
    exporters = '["file", "debug"]' if debug else '["file"]'
    return f"""\
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: "{LOOPBACK}:{grpc_port}"
      http:
        endpoint: "{LOOPBACK}:{http_port}"
processors:
  batch:
    # Readers poll the file: a short batch timeout and flush interval bound their wait to a
    # fraction of a second (the defaults add up to 1.2s).
    timeout: 100ms
exporters:
  file:
    path: {_yaml_string(str(output_path))}
    format: json
    # Without `rotation` the exporter writes through a buffer flushed on this interval, so a
    # reader may briefly see a last line without its newline; it should read whole lines only.
    flush_interval: 100ms
    create_directory: true
  debug:
    verbosity: basic
service:
  telemetry:
    # The default serves the collector's own metrics on localhost:8888, which would collide
    # between two collectors (or with anything else on that port).
    metrics:
      level: none
  pipelines:
    traces:
      receivers: ["otlp"]
      processors: ["batch"]
      exporters: {exporters}
    metrics:
      receivers: ["otlp"]
      processors: ["batch"]
      exporters: {exporters}
"""


def command(binary: Path, config_path: Path) -> list[str]:
    # The explicit scheme keeps a path with a colon in it from being read as another provider.
    return [str(binary), f"--config=file:{config_path}"]


@dataclass
class RunningCollector:
    """A collector process receiving OTLP/HTTP on loopback, writing what it gets to ``output``."""

    process: subprocess.Popen[bytes]
    endpoint: str  # the OTLP/HTTP base URL (OTEL_EXPORTER_OTLP_ENDPOINT)
    output: Path
    log: Path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_collector(directory: Path, binary: Path | None = None) -> RunningCollector:
    """Start the cached (or given) collector with its config and output under ``directory``;
    returns once its OTLP/HTTP port accepts connections."""
    program = binary if binary is not None else ensure_otelcol().otelcol
    directory.mkdir(parents=True, exist_ok=True)
    output = directory / "received.jsonl"
    grpc_port, http_port = free_port(), free_port()
    config = directory / "collector.yaml"
    config.write_text(config_yaml(grpc_port, http_port, output), encoding="utf-8")
    log = directory / "collector.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command(program, config),
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    running = RunningCollector(process, f"http://{LOOPBACK}:{http_port}", output, log)
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection((LOOPBACK, http_port), timeout=1):
                return running
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                running.stop()
                tail = log.read_text(errors="replace")[-2000:]
                raise DevServerError(f"the OpenTelemetry Collector did not start: {tail}") from None
            time.sleep(0.05)
