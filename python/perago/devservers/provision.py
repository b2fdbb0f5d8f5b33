"""Build lakeFS/lakectl and MinIO from the Go module proxy; fetch the Conductor jar from Maven.

Everything lands under the cache (``paths.servers_dir()``), is built into a temporary name and
renamed into place, and is guarded by a per-artifact file lock, so two concurrent provisioners
never see or produce a half-written program. A second run finds the cached program and returns
at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from perago.devservers import paths
from perago.devservers.errors import DevServerError
from perago.devservers.java import JavaRuntime, find_java
from perago.devservers.process import log_tail

LAKEFS_MODULE = "github.com/treeverse/lakefs"
# lakefs-sdk 1.88.0 is pinned in pyproject.toml, so v1.88.0 comes first. The Go module proxy this
# project reaches does not serve v1.88.0 or v1.87.0 (403 "not available"), so the nearest served
# version, v1.86.0, is what actually builds here; v1.84.1 is the documented API-compatible
# fallback. The first candidate that is served and builds wins (see docs/servers.md).
LAKEFS_VERSIONS: tuple[str, ...] = ("1.88.0", "1.86.0", "1.84.1")

MINIO_MODULE = "github.com/minio/minio"
# MinIO publishes no semver tags on the Go module proxy: `go list -m github.com/minio/minio@latest`
# resolves to this pseudo-version (2026-02-12, commit 7aac2a2c5b7c). Pinned, so every machine
# runs the same server; bump it deliberately (see docs/servers.md).
MINIO_VERSION = "v0.0.0-20260212201848-7aac2a2c5b7c"

CONDUCTOR_GROUP_ARTIFACT = "org.conductoross:conductor-server"
# 3.32.x is the line conductor-python 2.x is tested against; it needs Java 21+.
# (3.21.22's boot jar is not on Maven Central, so there is no Java 17 fallback.)
CONDUCTOR_VERSION = "3.32.1"
CONDUCTOR_MIN_JAVA = 21
MAVEN_DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"

Progress = Callable[[str], None]


def print_progress(message: str) -> None:
    print(f"perago dev: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class LakefsBinaries:
    version: str
    lakefs: Path
    lakectl: Path


@dataclass(frozen=True)
class MinioBinary:
    version: str
    minio: Path


@dataclass(frozen=True)
class ConductorArtifact:
    version: str
    jar: Path
    java: JavaRuntime


@contextlib.contextmanager
def _exclusive(lock_path: Path, progress: Progress) -> Iterator[None]:
    """Hold an flock for the duration; a second provisioner waits instead of racing."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress(f"waiting for another provisioner ({lock_path.name})")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def elapsed_on_terminal(what: str) -> Iterator[None]:
    """On a terminal, a spinner with the step and its elapsed time while a build step runs (a
    cold build takes minutes); nothing otherwise (the step's own progress line was printed)."""
    if not sys.stderr.isatty():
        yield
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(),
        TextColumn("perago dev: {task.description}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        progress.add_task(what, total=None)
        yield


def _run_logged(cmd: Sequence[str], *, cwd: Path, env: dict[str, str], log: Path) -> None:
    """Run a build step, appending its output to ``log``; failure raises with the log's tail."""
    step = " ".join([Path(cmd[0]).name, *cmd[1:2]])
    with log.open("a") as out, elapsed_on_terminal(f"{step} running (output: {log})"):
        out.write(f"\n$ {' '.join(cmd)}\n")
        out.flush()
        try:
            result = subprocess.run(
                list(cmd), cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, check=False
            )
        except FileNotFoundError as exc:
            raise DevServerError(f"{cmd[0]} not found: {exc}") from exc
    if result.returncode != 0:
        tail = log_tail(log, 30, unreadable="")
        raise DevServerError(
            f"`{' '.join(cmd[:3])} ...` failed (exit {result.returncode}); see {log}:\n{tail}"
        )


def _which(tool: str, *extra_dirs: str) -> str:
    found = shutil.which(tool) or next(
        (str(Path(d) / tool) for d in extra_dirs if (Path(d) / tool).is_file()), None
    )
    if found is None:
        raise DevServerError(f"`{tool}` is not installed (needed to provision the dev servers)")
    return found


# ---------------------------------------------------------------------------------------------
# lakeFS


def lakefs_dir(version: str) -> Path:
    return paths.servers_dir() / "lakefs" / version


def cached_lakefs() -> LakefsBinaries | None:
    """The first candidate version already built, without touching the network."""
    for version in LAKEFS_VERSIONS:
        bins = _lakefs_binaries(version)
        if bins.lakefs.is_file() and bins.lakectl.is_file():
            return bins
    return None


def _lakefs_binaries(version: str) -> LakefsBinaries:
    bin_dir = lakefs_dir(version) / "bin"
    return LakefsBinaries(version, bin_dir / "lakefs", bin_dir / "lakectl")


def _go_env() -> dict[str, str]:
    go = paths.go_dir()
    env = dict(os.environ)
    env.update(
        GOMODCACHE=str(go / "mod"),
        GOCACHE=str(go / "cache"),
        GOPATH=str(go / "path"),
        GOTOOLCHAIN="local",  # never download a toolchain: the machine's Go must do
        GOFLAGS="-mod=mod -buildvcs=false",
        CGO_ENABLED="0",
    )
    return env


def _upstream_module(go: str, version: str, env: dict[str, str], cwd: Path) -> dict[str, str]:
    """``go mod download -json`` of the lakeFS module; raises if the proxy does not serve it."""
    result = subprocess.run(
        [go, "mod", "download", "-json", f"{LAKEFS_MODULE}@v{version}"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        info: dict[str, str] = json.loads(result.stdout)
    except json.JSONDecodeError as exc:
        raise DevServerError(
            f"go mod download of lakeFS v{version} failed: {result.stderr.strip()}"
        ) from exc
    if info.get("Error"):
        raise DevServerError(f"lakeFS v{version} is not available: {info['Error'].splitlines()[0]}")
    return info


_REPLACE_LINE = re.compile(r"^\s*(?:replace\s+)?(\S+)(?:\s+\S+)?\s+=>\s+(\S+)(?:\s+(\S+))?\s*$")


def upstream_replaces(go_mod_text: str) -> list[str]:
    """The ``old=new@version`` replace directives of a go.mod (single-line and block forms)."""
    replaces: list[str] = []
    in_block = False
    for raw in go_mod_text.splitlines():
        line = raw.split("//", 1)[0].strip()
        if line.startswith("replace ("):
            in_block = True
            continue
        if in_block and line == ")":
            in_block = False
            continue
        if not (in_block or line.startswith("replace ")):
            continue
        match = _REPLACE_LINE.match(line)
        if match is None:
            continue
        old, new, new_version = match.groups()
        replaces.append(f"{old}={new}@{new_version}" if new_version else f"{old}={new}")
    return replaces


def _build_lakefs(version: str, progress: Progress) -> LakefsBinaries:
    go = _which("go", "/usr/local/go/bin")
    env = _go_env()
    root = lakefs_dir(version)
    src = root / "src"
    src.mkdir(parents=True, exist_ok=True)
    (root / "bin").mkdir(exist_ok=True)
    log = root / "build.log"
    log.write_text(f"# lakeFS v{version} build, started {time.ctime()}\n")

    info = _upstream_module(go, version, env, src)
    # A wrapper module, because `go install pkg@version` refuses modules with replace directives.
    if not (src / "go.mod").is_file():
        _run_logged([go, "mod", "init", "localbuild/lakefs"], cwd=src, env=env, log=log)
    edits = [f"-require={LAKEFS_MODULE}@v{version}"]
    edits += [f"-replace={r}" for r in upstream_replaces(Path(info["GoMod"]).read_text())]
    _run_logged([go, "mod", "edit", *edits], cwd=src, env=env, log=log)
    # Seed go.sum with upstream's: the checksum database is not reachable for every dependency
    # through the proxy (404 for e.g. treeverse/delta-go), but upstream's go.sum pins them all.
    upstream_sum = Path(info["Dir"]) / "go.sum"
    if upstream_sum.is_file():
        (src / "go.sum").write_text(upstream_sum.read_text())
    commands = [f"{LAKEFS_MODULE}/cmd/lakefs", f"{LAKEFS_MODULE}/cmd/lakectl"]
    progress(f"downloading lakeFS v{version} dependencies (cold: several hundred MB)")
    _run_logged([go, "get", *(f"{c}@v{version}" for c in commands)], cwd=src, env=env, log=log)
    bins = _lakefs_binaries(version)
    ldflags = f"-s -w -X {LAKEFS_MODULE}/pkg/version.Version={version}"
    for command, target in zip(commands, (bins.lakefs, bins.lakectl), strict=True):
        progress(f"compiling {command.rsplit('/', 1)[1]} v{version} (cold: many minutes)")
        partial = target.with_name(target.name + ".partial")
        _run_logged(
            [go, "build", "-trimpath", "-ldflags", ldflags, "-o", str(partial), command],
            cwd=src,
            env=env,
            log=log,
        )
        partial.replace(target)
    return bins


def ensure_lakefs(progress: Progress = print_progress) -> LakefsBinaries:
    """Cached lakeFS + lakectl, building the first candidate version that is served and builds."""
    # Any cached candidate is used as is: a rebuild happens only when the cache is cleared, so
    # runs are reproducible and never pay a surprise multi-minute build.
    cached = cached_lakefs()
    if cached is not None:
        return cached
    with _exclusive(paths.servers_dir() / "lakefs.lock", progress):
        reasons: list[str] = []
        for version in LAKEFS_VERSIONS:
            bins = _lakefs_binaries(version)
            if bins.lakefs.is_file() and bins.lakectl.is_file():
                return bins
            failed_marker = lakefs_dir(version) / "build-failed"
            if failed_marker.is_file():
                reasons.append(f"v{version}: earlier build failed ({failed_marker})")
                continue
            started = time.monotonic()
            try:
                progress(f"building lakeFS v{version} from the Go module proxy")
                bins = _build_lakefs(version, progress)
            except DevServerError as exc:
                first_line = str(exc).splitlines()[0]
                reasons.append(f"v{version}: {first_line}")
                if "is not available" not in first_line:
                    failed_marker.write_text(str(exc) + "\n")
                progress(f"lakeFS v{version} not usable: {first_line}")
                continue
            progress(f"built lakeFS v{version} in {time.monotonic() - started:.0f}s")
            return bins
    raise DevServerError("no lakeFS version could be built: " + "; ".join(reasons))


# ---------------------------------------------------------------------------------------------
# MinIO


def minio_dir(version: str = MINIO_VERSION) -> Path:
    return paths.servers_dir() / "minio" / version


def minio_binary(version: str = MINIO_VERSION) -> MinioBinary:
    return MinioBinary(version, minio_dir(version) / "bin" / "minio")


def cached_minio() -> MinioBinary | None:
    """The pinned MinIO server if already built, without touching the network."""
    binary = minio_binary()
    return binary if binary.minio.is_file() else None


def _build_minio(version: str, progress: Progress) -> MinioBinary:
    go = _which("go", "/usr/local/go/bin")
    env = _go_env()
    # `go install module@version` builds MinIO with its own go.mod and go.sum (it has no replace
    # directives, so no wrapper module is needed); -mod=mod does not apply in that mode.
    env["GOFLAGS"] = ""
    root = minio_dir(version)
    root.mkdir(parents=True, exist_ok=True)
    staging = root / "bin.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    env["GOBIN"] = str(staging)
    log = root / "build.log"
    log.write_text(f"# MinIO {version} build, started {time.ctime()}\n")
    progress(f"building MinIO {version} (cold: modules download and many minutes of compiling)")
    _run_logged(
        [go, "install", "-trimpath", "-ldflags", "-s -w", f"{MINIO_MODULE}@{version}"],
        cwd=root,
        env=env,
        log=log,
    )
    binary = minio_binary(version)
    binary.minio.parent.mkdir(exist_ok=True)
    (staging / "minio").replace(binary.minio)
    shutil.rmtree(staging, ignore_errors=True)
    return binary


def ensure_minio(progress: Progress = print_progress) -> MinioBinary:
    """The cached MinIO server, built from the Go module proxy on first use."""
    cached = cached_minio()
    if cached is not None:
        return cached
    with _exclusive(paths.servers_dir() / "minio.lock", progress):
        cached = cached_minio()
        if cached is not None:
            return cached
        started = time.monotonic()
        binary = _build_minio(MINIO_VERSION, progress)
        progress(f"built MinIO {MINIO_VERSION} in {time.monotonic() - started:.0f}s")
        return binary


# ---------------------------------------------------------------------------------------------
# Conductor


def conductor_jar(version: str = CONDUCTOR_VERSION) -> Path:
    return paths.servers_dir() / "conductor" / version / f"conductor-server-{version}-boot.jar"


def ensure_conductor(progress: Progress = print_progress) -> ConductorArtifact:
    """The cached Conductor boot jar (fetched with Maven on first use) and a JDK that runs it."""
    java = find_java(CONDUCTOR_MIN_JAVA)
    jar = conductor_jar()
    if jar.is_file():
        return ConductorArtifact(CONDUCTOR_VERSION, jar, java)
    with _exclusive(paths.servers_dir() / "conductor.lock", progress):
        if jar.is_file():
            return ConductorArtifact(CONDUCTOR_VERSION, jar, java)
        mvn = _which("mvn")
        jar.parent.mkdir(parents=True, exist_ok=True)
        staging = jar.parent / "download.partial"
        shutil.rmtree(staging, ignore_errors=True)
        log = jar.parent / "fetch.log"
        log.write_text(f"# Conductor {CONDUCTOR_VERSION} fetch, started {time.ctime()}\n")
        progress(f"fetching Conductor {CONDUCTOR_VERSION} boot jar from Maven Central (~450 MB)")
        started = time.monotonic()
        _run_logged(
            [
                mvn,
                "-B",
                "-q",
                f"-Dmaven.repo.local={paths.maven_repo_dir()}",
                f"{MAVEN_DEPENDENCY_PLUGIN}:copy",
                f"-Dartifact={CONDUCTOR_GROUP_ARTIFACT}:{CONDUCTOR_VERSION}:jar:boot",
                f"-DoutputDirectory={staging}",
            ],
            cwd=jar.parent,
            env=dict(os.environ),
            log=log,
        )
        (staging / jar.name).replace(jar)
        shutil.rmtree(staging, ignore_errors=True)
        progress(f"fetched Conductor {CONDUCTOR_VERSION} in {time.monotonic() - started:.0f}s")
    return ConductorArtifact(CONDUCTOR_VERSION, jar, java)


def provision_all(
    progress: Progress = print_progress,
) -> tuple[LakefsBinaries, ConductorArtifact, MinioBinary]:
    """Everything the dev stack and the test suite run: lakeFS + lakectl, Conductor, MinIO (the
    s3 topology's object store, which the integration tests also start) and the OpenTelemetry
    Collector (the telemetry tests' receiver)."""
    from perago.devservers.otelcol import ensure_otelcol

    lakefs = ensure_lakefs(progress)
    conductor = ensure_conductor(progress)
    minio = ensure_minio(progress)
    otelcol = ensure_otelcol(progress)
    progress(f"OpenTelemetry Collector {otelcol.version}: {otelcol.otelcol}")
    progress(f"lakeFS v{lakefs.version}: {lakefs.lakefs}")
    progress(f"lakectl v{lakefs.version}: {lakefs.lakectl}")
    progress(f"MinIO {minio.version}: {minio.minio}")
    progress(
        f"Conductor {conductor.version}: {conductor.jar} "
        f"(Java {conductor.java.major}: {conductor.java.executable})"
    )
    return lakefs, conductor, minio
