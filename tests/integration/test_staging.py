"""Change-only staging, unicode and deep paths against a REAL lakeFS server."""

from __future__ import annotations

import pytest

from .publication_support import AttemptRun, diff_paths, edit_task, read_object

pytestmark = pytest.mark.integration


@pytest.mark.slow
def test_changing_one_file_of_ten_thousand_stages_exactly_one_object(  # type: ignore[no-untyped-def]
    attempts: AttemptRun, lakefs_config, repo, seed_many
) -> None:
    a = seed_many(repo, "data", 10_000)
    result = attempts.run(edit_task(), repo, "main", a, {"write": {"f04242.txt": "changed"}})
    assert result.status == "COMPLETED", result.reason_for_incompletion
    staged = attempts.staged[-1].commit
    assert diff_paths(lakefs_config, repo, a, staged) == ["data/f04242.txt"]
    changes = attempts.changes[-1]
    assert list(changes.modified) == ["f04242.txt"]
    assert not changes.added
    assert not changes.removed


def test_unicode_and_deep_paths_round_trip(  # type: ignore[no-untyped-def]
    attempts: AttemptRun, lakefs_config, repo, seed_files
) -> None:
    deep = "/".join(f"d{i}" for i in range(40)) + "/leaf.txt"
    names = {"données/été ü.txt": "é", "日本語/ファイル.txt": "日", deep: "deep"}
    a = seed_files(repo, {"data/seed.txt": b"s"})
    result = attempts.run(edit_task(), repo, "main", a, {"write": names})
    assert result.status == "COMPLETED", result.reason_for_incompletion
    merged = result.output["workspace"]["ref"]  # type: ignore[index]
    for relative, text in names.items():
        assert read_object(lakefs_config, repo, merged, f"data/{relative}") == text.encode()
    # Download them back: a no-op attempt from the merged commit sees no change.
    again = attempts.run(edit_task(), repo, "main", merged, {"write": names})
    assert again.status == "COMPLETED", again.reason_for_incompletion
    assert again.output["workspace"]["ref"] == merged  # type: ignore[index]
