"""Transfer benchmarks: perago's engine side by side with ``lakectl local`` on the same data.

Each tool runs in its own subprocess, started by a small launcher (``child_launcher``) so that
its peak RSS is its own and not the bench driver's carried across exec. The lakeFS
server comes from ``LAKECTL_SERVER_ENDPOINT_URL`` / ``LAKECTL_CREDENTIALS_ACCESS_KEY_ID`` /
``LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY`` (process environment, else ``./.env``). Secrets are
passed to children through the environment, never on a command line.

``perago bench download`` and ``perago bench upload`` are ``download_command`` and
``upload_command`` (listed in ``perago.bench.cli``, which defines their shared options).
``--blockstore s3`` runs both tools against a lakeFS on an S3 blockstore over a real MinIO
instead (:mod:`perago.bench.topology`); every row carries the ``topology`` it was measured on.
Without a ``lakectl`` (:mod:`perago.bench.baselines`) its rows are still listed, unmeasured,
saying why.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from perago.bench import baselines, cpu
from perago.bench.baselines import Baseline
from perago.bench.cli import (
    BlockstoreOpt,
    JsonOpt,
    LakectlOpt,
    NamespaceOpt,
    files_option,
    large_files_option,
    large_size_option,
    repeat_option,
    size_option,
    work_dir_option,
)
from perago.bench.cpu import ServerProcess
from perago.bench.report import Row, emit, format_ratio, ratio, round_orders
from perago.bench.sizes import MIB, parse_size
from perago.bench.topology import Blockstore, bench_target
from perago.bench.transfer_child import ENV_ENDPOINT, ENV_KEY, ENV_SECRET, upload_items
from perago.devservers import blockstore
from perago.engine import (
    DEFAULT_CONCURRENCY,
    DEFAULT_PART_SIZE,
    REMOTE_RANGED_THRESHOLD,
    UPLOAD_CONCURRENCY,
)

if TYPE_CHECKING:
    from perago.config import LakeFSConfig
    from perago.devservers.state import ServerRecord
    from perago.lakefs.client import LakeFSControl

LAUNCHER = Path(__file__).with_name("child_launcher.py")
DEFAULT_FILES = 10_000
DEFAULT_SIZE = "100KiB"
DEFAULT_LARGE_FILES = 2
DEFAULT_LARGE_SIZE = "1GiB"
DEFAULT_REPEAT = 3


@dataclass(frozen=True)
class Server:
    endpoint: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    # The local blockstore directory when perago started this lakeFS (``perago dev up``): the
    # benches then also remove their repositories' objects, which lakeFS's API cannot.
    block_dir: Path | None = None
    # A server the bench started for itself and deletes whole, objects included, when it ends
    # (the private MinIO + lakeFS of ``--blockstore s3``).
    disposable: bool = False
    # The server processes whose CPU the rows report, when the bench knows their pids.
    processes: tuple[ServerProcess, ...] = ()

    def child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                ENV_ENDPOINT: self.endpoint,
                ENV_KEY: self.access_key_id,
                ENV_SECRET: self.secret_access_key,
            }
        )
        return env

    @property
    def config(self) -> LakeFSConfig:
        from pydantic import SecretStr

        from perago.config import LakeFSConfig

        return LakeFSConfig(
            endpoint_url=self.endpoint,
            access_key_id=self.access_key_id,
            secret_access_key=SecretStr(self.secret_access_key),
        )

    @functools.cached_property
    def control(self) -> LakeFSControl:
        """perago's lakeFS client (:mod:`perago.lakefs.client`) for set-up, checks, clean-up."""
        from perago.lakefs.client import LakeFSControl

        return LakeFSControl.from_config(self.config)


@dataclass(frozen=True)
class Measurement:
    seconds: float
    peak_rss_mb: float
    # The client's user + system CPU seconds (None where not measured).
    cpu_s: float | None = None
    # Each watched server's CPU seconds over the run (:mod:`perago.bench.cpu`).
    server_cpu_s: Mapping[str, float] | None = None


def _dotenv(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text().splitlines():
        line = raw.strip().removeprefix("export ").strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def merged_environment() -> dict[str, str]:
    """``./.env`` overlaid by the process environment."""
    return {**_dotenv(Path.cwd() / ".env"), **os.environ}


def server_from_env() -> Server:
    merged = merged_environment()
    missing = [k for k in (ENV_ENDPOINT, ENV_KEY, ENV_SECRET) if not merged.get(k, "").strip()]
    if missing:
        raise ValueError(f"lakeFS connection is not configured; missing {', '.join(missing)}")
    endpoint, key = merged[ENV_ENDPOINT].strip(), merged[ENV_KEY].strip()
    block_dir = blockstore.known_block_dir(endpoint, key)
    known = blockstore.known_dev_state(endpoint, key)
    processes = () if known is None else server_processes(known[1].lakefs, known[1].minio)
    return Server(endpoint, key, merged[ENV_SECRET].strip(), block_dir, processes=processes)


def server_processes(*records: ServerRecord | None) -> tuple[ServerProcess, ...]:
    """The watched processes of the servers ``records`` name (None: not started), those still
    running under their own name only: a recorded pid may since belong to another program."""
    return tuple(
        ServerProcess(r.name, r.pid)
        for r in records
        if r is not None and cpu.runs_as(r.pid, r.name)
    )


def generate_files(
    root: Path, count: int, size: int, *, indices: Iterable[int] | None = None
) -> None:
    """``count`` files of ``size`` bytes with distinct content, in 100 subdirectories.

    ``indices`` writes only those of the ``count`` files (same paths, new bytes: the random block
    is drawn afresh on every call), as a bench rewriting some files of a seeded tree does.
    """
    block = os.urandom(min(size, 4 * MIB) + 64)
    for i in range(count) if indices is None else indices:
        directory = root / f"d{i % 100:03d}"
        directory.mkdir(parents=True, exist_ok=True)
        with (directory / f"f{i:06d}.bin").open("wb") as out:
            out.write(i.to_bytes(8, "little")[: min(8, size)])
            left = size - min(8, size)
            shift = i % 64
            while left > 0:
                chunk = block[shift : shift + min(left, len(block) - 64)]
                out.write(chunk)
                left -= len(chunk)


def measure(
    command: Sequence[str], env: dict[str, str], servers: Sequence[ServerProcess] = ()
) -> Measurement:
    """Wall time, peak RSS and CPU of one child process, and the CPU each of ``servers`` spent
    while it ran; a failing child fails the benchmark.

    The launcher times and ``wait4``s the command and reports on a pipe of its own. The command's
    output goes to a file, not a pipe: a chatty child (lakectl's progress) would otherwise block
    on a full pipe while we wait for it.
    """
    launcher = [sys.executable, "-I", "-S", str(LAUNCHER)]
    before = cpu.sample(servers)
    report_read, report_write = os.pipe()
    with tempfile.TemporaryFile() as output, os.fdopen(report_read, "rb") as report:
        try:
            proc = subprocess.Popen(
                [*launcher, str(report_write), *command],
                env=env,
                stdout=output,
                stderr=output,
                pass_fds=(report_write,),
            )
        finally:
            os.close(report_write)
        fields = report.read().decode().split()
        code = proc.wait()
        if code != 0 or len(fields) != 4:
            output.seek(0)
            text = output.read().decode(errors="replace").strip()[-2000:]
            raise RuntimeError(f"{command[0]} failed ({code}): {text}")
    served = cpu.spent(before, cpu.sample(servers)) if servers else None
    seconds, peak_kib, client_cpu, _ = fields
    return Measurement(float(seconds), int(peak_kib) / 1024, float(client_cpu), served)


def _row(
    scenario: str,
    tool: str,
    runs: list[Measurement],
    files: int,
    size: int,
    *,
    topology: str = Blockstore.LOCAL.value,
) -> Row:
    median = statistics.median(r.seconds for r in runs)
    client_cpu = [r.cpu_s for r in runs if r.cpu_s is not None]
    return Row(
        scenario=scenario,
        tool=tool,
        median_s=round(median, 3),
        mb_per_s=round(size / MIB / median, 1) if median > 0 else None,
        files_per_s=round(files / median, 1) if median > 0 else None,
        peak_rss_mb=round(max(r.peak_rss_mb for r in runs), 1),
        topology=topology,
        cpu_s=round(statistics.median(client_cpu), 2) if len(client_cpu) == len(runs) else None,
        server_cpu_s=cpu.median_by_name([r.server_cpu_s for r in runs]),
    )


def storage_namespace(namespace_root: str, repository: str) -> str:
    return f"{namespace_root.rstrip('/')}/{repository}"


@dataclass(frozen=True)
class RangedParts:
    """perago's ranged-download knobs for a bench run (None = the engine default)."""

    part_size: int | None = None
    threshold: int | None = None

    def args(self) -> list[str]:
        return [str(self.part_size or 0), str(self.threshold or 0)]


def _perago_download_command(
    repo: str, ref: str, prefix: str, concurrency: int | None, ranged: RangedParts
) -> Callable[[Path], list[str]]:
    def command(dest: Path) -> list[str]:
        return _perago_child(
            ["_download", repo, ref, prefix, str(dest), str(concurrency or 0), *ranged.args()]
        )

    return command


def _lakectl_clone_command(
    lakectl: str, repo: str, ref: str, prefix: str
) -> Callable[[Path], list[str]]:
    def command(dest: Path) -> list[str]:
        return [lakectl, "local", "clone", f"lakefs://{repo}/{ref}/{prefix}/", str(dest)]

    return command


def _perago_child(args: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "perago.bench.transfer_child", *args]


def lakectl_baseline(enabled: bool, log: Callable[[str], None]) -> Baseline:
    """The ``lakectl`` baseline (:func:`perago.bench.baselines.lakectl`), said on ``log`` when it
    is skipped."""
    return baselines.lakectl(enabled).announce(log)


@dataclass(frozen=True)
class DataSet:
    scenario_suffix: str
    source: Path
    files: int
    bytes: int


@dataclass(frozen=True)
class Workload:
    """What a download or upload bench moves, how often, and with how many parallel requests."""

    files: int
    size: int
    large_files: int
    large_size: int
    repeat: int
    concurrency: int | None
    namespace_root: str
    topology: str = Blockstore.LOCAL.value
    # Whether the lakectl baseline runs (``--lakectl/--no-lakectl``).
    lakectl: bool = True

    def datasets(self, work: Path) -> list[DataSet]:
        out: list[DataSet] = []
        for suffix, count, size in (
            ("small", self.files, self.size),
            ("large", self.large_files, self.large_size),
        ):
            if count > 0:
                generate_files(work / suffix, count, size)
                out.append(DataSet(suffix, work / suffix, count, count * size))
        return out


def _measured_rows(
    kind: str,
    data: DataSet,
    runs_by_tool: Mapping[str, Callable[[int], Measurement]],
    *,
    repeat: int,
    log: Callable[[str], None],
    topology: str = Blockstore.LOCAL.value,
) -> list[Row]:
    """``repeat`` runs per tool on one data set, one row per tool (scenario ``<kind>-<set>``),
    each row marked with the ``topology`` it ran on.

    Tools alternate run by run, each first in turn (:func:`round_orders`: on these VMs a run's
    cost depends on the memory the run before it freed), and every run starts after ``sync``:
    the gigabytes the previous run (or the seeding) left dirty in the page cache are written
    back first instead of slowing down whichever tool happens to run next.
    """
    runs: dict[str, list[Measurement]] = {tool: [] for tool in runs_by_tool}
    for n, order in enumerate(round_orders(repeat, tuple(runs_by_tool))):
        for tool in order:
            os.sync()
            runs[tool].append(runs_by_tool[tool](n))
    rows = []
    for tool, measured in runs.items():
        scenario = f"{kind}-{data.scenario_suffix}"
        rows.append(_row(scenario, tool, measured, data.files, data.bytes, topology=topology))
        log(json.dumps(rows[-1].as_json()))
    return rows


def _with_skipped(rows: list[Row], lakectl: Baseline, scenario: str, topology: str) -> list[Row]:
    """``rows`` of one data set, plus the unmeasured lakectl row when lakectl did not run."""
    if lakectl.path is not None:
        return rows
    return [*rows, replace(lakectl.skipped_row(scenario), topology=topology)]


def run_download(
    server: Server,
    work: Path,
    load: Workload,
    *,
    ranged: RangedParts | None = None,
    log: Callable[[str], None] = print,
) -> list[Row]:
    """Seed a fresh repository per data set's prefix and time each tool downloading it; the
    repository (and, on a dev server, its objects) is removed however the run ends."""
    from perago.bench.repository import bench_repository  # imported late: it builds on this module

    with bench_repository(server, load.namespace_root, log=log) as repo:
        return _download_rows(server, work, load, repo, ranged=ranged or RangedParts(), log=log)


def _download_rows(
    server: Server,
    work: Path,
    load: Workload,
    repo: str,
    *,
    ranged: RangedParts,
    log: Callable[[str], None],
) -> list[Row]:
    from perago.engine.transfer import LakeFSCredentials, upload_files

    creds = LakeFSCredentials(server.access_key_id, server.secret_access_key)
    rows: list[Row] = []
    lakectl = lakectl_baseline(load.lakectl, log)
    for data in load.datasets(work):
        upload_files(
            server.endpoint, creds, repo, "main", upload_items(data.source, data.scenario_suffix)
        )
        ref = server.control.commit(repo, "main", f"seed {data.scenario_suffix}", {})
        tools: dict[str, Callable[[Path], list[str]]] = {
            "perago": _perago_download_command(
                repo, ref, data.scenario_suffix, load.concurrency, ranged
            )
        }
        if lakectl.path is not None:
            tools["lakectl"] = _lakectl_clone_command(lakectl.path, repo, ref, data.scenario_suffix)
        runs_by_tool = {
            tool: partial(_download_once, server, work / f"dl-{tool}", command)
            for tool, command in tools.items()
        }
        measured = _measured_rows(
            "download", data, runs_by_tool, repeat=load.repeat, log=log, topology=load.topology
        )
        scenario = f"download-{data.scenario_suffix}"
        rows += _with_skipped(measured, lakectl, scenario, load.topology)
    return rows


def _download_once(
    server: Server,
    dest_stem: Path,
    command: Callable[[Path], list[str]],
    n: int,
    *,
    keep: list[Path] | None = None,
) -> Measurement:
    """One measured download into ``<dest_stem>-<n>``, removed afterwards, or appended to
    ``keep`` for the caller to remove later."""
    dest = dest_stem.with_name(f"{dest_stem.name}-{n}")
    measured = measure(command(dest), server.child_env(), server.processes)
    if keep is None:
        shutil.rmtree(dest)
    else:
        keep.append(dest)
    return measured


def run_upload(
    server: Server, work: Path, load: Workload, *, log: Callable[[str], None] = print
) -> list[Row]:
    """Upload + commit a fresh prefix per run (``lakectl local init`` + ``commit`` likewise), in
    a fresh repository removed (objects too, on a dev server) however the run ends."""
    from perago.bench.repository import bench_repository  # imported late: it builds on this module

    rows: list[Row] = []
    lakectl = lakectl_baseline(load.lakectl, log)
    with bench_repository(server, load.namespace_root, log=log) as repo:
        for data in load.datasets(work):
            runs_by_tool = {
                tool: _UploadTarget(
                    server,
                    repo,
                    tool,
                    data,
                    lakectl.path if tool == "lakectl" else None,
                    load.concurrency,
                ).upload_once
                for tool in ["perago"] + (["lakectl"] if lakectl.path is not None else [])
            }
            measured = _measured_rows(
                "upload", data, runs_by_tool, repeat=load.repeat, log=log, topology=load.topology
            )
            scenario = f"upload-{data.scenario_suffix}"
            rows += _with_skipped(measured, lakectl, scenario, load.topology)
    return rows


@dataclass(frozen=True)
class _UploadTarget:
    """One tool uploading one data set, each run onto a fresh branch and prefix."""

    server: Server
    repo: str
    tool: str
    data: DataSet
    lakectl: str | None
    concurrency: int | None

    def upload_once(self, n: int) -> Measurement:
        branch = f"{self.tool}-{self.data.scenario_suffix}-{n}"
        self.server.control.create_branch(self.repo, branch, "main")
        prefix = f"{self.tool}/{n}"
        source = str(self.data.source)
        if self.lakectl is None:
            concurrency = str(self.concurrency or 0)
            command = _perago_child(["_upload", self.repo, branch, prefix, source, concurrency])
        else:
            subprocess.run(
                [self.lakectl, "local", "init", f"lakefs://{self.repo}/{branch}/{prefix}/", source],
                env=self.server.child_env(),
                check=True,
                capture_output=True,
            )
            command = [self.lakectl, "local", "commit", source, "-m", "bench"]
        measured = measure(command, self.server.child_env(), self.server.processes)
        if self.lakectl is None:
            # ``lakectl local commit`` ends with the commit; perago's is made here, as a worker
            # makes it: through the client it already has (the child is not charged for
            # importing lakefs-sdk, which a worker imported long before). Its server CPU counts
            # as lakectl's does; its client CPU (one request from this driver) is left out.
            before = cpu.sample(self.server.processes)
            started = time.perf_counter()
            self.server.control.commit(self.repo, branch, "bench", {})
            committed = time.perf_counter() - started
            served = measured.server_cpu_s
            if served is not None:
                after = cpu.spent(before, cpu.sample(self.server.processes))
                served = {name: s + after.get(name, 0.0) for name, s in served.items()}
            measured = replace(measured, seconds=measured.seconds + committed, server_cpu_s=served)
        (self.data.source / ".lakefs_ref.yaml").unlink(missing_ok=True)
        return measured


# --- typer commands -------------------------------------------------------------------------

SmallFilesOpt = files_option(DEFAULT_FILES, ", 0 skips the small set")
SmallSizeOpt = size_option(DEFAULT_SIZE)
LargeFilesOpt = large_files_option(str(DEFAULT_LARGE_FILES))
LargeSizeOpt = large_size_option(DEFAULT_LARGE_SIZE)
RepeatOpt = repeat_option(DEFAULT_REPEAT)
WorkDirOpt = work_dir_option()
ConcurrencyOpt = typer.Option(
    None,
    "--concurrency",
    help=(
        f"perago parallel requests (default {DEFAULT_CONCURRENCY} for downloads, "
        f"{UPLOAD_CONCURRENCY} for uploads)."
    ),
)
_PART_SIZE = typer.Option(
    None,
    "--part-size",
    help=f"perago ranged part size, a power of two (default {DEFAULT_PART_SIZE // MIB}MiB).",
)
_RANGED_THRESHOLD = typer.Option(
    None,
    "--ranged-threshold",
    help=(
        "perago fetches objects this large as ranges"
        f" (default {REMOTE_RANGED_THRESHOLD // MIB}MiB)."
    ),
)


def parse_workload(
    *,
    files: int | None = None,
    size: str | None = None,
    large_files: int | None = None,
    large_size: str | None = None,
    repeat: int = DEFAULT_REPEAT,
    concurrency: int | None = None,
    lakectl: bool = True,
) -> Workload:
    """The workload the shared transfer options describe (None: the default; a ValueError for a
    bad size), without its lakeFS target yet (see :func:`workload_target`)."""
    return Workload(
        files=DEFAULT_FILES if files is None else files,
        size=parse_size(DEFAULT_SIZE if size is None else size),
        large_files=DEFAULT_LARGE_FILES if large_files is None else large_files,
        large_size=parse_size(DEFAULT_LARGE_SIZE if large_size is None else large_size),
        repeat=max(1, repeat),
        concurrency=concurrency,
        namespace_root="",
        lakectl=lakectl,
    )


@dataclass(frozen=True)
class TransferOptions:
    """The options ``perago bench download|upload|cache`` share, as given (None: the default)."""

    files: int | None = None
    size: str | None = None
    large_files: int | None = None
    large_size: str | None = None
    repeat: int = DEFAULT_REPEAT
    concurrency: int | None = None
    namespace: str | None = None
    blockstore: Blockstore = Blockstore.LOCAL
    work_dir: Path | None = None
    lakectl: bool = True

    def workload(self) -> Workload:
        return parse_workload(
            files=self.files,
            size=self.size,
            large_files=self.large_files,
            large_size=self.large_size,
            repeat=self.repeat,
            concurrency=self.concurrency,
            lakectl=self.lakectl,
        )


@contextlib.contextmanager
def workload_target(
    shape: Workload,
    blockstore: Blockstore,
    namespace: str | None,
    work_dir: Path | None,
    log: Callable[[str], None],
) -> Iterator[tuple[Server, Path, Workload]]:
    """The lakeFS of ``blockstore`` (:func:`perago.bench.topology.bench_target`), a scratch
    directory under ``work_dir`` (removed on exit) and ``shape`` with that target's namespace
    root and topology filled in."""
    with bench_target(blockstore, namespace, work_dir=work_dir, log=log) as target:
        if work_dir is not None:
            work_dir.mkdir(parents=True, exist_ok=True)  # a fresh --work-dir is fine
        work = Path(tempfile.mkdtemp(prefix="perago-bench-", dir=work_dir))
        load = replace(shape, namespace_root=target.namespace_root, topology=target.topology.value)
        try:
            yield target.server, work, load
        finally:
            shutil.rmtree(work, ignore_errors=True)


def _log(line: str) -> None:
    typer.echo(line, err=True)


def run_command(
    runner: Callable[..., list[Row]],
    options: TransferOptions,
    *,
    as_json: bool,
    title: str,
    check: Callable[[Workload], None] | None = None,
    lines: Callable[[list[Row]], list[str]] | None = None,
    extra: Callable[[], dict[str, object]] = dict,
) -> None:
    """Run one transfer-style bench the way its command does: the workload of ``options`` (then
    ``check``, for bench-specific limits), its lakeFS target and scratch directory, ``runner``
    on them, and the rows printed by :func:`perago.bench.report.emit` (with ``lines`` under the
    table). Bad options and failures end it with one ``error:`` line and exit code 1."""
    try:
        shape = options.workload()
        if check is not None:
            check(shape)
        kwargs = extra()
        with workload_target(
            shape, options.blockstore, options.namespace, options.work_dir, _log
        ) as (server, work, load):
            rows = runner(server, work, load, log=_log, **kwargs)
    except (ValueError, RuntimeError, OSError) as exc:  # DevServerError is a RuntimeError
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    where = f" ({rows[0].topology})" if rows and rows[0].topology else ""
    emit(rows, as_json=as_json, title=f"{title}{where}", lines=lines(rows) if lines else ())


def download_command(  # noqa: PLR0917 - typer options are parameters
    files: int | None = SmallFilesOpt,
    size: str | None = SmallSizeOpt,
    large_files: int | None = LargeFilesOpt,
    large_size: str | None = LargeSizeOpt,
    repeat: int = RepeatOpt,
    concurrency: int | None = ConcurrencyOpt,
    namespace: str | None = NamespaceOpt,
    blockstore: Blockstore = BlockstoreOpt,
    as_json: bool = JsonOpt,
    work_dir: Path | None = WorkDirOpt,
    lakectl: bool = LakectlOpt,
    part_size: str | None = _PART_SIZE,
    ranged_threshold: str | None = _RANGED_THRESHOLD,
) -> None:
    """Download throughput: perago vs `lakectl local clone`."""

    def ranged() -> dict[str, object]:
        return {
            "ranged": RangedParts(
                part_size=parse_size(part_size) if part_size else None,
                threshold=parse_size(ranged_threshold) if ranged_threshold else None,
            )
        }

    options = TransferOptions(
        files=files,
        size=size,
        large_files=large_files,
        large_size=large_size,
        repeat=repeat,
        concurrency=concurrency,
        namespace=namespace,
        blockstore=blockstore,
        work_dir=work_dir,
        lakectl=lakectl,
    )
    run_command(
        run_download,
        options,
        as_json=as_json,
        title="perago bench download",
        lines=partial(tool_ratios, "download"),
        extra=ranged,
    )


def upload_command(  # noqa: PLR0917 - typer options are parameters
    files: int | None = SmallFilesOpt,
    size: str | None = SmallSizeOpt,
    large_files: int | None = LargeFilesOpt,
    large_size: str | None = LargeSizeOpt,
    repeat: int = RepeatOpt,
    concurrency: int | None = ConcurrencyOpt,
    namespace: str | None = NamespaceOpt,
    blockstore: Blockstore = BlockstoreOpt,
    as_json: bool = JsonOpt,
    work_dir: Path | None = WorkDirOpt,
    lakectl: bool = LakectlOpt,
) -> None:
    """Upload (+ commit) throughput: perago vs `lakectl local commit`."""
    options = TransferOptions(
        files=files,
        size=size,
        large_files=large_files,
        large_size=large_size,
        repeat=repeat,
        concurrency=concurrency,
        namespace=namespace,
        blockstore=blockstore,
        work_dir=work_dir,
        lakectl=lakectl,
    )
    run_command(
        run_upload,
        options,
        as_json=as_json,
        title="perago bench upload",
        lines=partial(tool_ratios, "upload"),
    )


def tool_ratios(kind: str, rows: Sequence[Row]) -> list[str]:
    """Per data set: lakectl's time / perago's (above 1: perago is faster)."""
    sets = dict.fromkeys(row.scenario for row in rows if row.scenario.startswith(f"{kind}-"))
    return [
        format_ratio(
            f"{scenario} lakectl / perago (speed-up)",
            ratio(rows, (scenario, "lakectl"), (scenario, "perago")),
        )
        for scenario in sets
    ]
