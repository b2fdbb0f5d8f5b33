"""Download of lakeFS prefixes into local directories, against a real lakeFS server."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

from perago import errors
from perago.engine import snapshot as engine
from perago.engine.transfer import (
    LakeFSError,
    TransferProgress,
    list_objects,
)

from ._transfer_helpers import (
    creds,
    download_from,
    local_hashes,
    seed_with_engine,
    write_tree,
)
from .conftest import LakeFSRepo, RestartableRepo

pytestmark = pytest.mark.integration


def test_download_10000_small_files_with_hashes(transfer_repo: LakeFSRepo, tmp_path: Path) -> None:
    source = tmp_path / "source"
    files = {f"d{i % 50:02d}/f{i:05d}.bin": os.urandom(64 + i % 300) for i in range(10_000)}
    write_tree(source, files)
    assert seed_with_engine(transfer_repo, source, "data/set") == 10_000
    commit = transfer_repo.commit()

    seen: list[TransferProgress] = []
    result = download_from(
        transfer_repo,
        commit,
        "data/set",
        tmp_path / "ws",
        progress=seen.append,
    )
    assert result.file_count == len(result) == 10_000
    assert result.bytes == sum(len(d) for d in files.values())
    expected = local_hashes(source)
    assert {rel: h for rel, _, h in result.entries()} == expected
    assert local_hashes(tmp_path / "ws") == expected
    assert result.hash_of("d07/f00007.bin") == expected["d07/f00007.bin"]
    assert result.hash_of("missing") is None
    final = seen[-1]
    assert (final.files_done, final.files_total) == (10_000, 10_000)
    assert final.bytes_done == final.bytes_total == result.bytes


def test_baseline_from_a_download_equals_a_cold_snapshot(
    transfer_repo: LakeFSRepo, tmp_path: Path
) -> None:
    files = {f"ü/{i % 7}/f{i:04d}.bin": os.urandom(i % 500) for i in range(700)}
    files["top.txt"] = b"top"
    write_tree(tmp_path / "source", files)
    seed_with_engine(transfer_repo, tmp_path / "source", "data")
    ws = tmp_path / "ws"
    result = download_from(transfer_repo, transfer_repo.commit(), "data", ws)

    baseline = engine.snapshot_from_download(ws, result)
    cold = engine.take_snapshot(ws)
    assert baseline.file_count == len(files)
    assert [(e.path, e.size, e.digest, e.inode) for e in baseline] == [
        (e.path, e.size, e.digest, e.inode) for e in cold
    ]
    (ws / "ü/3/f0003.bin").write_bytes(b"changed")
    changes = engine.detect_changes(ws, baseline)
    assert (changes.modified, changes.added, changes.removed) == (("ü/3/f0003.bin",), (), ())


def test_sibling_prefixes_are_never_listed(transfer_repo: LakeFSRepo, tmp_path: Path) -> None:
    for path in ["audio/render/a.wav", "audio/render2/b.wav", "audio/renderx", "audio/c.wav"]:
        transfer_repo.put(path, path.encode())
    commit = transfer_repo.commit()
    entries = list_objects(
        transfer_repo.endpoint, creds(transfer_repo), transfer_repo.name, commit, "audio/render"
    )
    assert [e.path for e in entries] == ["audio/render/a.wav"]
    assert entries[0].size == len("audio/render/a.wav")

    result = download_from(
        transfer_repo,
        commit,
        "audio/render",
        tmp_path,
    )
    assert [rel for rel, _, _ in result.entries()] == ["a.wav"]
    assert sorted(os.listdir(tmp_path)) == ["a.wav"]

    everything = download_from(
        transfer_repo,
        commit,
        "",
        tmp_path / "all",
    )
    assert everything.file_count == 4


def test_unicode_deep_and_empty_files(transfer_repo: LakeFSRepo, tmp_path: Path) -> None:
    deep = "/".join(f"level{i}" for i in range(40)) + "/leaf.txt"
    objects = {
        "ws/données/ünïcödé/ß.txt": "grüße".encode(),
        "ws/日本語/ファイル.bin": os.urandom(5000),
        "ws/emoji/🎵 track (1).wav": os.urandom(100),
        f"ws/{deep}": b"deep",
        "ws/empty": b"",
        "ws/sub/.perago-attempt.json": b"only the root marker name is reserved",
    }
    for path, data in objects.items():
        transfer_repo.put(path, data)
    commit = transfer_repo.commit()
    dest = tmp_path / "ws"
    result = download_from(transfer_repo, commit, "ws", dest)
    assert result.file_count == len(objects)
    for path, data in objects.items():
        assert (dest / path.removeprefix("ws/")).read_bytes() == data


@pytest.mark.slow
def test_file_larger_than_1gib_uses_ranged_parts(transfer_repo: LakeFSRepo, tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    block = os.urandom(1 << 20)
    with source.open("wb") as out:
        for i in range(1100):  # 1100 MiB, not a multiple of the 32 MiB part size
            out.write(block[i % 7 :] + block[: i % 7])
        out.write(b"tail")
    seed_with_engine_single(transfer_repo, source, "big/big.bin")
    commit = transfer_repo.commit()
    result = download_from(
        transfer_repo,
        commit,
        "big",
        tmp_path / "ws",
        # Ranged parts are the default for remote servers only; ask for them on loopback.
        ranged_threshold=64 << 20,
    )
    expected = engine.hash_file(source)
    assert result.hash_of("big.bin") == expected
    assert engine.hash_file(tmp_path / "ws" / "big.bin") == expected
    assert result.bytes == source.stat().st_size


def test_large_whole_objects_stream_from_their_own_connections(
    transfer_repo: LakeFSRepo, tmp_path: Path
) -> None:
    # Objects of 8 MiB and more are read from a connection of their own (plain HTTP, no proxy);
    # sizes straddle that threshold and the page-aligned read boundaries.
    sizes = {"a/exact.bin": 8 << 20, "a/below.bin": (8 << 20) - 1, "b/odd.bin": (33 << 20) + 777}
    source = tmp_path / "source"
    write_tree(source, {path: os.urandom(size) for path, size in sizes.items()})
    seed_with_engine(transfer_repo, source, "large")
    commit = transfer_repo.commit()

    seen: list[TransferProgress] = []
    result = download_from(transfer_repo, commit, "large", tmp_path / "ws", progress=seen.append)
    expected = local_hashes(source)
    assert {rel: h for rel, _, h in result.entries()} == expected
    assert local_hashes(tmp_path / "ws") == expected
    assert seen[-1].bytes_done == seen[-1].bytes_total == sum(sizes.values())


def seed_with_engine_single(repo: LakeFSRepo, path: Path, object_path: str) -> None:
    from perago.engine.transfer import upload_files

    upload_files(repo.endpoint, creds(repo), repo.name, "main", [(path, object_path)])


def test_missing_ref_and_wrong_secret_fail_clearly(
    transfer_repo: LakeFSRepo, tmp_path: Path
) -> None:
    with pytest.raises(LakeFSError, match=r"list objects .*no-such-branch") as missing:
        download_from(
            transfer_repo,
            "no-such-branch",
            "x",
            tmp_path / "a",
        )
    assert missing.value.status == 404
    # The data path raises the control plane's own error type, with the server's message.
    assert type(missing.value) is errors.LakeFSError
    assert missing.value.operation == "list objects"
    assert missing.value.target == f"{transfer_repo.name}@no-such-branch:x/"
    assert "not found" in missing.value.server_message
    assert not missing.value.server_message.startswith("HTTP")

    wrong = creds(transfer_repo).__class__(transfer_repo.access_key_id, "definitely-wrong-secret")
    with pytest.raises(LakeFSError) as denied:
        list_objects(transfer_repo.endpoint, wrong, transfer_repo.name, "main", "")
    assert denied.value.status == 401
    assert "definitely-wrong-secret" not in str(denied.value)
    assert "definitely-wrong-secret" not in repr(denied.value)

    with pytest.raises(LakeFSError) as unreachable:
        list_objects("http://127.0.0.1:9", creds(transfer_repo), transfer_repo.name, "main", "")
    assert unreachable.value.status is None
    assert transfer_repo.secret_access_key not in str(unreachable.value)
    assert not (tmp_path / "a").exists()


def test_secret_never_in_reprs(transfer_repo: LakeFSRepo) -> None:
    from perago.engine.transfer import connect

    client = connect(transfer_repo.endpoint, creds(transfer_repo))
    assert transfer_repo.secret_access_key not in repr(client)
    assert transfer_repo.secret_access_key not in repr(creds(transfer_repo))
    assert transfer_repo.access_key_id in repr(client)


def _seed_many(repo: LakeFSRepo, tmp_path: Path, count: int, size: int) -> str:
    source = tmp_path / "source"
    write_tree(source, {f"f{i:05d}": os.urandom(size) for i in range(count)})
    seed_with_engine(repo, source, "many")
    return repo.commit()


@pytest.mark.usefixtures("ctrl_c_raises")
def test_ctrl_c_cancels_a_running_download(transfer_repo: LakeFSRepo, tmp_path: Path) -> None:
    commit = _seed_many(transfer_repo, tmp_path, 3000, 100 * 1024)
    dest = tmp_path / "ws"
    fired = threading.Event()

    def interrupt_once(progress: TransferProgress) -> None:
        if progress.files_done > 50 and not fired.is_set():
            fired.set()
            threading.Timer(0.01, os.kill, args=(os.getpid(), signal.SIGINT)).start()

    with pytest.raises(KeyboardInterrupt):
        download_from(
            transfer_repo,
            commit,
            "many",
            dest,
            concurrency=2,
            progress=interrupt_once,
        )
    written = len(os.listdir(dest))
    assert 0 < written < 3000
    threading.Event().wait(0.5)
    assert len(os.listdir(dest)) == written, "workers kept writing after the call returned"


def test_failing_progress_callback_cancels(transfer_repo: LakeFSRepo, tmp_path: Path) -> None:
    commit = _seed_many(transfer_repo, tmp_path, 2000, 50 * 1024)

    def boom(progress: TransferProgress) -> None:
        raise RuntimeError("stop now")

    with pytest.raises(RuntimeError, match="stop now"):
        download_from(
            transfer_repo,
            commit,
            "many",
            tmp_path / "ws",
            concurrency=2,
            progress=boom,
        )


def test_download_survives_a_server_restart(
    restartable_repo: RestartableRepo, tmp_path: Path
) -> None:
    commit = _seed_many(restartable_repo, tmp_path, 3000, 100 * 1024)
    restarted = threading.Event()

    def restart_once(progress: TransferProgress) -> None:
        if progress.files_done > 200 and not restarted.is_set():
            restarted.set()
            server = restartable_repo.server

            def restart() -> None:
                server.stop()
                server.start()

            threading.Thread(target=restart).start()

    result = download_from(
        restartable_repo,
        commit,
        "many",
        tmp_path / "ws",
        concurrency=4,
        progress=restart_once,
    )
    assert restarted.is_set()
    assert result.file_count == 3000
    assert local_hashes(tmp_path / "ws") == local_hashes(tmp_path / "source")
