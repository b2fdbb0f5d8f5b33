"""Guardrails: factories, path rules, messages and version-independent globbing."""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath, PureWindowsPath

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import perago
from perago import (
    GuardrailViolation,
    TaskDefinitionError,
    forbid_glob,
    require_dir,
    require_file,
    require_glob,
)
from perago.definition.guardrails import check_guardrails, count_glob_matches, glob_segments_match


def _tree(root: Path, files: list[str], dirs: tuple[str, ...] | list[str] = ()) -> Path:
    for rel in dirs:
        (root / rel).mkdir(parents=True, exist_ok=True)
    for rel in files:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("x")
    return root


# ------------------------------------------------------------------ factories and path rules


def test_factories_build_labelled_guardrails() -> None:
    assert require_file("raw/a.json").label() == "require_file('raw/a.json')"
    assert require_dir("raw").label() == "require_dir('raw')"
    assert require_glob("**/*.wav").label() == "require_glob('**/*.wav')"
    assert forbid_glob("*.tmp").label() == "forbid_glob('*.tmp')"


def test_require_glob_defaults_to_min_count_one() -> None:
    guardrail = require_glob("*.wav")
    assert (guardrail.min_count, guardrail.max_count) == (1, None)


def test_guardrail_model_is_not_exported() -> None:
    assert not hasattr(perago, "WorkspaceGuardrail")
    assert not any("Guardrail" in name and "Violation" not in name for name in perago.__all__)


def test_guardrails_are_frozen() -> None:
    guardrail = require_file("a")
    with pytest.raises(ValueError, match="frozen"):
        guardrail.path = "b"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (PurePosixPath("a/b.json"), "a/b.json"),
        (PureWindowsPath("a\\b.json"), "a/b.json"),
        (Path("raw") / "x", "raw/x"),
    ],
)
def test_path_objects_are_canonicalised(path: os.PathLike[str], expected: str) -> None:
    assert require_file(path).path == expected


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (
            PureWindowsPath("C:/data/a"),
            "drive-qualified or absolute guardrail paths are not allowed",
        ),
        (PureWindowsPath("C:a"), "drive-qualified or absolute guardrail paths are not allowed"),
        (PureWindowsPath("\\a"), "drive-qualified or absolute guardrail paths are not allowed"),
        (PurePosixPath("/abs"), "absolute guardrail paths are not allowed"),
        ("a\\b", "string guardrail paths must use '/' separators"),
        ("/a", "guardrail paths must be relative to WorkspaceSpec(prefix=...)"),
        ("C:/x", "drive-qualified guardrail paths are not allowed"),
        ("c:x", "drive-qualified guardrail paths are not allowed"),
        ("", "workspace guardrail paths must not be empty"),
        (PurePosixPath("."), "workspace guardrail paths must not be empty"),
        ("a/", "workspace guardrail paths must be relative and must not contain '..'"),
        ("a//b", "workspace guardrail paths must be relative and must not contain '..'"),
        ("./a", "workspace guardrail paths must be relative and must not contain '..'"),
        ("a/../b", "workspace guardrail paths must be relative and must not contain '..'"),
        (
            PurePosixPath("a/../b"),
            "workspace guardrail paths must be relative and must not contain '..'",
        ),
        (42, "guardrail paths must be strings or path objects"),
    ],
)
@pytest.mark.parametrize("factory", [require_file, require_dir, require_glob, forbid_glob])
def test_bad_paths_raise_task_definition_error(factory: object, path: object, message: str) -> None:
    with pytest.raises(TaskDefinitionError, match=re.escape(message)):
        factory(path)  # type: ignore[operator]


def test_min_count_must_not_exceed_max_count() -> None:
    with pytest.raises(
        TaskDefinitionError, match=re.escape("guardrail min_count must be <= max_count")
    ):
        require_glob("*", min_count=3, max_count=2)
    assert require_glob("*", min_count=2, max_count=2).max_count == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_count": -1}, "guardrail min_count must be >= 0"),
        ({"max_count": -1}, "guardrail max_count must be >= 0"),
        ({"min_count": True}, "guardrail min_count must be an integer"),
        ({"max_count": 1.5}, "guardrail max_count must be an integer"),
    ],
)
def test_counts_must_be_non_negative_integers(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(TaskDefinitionError, match=re.escape(message)):
        require_glob("*", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["require_file", "require_dir", "forbid_glob"])
def test_only_require_glob_accepts_count_bounds(kind: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"{kind} does not accept count bounds")):
        perago.WorkspaceSpec.model_validate({"pre": [{"kind": kind, "path": "a", "min_count": 1}]})


def test_unknown_guardrail_kind_is_rejected() -> None:
    with pytest.raises(ValueError, match="guardrail kind must be one of"):
        perago.WorkspaceSpec.model_validate({"pre": [{"kind": "require_link", "path": "a"}]})


# ------------------------------------------------------------------ check_guardrails


def test_passing_guardrails_return_none(tmp_path: Path) -> None:
    _tree(tmp_path, ["raw/a.json", "x.wav"], ["empty"])
    check_guardrails(
        tmp_path,
        [
            require_file("raw/a.json"),
            require_dir("empty"),
            require_glob("*.wav"),
            forbid_glob("*.tmp"),
        ],
        "pre",
    )


def test_require_file_failure_message(tmp_path: Path) -> None:
    _tree(tmp_path, [], ["raw/a.json"])  # a directory is not a file
    with pytest.raises(
        GuardrailViolation,
        match=re.escape("pre guardrail require_file('raw/a.json') did not find a file"),
    ):
        check_guardrails(tmp_path, [require_file("raw/a.json")], "pre")


def test_require_dir_failure_message(tmp_path: Path) -> None:
    _tree(tmp_path, ["raw"])  # a file is not a directory
    with pytest.raises(
        GuardrailViolation,
        match=re.escape("post guardrail require_dir('raw') did not find a directory"),
    ):
        check_guardrails(tmp_path, [require_dir("raw")], "post")


def test_require_glob_min_count_message(tmp_path: Path) -> None:
    _tree(tmp_path, ["a.wav"])
    with pytest.raises(
        GuardrailViolation,
        match=re.escape("pre guardrail require_glob('*.wav') matched 1 files; min_count=2"),
    ):
        check_guardrails(tmp_path, [require_glob("*.wav", min_count=2)], "pre")


def test_require_glob_max_count_message(tmp_path: Path) -> None:
    _tree(tmp_path, ["a.wav", "b.wav", "c.wav"])
    with pytest.raises(
        GuardrailViolation,
        match=re.escape("post guardrail require_glob('*.wav') matched 3 files; max_count=2"),
    ):
        check_guardrails(tmp_path, [require_glob("*.wav", min_count=0, max_count=2)], "post")


def test_forbid_glob_message(tmp_path: Path) -> None:
    _tree(tmp_path, ["a.tmp", "d/b.tmp"])
    with pytest.raises(
        GuardrailViolation,
        match=re.escape("post guardrail forbid_glob('**/*.tmp') matched 2 files"),
    ):
        check_guardrails(tmp_path, [forbid_glob("**/*.tmp")], "post")


def test_first_failure_stops_evaluation(tmp_path: Path) -> None:
    with pytest.raises(GuardrailViolation) as caught:
        check_guardrails(tmp_path, [require_file("first"), require_file("second")], "pre")
    assert "first" in str(caught.value)
    assert "second" not in str(caught.value)


def test_check_guardrails_raises_plain_guardrail_violation(tmp_path: Path) -> None:
    with pytest.raises(GuardrailViolation) as caught:
        check_guardrails(tmp_path, [require_file("missing")], "pre")
    assert type(caught.value) is GuardrailViolation


def test_unknown_phase_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=re.escape("guardrail phase must be 'pre' or 'post'")):
        check_guardrails(tmp_path, [], "during")  # type: ignore[arg-type]


def test_require_file_follows_symlinks(tmp_path: Path) -> None:
    _tree(tmp_path, ["real.json"])
    (tmp_path / "link.json").symlink_to(tmp_path / "real.json")
    check_guardrails(tmp_path, [require_file("link.json"), require_glob("link.json")], "pre")


# ------------------------------------------------------------------ glob semantics


def test_directories_are_not_counted(tmp_path: Path) -> None:
    _tree(tmp_path, ["a.wav", "d.wav/inner.txt"], ["e.wav"])
    assert count_glob_matches(tmp_path, "*.wav") == 1


def test_double_star_matches_zero_or_more_directories(tmp_path: Path) -> None:
    _tree(tmp_path, ["a.wav", "x/b.wav", "x/y/c.wav", "x/y/c.txt"])
    assert count_glob_matches(tmp_path, "**/*.wav") == 3
    assert count_glob_matches(tmp_path, "x/**/*.wav") == 2
    assert count_glob_matches(tmp_path, "x/**/y/*.wav") == 1


def test_trailing_double_star_matches_every_file_below(tmp_path: Path) -> None:
    _tree(tmp_path, ["x", "x2/a", "d/a", "d/e/b"], ["d/empty"])
    assert count_glob_matches(tmp_path, "**") == 4
    assert count_glob_matches(tmp_path, "d/**") == 2
    assert count_glob_matches(tmp_path, "x/**") == 0


def test_hidden_files_match(tmp_path: Path) -> None:
    _tree(tmp_path, [".hidden", ".cache/a.wav"])
    assert count_glob_matches(tmp_path, "*") == 1
    assert count_glob_matches(tmp_path, "**/*.wav") == 1


def test_matching_is_case_sensitive(tmp_path: Path) -> None:
    _tree(tmp_path, ["A.WAV", "b.wav"])
    assert count_glob_matches(tmp_path, "*.wav") == 1


def test_symlinked_directories_are_not_descended(tmp_path: Path) -> None:
    _tree(tmp_path, ["d/a.wav"])
    (tmp_path / "loop").symlink_to(tmp_path, target_is_directory=True)
    assert count_glob_matches(tmp_path, "**/*.wav") == 1


def test_missing_root_matches_nothing(tmp_path: Path) -> None:
    assert count_glob_matches(tmp_path / "missing", "**") == 0


def _reference_regex(pattern: str) -> re.Pattern[str]:
    """An independent translation of the documented semantics into one regular expression."""
    segments = pattern.split("/")
    if segments[-1] == "**":
        segments.append("*")
    out = ""
    for segment in segments[:-1]:
        if segment == "**":
            out += "(?:[^/]+/)*"
        else:
            out += _segment_regex(segment) + "/"
    return re.compile(out + _segment_regex(segments[-1]))


def _segment_regex(segment: str) -> str:
    return "".join(
        "[^/]*" if ch == "*" else "[^/]" if ch == "?" else re.escape(ch) for ch in segment
    )


_NAMES = st.sampled_from(["a", "b", ".h", "a.w", "ab.w"])
_PATTERN_SEGMENTS = st.sampled_from(["a", "b", "*", "?", "**", "*.w", ".h", "a*", "?b*", "*.*"])


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    files=st.lists(st.lists(_NAMES, min_size=1, max_size=4), max_size=12),
    pattern=st.lists(_PATTERN_SEGMENTS, min_size=1, max_size=4),
)
def test_glob_counts_agree_with_brute_force(
    tmp_path_factory: pytest.TempPathFactory, files: list[list[str]], pattern: list[str]
) -> None:
    root = tmp_path_factory.mktemp("glob")
    created: set[str] = set()
    for segments in files:
        rel = "/".join(segments)
        # Skip paths that collide with an existing file/directory of the other kind.
        if any(rel.startswith(f"{other}/") or other.startswith(f"{rel}/") for other in created):
            continue
        _tree(root, [rel])
        created.add(rel)
    text = "/".join(pattern)
    regex = _reference_regex(text)
    expected = sum(1 for rel in created if regex.fullmatch(rel))
    assert count_glob_matches(root, text) == expected
    for rel in created:
        assert glob_segments_match(pattern, rel.split("/")) == bool(regex.fullmatch(rel))
