"""``perago bench cache``: downloads through the host's content cache (:mod:`perago.engine.cache`)
next to ``lakectl local clone``.

The data sets, their options and their seeding are ``perago bench download``'s (``--files`` x
``--size``, default 10,000 x 100 KiB, and ``--large-files`` x ``--large-size``, default 2 x 1 GiB;
0 files skips a set), in a throw-away repository, and so is the lakeFS (``--blockstore
local|s3``). Each of ``--repeat`` rounds (medians reported) runs every case below once per data
set, each run in a child process of its own started after ``sync``, so its time (interpreter
start included, as in the download bench) and peak RSS are that run's alone:

``clone`` (lakectl)
    ``lakectl local clone`` of the seed commit into a fresh directory. lakectl has no cache: it
    fetches every byte. When no lakectl is found (or ``--no-lakectl``) the row is still listed,
    empty, with the reason (``skipped`` in its JSON), and stderr says ``lakectl baseline skipped``.
``cold``
    A new, empty cache; the seed commit into a fresh directory: every byte is fetched.
``warm``
    The same commit into another fresh directory with the cache ``cold`` just filled: no byte is
    fetched.
``1pct-changed``
    1 % of the files (at least one, spread evenly) rewritten on ``main`` with new bytes of the same
    size and committed; that commit into a fresh directory with the warm cache: exactly the
    rewritten files are fetched. Every round rewrites them anew, so no round finds the previous
    round's change in its cache.
``1pct-floor``
    What this machine itself needs to put the other 99 % of that commit's bytes into a fresh
    directory: the same files (same paths and sizes) written from memory on one thread per core,
    timed inside the child around the writes alone (no interpreter start, no listing, no cache,
    no reading, no hashing). Any download that materialises those files by copying pays at least
    this; with reflinks it does not. Its ratio to ``1pct-reference`` shows how much of the 1 %
    target is left to the cache on this machine (ext4 copies on a VM whose fresh page-cache pages
    are slow to come by: see ADR 0012).
``1pct-reference``
    What any incremental download of that commit has to do anyway: list the whole data set once
    and fetch the rewritten bytes. The rewritten files are committed a second time, in the same
    commit, under a prefix of their own (``ref-<set>-<round>/``); the reference run lists the data
    set's prefix at the new commit (``list_objects``, the listing the ``1pct-changed`` download
    makes too) and then downloads only that own prefix into a new, empty cache, on one client, in
    one process. It thus pays for the same listing, the same fetched bytes (streamed, hashed,
    written and inserted into a cache alike) and one interpreter start, as the measured case does;
    what it leaves out is the cost of the cache itself: looking up every object and materialising
    the other 99 % from the entries. (Listing in a separate process would count a second
    interpreter start; downloading the 1 % out of the full commit is not something the engine
    offers, and with a filter it would no longer be the same listing.)

Every run's ``cache_stats()`` are checked and a mismatch fails the bench: ``cold`` fetched every
object and hit none, ``warm`` fetched nothing and hit every object, ``1pct-changed`` fetched
exactly the rewritten files and hit the rest, ``1pct-reference`` fetched exactly them after
listing every file; nothing was evicted or found corrupt. The caches sit in the scratch directory,
on the destinations' file system (the cache's ``mode``, ``reflink`` or ``copy``, is in the notes),
sized so that nothing is evicted. Destinations and caches are removed only after a data set's
last round (so a 10,000 x 100 KiB set needs about 15 GB of scratch space over 3 rounds): ext4
allocates inodes slowly for minutes after mass deletions, which would charge the bench's own
clean-up to whichever run came next. The page cache is not dropped between runs (that would take
root and hit the whole host): ``warm`` may read entries ``cold`` just wrote from memory, as on a
busy worker host.

After the table come the ratios of the median times (below 1: faster): ``warm / cold``,
``warm / lakectl clone``, ``1pct-changed / 1pct-reference`` and ``1pct-floor / 1pct-reference``.
``--json`` prints only the rows on stdout, as one JSON array (with ``case``, ``files``,
``total_bytes`` and ``bytes_fetched``); the table and the ratios then go to stderr, as in every
bench (:mod:`perago.bench.cli`).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from perago.bench import transfer as bench_transfer
from perago.bench.baselines import Baseline
from perago.bench.cli import BlockstoreOpt, JsonOpt, LakectlOpt, NamespaceOpt
from perago.bench.report import Row, format_ratio, ratio
from perago.bench.repository import bench_repository
from perago.bench.sizes import MIB
from perago.bench.topology import Blockstore
from perago.bench.transfer_child import upload_items

CLONE = "clone"
COLD = "cold"
WARM = "warm"
CHANGED = "1pct-changed"
FLOOR = "1pct-floor"
REFERENCE = "1pct-reference"
CASES = (CLONE, COLD, WARM, CHANGED, FLOOR, REFERENCE)
# Beyond the seed set plus one round's rewritten files, so that no entry is ever evicted.
CACHE_HEADROOM = 64 * MIB


def scenario_name(data_set: str, case: str) -> str:
    return f"cache-{data_set}-{case}"


def data_set_of(row: Row) -> str:
    """``small`` of ``cache-small-warm``."""
    return row.scenario.removeprefix("cache-").removesuffix(f"-{row.case}")


def changed_indices(files: int) -> list[int]:
    """The files a ``1pct-changed`` round rewrites: 1 % of ``files`` (at least one), spread evenly
    (indices of :func:`perago.bench.transfer.generate_files`)."""
    count = max(1, files // 100)
    step = files // count
    return list(range(0, step * count, step))


def kept_indices(files: int) -> list[int]:
    """The files a ``1pct-changed`` round takes from the cache: all but :func:`changed_indices`."""
    changed = set(changed_indices(files))
    return [i for i in range(files) if i not in changed]


def write_from_memory(root: Path, indices: Sequence[int], size: int, threads: int) -> float:
    """Write the data set's files ``indices`` (:func:`perago.bench.transfer.generate_files`'s
    paths), ``size`` bytes each, from one block in memory, on ``threads`` threads; the seconds
    the directories and writes took."""
    import threading
    import time

    block = memoryview(os.urandom(min(size, 4 * MIB)))
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    failures: list[BaseException] = []

    def write(share: Sequence[int]) -> None:
        try:
            for i in share:
                fd = os.open(root / f"d{i % 100:03d}" / f"f{i:06d}.bin", flags, 0o644)
                try:
                    left = size
                    while left > 0:
                        left -= os.write(fd, block[: min(left, len(block))])
                finally:
                    os.close(fd)
        except BaseException as failure:  # re-raised by the caller
            failures.append(failure)

    started = time.perf_counter()
    for d in sorted({i % 100 for i in indices}):
        (root / f"d{d:03d}").mkdir(parents=True)
    workers = [threading.Thread(target=write, args=(indices[k::threads],)) for k in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise failures[0]
    return elapsed


@dataclass(frozen=True)
class _Run:
    measured: bench_transfer.Measurement
    stats: dict[str, int]  # the download's cache_stats(), plus "listed" for the reference


@dataclass
class _DataSetBench:
    """The rounds of every case on one seeded data set, and the rows they make."""

    server: bench_transfer.Server
    repo: str
    seed: str  # the commit holding the data set as generated
    data: bench_transfer.DataSet
    work: Path
    concurrency: int | None
    lakectl: Baseline
    log: Callable[[str], None]
    runs: dict[str, list[_Run]] = field(default_factory=dict)
    # Every destination and cache, removed only once all rounds are measured: ext4 allocates
    # inodes slowly for minutes after mass deletions (`recently_deleted` scans), which would
    # charge the bench's own clean-up to whichever run comes next.
    kept: list[Path] = field(default_factory=list)
    mode: str = ""  # the caches' ``mode`` (reflink / copy), as the children report it

    @property
    def prefix(self) -> str:
        return self.data.scenario_suffix

    @property
    def file_size(self) -> int:
        return self.data.bytes // self.data.files

    @property
    def changed(self) -> list[int]:
        return changed_indices(self.data.files)

    @property
    def changed_bytes(self) -> int:
        return len(self.changed) * self.file_size

    def round(self, n: int) -> None:
        if self.lakectl.path is not None:
            clone = bench_transfer._lakectl_clone_command(
                self.lakectl.path, self.repo, self.seed, self.prefix
            )
            os.sync()
            measured = bench_transfer._download_once(
                self.server, self.work / "dl-clone", clone, n, keep=self.kept
            )
            self._record(CLONE, n, _Run(measured, {}))
        cache = self.work / f"cache-{n}"
        empty_cache = self.work / f"cache-{n}-reference"
        self.kept += [cache, empty_cache]
        self._perago(COLD, n, self.seed, self.prefix, cache)
        self._perago(WARM, n, self.seed, self.prefix, cache)
        commit, own_prefix = self._rewrite(n)
        self._perago(CHANGED, n, commit, self.prefix, cache)
        self._floor(n)
        self._perago(REFERENCE, n, commit, own_prefix, empty_cache, listing=self.prefix)

    def remove_kept(self) -> None:
        for path in self.kept:
            shutil.rmtree(path, ignore_errors=True)
        self.kept.clear()

    def _rewrite(self, n: int) -> tuple[str, str]:
        """Rewrite the 1 % on ``main`` and commit the same bytes once more under the reference's
        own prefix; the new commit and that prefix."""
        from perago.engine.transfer import LakeFSCredentials, upload_files

        source = self.work / f"rewritten-{n}"
        bench_transfer.generate_files(source, self.data.files, self.file_size, indices=self.changed)
        own_prefix = f"ref-{self.prefix}-{n}"
        items = upload_items(source, self.prefix) + upload_items(source, own_prefix)
        creds = LakeFSCredentials(self.server.access_key_id, self.server.secret_access_key)
        upload_files(self.server.endpoint, creds, self.repo, "main", items)
        shutil.rmtree(source)
        message = f"rewrite {len(self.changed)} files of {self.prefix} (round {n})"
        return self.server.control.commit(self.repo, "main", message, {}), own_prefix

    def _perago(
        self, case: str, n: int, ref: str, prefix: str, cache: Path, *, listing: str | None = None
    ) -> None:
        stats_file = self.work / f"stats-{case}-{n}.json"

        def command(dest: Path) -> list[str]:
            return bench_transfer._perago_child(
                [
                    "_cached_download",
                    self.repo,
                    ref,
                    prefix,
                    str(dest),
                    str(self.concurrency or 0),
                    str(cache),
                    str(2 * self.data.bytes + CACHE_HEADROOM),
                    str(stats_file),
                    *([] if listing is None else [listing]),
                ]
            )

        os.sync()
        measured = bench_transfer._download_once(
            self.server, self.work / f"dl-{case}", command, n, keep=self.kept
        )
        report = json.loads(stats_file.read_text())
        stats_file.unlink()
        self.mode = str(report.pop("mode"))
        self._check(case, report)
        self._record(case, n, _Run(measured, report))

    def _floor(self, n: int) -> None:
        stats_file = self.work / f"stats-{FLOOR}-{n}.json"
        threads = os.cpu_count() or 1

        def command(dest: Path) -> list[str]:
            return bench_transfer._perago_child(
                ["_write_floor", str(dest), str(self.data.files), str(self.file_size),
                 str(threads), str(stats_file)]
            )  # fmt: skip

        os.sync()
        measured = bench_transfer._download_once(
            self.server, self.work / f"dl-{FLOOR}", command, n, keep=self.kept
        )
        seconds = float(json.loads(stats_file.read_text())["seconds"])
        stats_file.unlink()
        self._record(FLOOR, n, _Run(replace(measured, seconds=seconds), {"fetched_bytes": 0}))

    def _check(self, case: str, stats: dict[str, int]) -> None:
        files, changed = self.data.files, len(self.changed)
        expected = {
            COLD: {"fetched": files, "fetched_bytes": self.data.bytes, "hits": 0},
            WARM: {"fetched": 0, "fetched_bytes": 0, "hits": files},
            CHANGED: {
                "fetched": changed,
                "fetched_bytes": self.changed_bytes,
                "hits": files - changed,
            },
            REFERENCE: {
                "listed": files,
                "fetched": changed,
                "fetched_bytes": self.changed_bytes,
                "hits": 0,
            },
        }[case] | {"evicted": 0, "corrupt": 0}
        wrong = {
            name: stats.get(name) for name, want in expected.items() if stats.get(name) != want
        }
        if wrong:
            raise RuntimeError(
                f"{scenario_name(self.prefix, case)}: cache stats {wrong}, expected {expected}"
            )

    def _record(self, case: str, n: int, run: _Run) -> None:
        self.runs.setdefault(case, []).append(run)
        fetched = run.stats.get("fetched_bytes", self.data.bytes)
        self.log(
            f"{scenario_name(self.prefix, case)} round {n}: {run.measured.seconds:.3f} s, "
            f"peak RSS {run.measured.peak_rss_mb:.1f} MiB, {fetched} bytes fetched"
        )

    def rows(self, topology: str) -> list[Row]:
        files, total = self.data.files, self.data.bytes
        changed = len(self.changed)
        mode = self.mode or "?"
        shape: dict[str, tuple[int, int, str]] = {  # files, bytes, note
            CLONE: (files, total, "no cache: fetches all"),
            COLD: (files, total, f"empty {mode} cache"),
            WARM: (files, total, f"{mode} cache cold filled"),
            CHANGED: (files, total, f"{changed} of {files} rewritten, warm cache"),
            FLOOR: (
                files - changed,
                total - self.changed_bytes,
                f"write the other {files - changed} from memory, {os.cpu_count() or 1} threads",
            ),
            REFERENCE: (changed, self.changed_bytes, f"list {files}, fetch {changed}"),
        }
        rows = []
        for case in CASES:
            name, tool = scenario_name(self.prefix, case), "lakectl" if case == CLONE else "perago"
            runs = self.runs.get(case)
            if not runs:  # the clone, without a lakectl: listed, with the reason
                rows.append(replace(self.lakectl.skipped_row(name), case=case))
                continue
            count, size, note = shape[case]
            median = statistics.median(run.measured.seconds for run in runs)
            peak_kb = round(max(run.measured.peak_rss_mb for run in runs) * 1024)
            row = Row.measured(
                name, tool, median, total_bytes=size, files=count, peak_rss_kb=peak_kb, note=note
            )
            fetched = runs[-1].stats.get("fetched_bytes", total)  # lakectl fetches everything
            rows.append(
                replace(row, case=case, files=count, total_bytes=size, bytes_fetched=fetched)
            )
        return [replace(row, topology=topology) for row in rows]


def run_cache(
    server: bench_transfer.Server,
    work: Path,
    load: bench_transfer.Workload,
    *,
    log: Callable[[str], None] = print,
) -> list[Row]:
    """Seed the data sets into a fresh repository (removed, objects too on a dev server, however
    the run ends) and run ``load.repeat`` rounds of every case on each."""
    from perago.engine.transfer import LakeFSCredentials, upload_files

    lakectl = bench_transfer.lakectl_baseline(load.lakectl, log)
    creds = LakeFSCredentials(server.access_key_id, server.secret_access_key)
    rows: list[Row] = []
    with bench_repository(server, load.namespace_root, log=log) as repo:
        data_sets = load.datasets(work)
        for data in data_sets:
            each, prefix = data.bytes // data.files, data.scenario_suffix
            log(f"seeding {data.files} x {each} B into {repo}/{prefix}")
            items = upload_items(data.source, prefix)
            upload_files(server.endpoint, creds, repo, "main", items)
            shutil.rmtree(data.source)  # its disk space goes to the caches and downloads
        seed = server.control.commit(repo, "main", "seed", {})
        for data in data_sets:
            one = _DataSetBench(server, repo, seed, data, work, load.concurrency, lakectl, log)
            try:
                for n in range(load.repeat):
                    one.round(n)
            finally:
                one.remove_kept()
            rows += one.rows(load.topology)
    return rows


def cache_ratios(rows: Sequence[Row]) -> list[tuple[str, float | None]]:
    """The time ratios the cache's targets name, per data set (None when a row is missing)."""
    out: list[tuple[str, float | None]] = []
    for data_set in dict.fromkeys(data_set_of(row) for row in rows):
        warm, cold, changed, floor, reference = (
            (scenario_name(data_set, case), "perago")
            for case in (WARM, COLD, CHANGED, FLOOR, REFERENCE)
        )
        clone = (scenario_name(data_set, CLONE), "lakectl")
        out += [
            (f"{data_set}: warm / cold", ratio(rows, warm, cold)),
            (f"{data_set}: warm / lakectl clone", ratio(rows, warm, clone)),
            (f"{data_set}: 1pct-changed / 1pct-reference", ratio(rows, changed, reference)),
            (f"{data_set}: 1pct-floor / 1pct-reference", ratio(rows, floor, reference)),
        ]
    return out


def _check_sets(shape: bench_transfer.Workload) -> None:
    sets = ((shape.files, shape.size), (shape.large_files, shape.large_size))
    if all(count < 1 for count, _ in sets):
        raise ValueError("nothing to measure: --files and --large-files are both 0")
    if any(count > 0 and each < 1 for count, each in sets):
        raise ValueError("--size and --large-size must be at least 1 byte")


def _ratio_lines(rows: list[Row]) -> list[str]:
    return [format_ratio(label, value) for label, value in cache_ratios(rows)]


def cache_command(
    *,
    files: int | None = bench_transfer.SmallFilesOpt,
    size: str | None = bench_transfer.SmallSizeOpt,
    large_files: int | None = bench_transfer.LargeFilesOpt,
    large_size: str | None = bench_transfer.LargeSizeOpt,
    repeat: int = bench_transfer.RepeatOpt,
    concurrency: int | None = bench_transfer.ConcurrencyOpt,
    as_json: bool = JsonOpt,
    namespace: str | None = NamespaceOpt,
    work_dir: Path | None = bench_transfer.WorkDirOpt,
    blockstore: Blockstore = BlockstoreOpt,
    lakectl: bool = LakectlOpt,
) -> None:
    """Content cache: cold, warm and 1%-changed downloads vs `lakectl local clone`.

    Every run is a child process of its own (its time and peak RSS); its cache counters are
    checked: cold fetches all, warm nothing, 1%-changed only the rewritten files. The module
    perago.bench.cache describes the cases and the reference of the 1% case.
    """
    options = bench_transfer.TransferOptions(
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
    bench_transfer.run_command(
        run_cache,
        options,
        as_json=as_json,
        title="perago bench cache",
        check=_check_sets,
        lines=_ratio_lines,
    )
