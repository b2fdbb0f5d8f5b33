"""WorkspaceSpec prefix rules and the Conductor workspace reference objects."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from perago import WorkspaceInput, WorkspaceOutput, WorkspaceSpec, require_file
from perago.definition.workspace import WorkspaceRef, normalize_workspace_prefix
from perago.errors import TaskDefinitionError

REF: dict[str, str] = {
    "repository": "repo",
    "branch": "main",
    "ref_type": "commit",
    "ref": "c0ffee",
}


def test_spec_defaults() -> None:
    spec = WorkspaceSpec()
    assert (spec.prefix, spec.pre, spec.post, spec.read_only) == ("/", [], [], False)


def test_spec_is_frozen_and_forbids_extra() -> None:
    spec = WorkspaceSpec()
    with pytest.raises(ValidationError, match="frozen"):
        spec.prefix = "x"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        WorkspaceSpec.model_validate({"prefix": "a", "branch": "main"})


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("/", "/"),
        (" / ", "/"),
        ("audio", "audio"),
        ("/audio/render", "audio/render"),
        ("//audio/render", "audio/render"),
        (" audio/render ", "audio/render"),
        ("audio/render/", "audio/render"),  # Improved: one trailing slash is dropped
        ("/audio/", "audio"),
        ("a b/ü.x", "a b/ü.x"),
    ],
)
def test_prefix_normalisation(given: str, expected: str) -> None:
    assert WorkspaceSpec(prefix=given).prefix == expected


def _rejects(prefix: str, message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        WorkspaceSpec(prefix=prefix)
    with pytest.raises(TaskDefinitionError, match=re.escape(message)):
        normalize_workspace_prefix(prefix)


@pytest.mark.parametrize("prefix", ["a\\b", "\\", "C:\\data"])
def test_backslash_prefix_is_rejected(prefix: str) -> None:
    _rejects(prefix, "WorkspaceSpec.prefix must use '/' separators")


@pytest.mark.parametrize("prefix", ["", " ", "//", "///"])
def test_empty_prefix_is_rejected(prefix: str) -> None:
    _rejects(prefix, "WorkspaceSpec.prefix must not be empty")


@pytest.mark.parametrize("prefix", ["a//b", "a/../b", "..", "./a", "a/.", "a//", "a/b//"])
def test_prefix_must_stay_inside_repository(prefix: str) -> None:
    _rejects(prefix, "WorkspaceSpec.prefix must stay inside the repository")


@pytest.mark.parametrize("prefix", ["C:/x", "c:", "/D:/data", "z:x"])
def test_drive_like_prefix_is_rejected(prefix: str) -> None:
    _rejects(prefix, "WorkspaceSpec.prefix must not be drive-qualified")


def test_prefix_colon_later_in_path_is_allowed() -> None:
    assert WorkspaceSpec(prefix="data/C:x").prefix == "data/C:x"


_SEGMENT = st.text(
    alphabet=st.characters(blacklist_characters="/\\", blacklist_categories=["Cs"]), min_size=1
).filter(lambda s: s not in (".", "..") and s.strip() == s and not re.match(r"^[A-Za-z]:", s))


@settings(deadline=None)
@given(
    segments=st.lists(_SEGMENT, min_size=1, max_size=5),
    leading=st.integers(0, 3),
    trailing=st.booleans(),
)
def test_prefix_normalisation_property(segments: list[str], leading: int, trailing: bool) -> None:
    prefix = "/" * leading + "/".join(segments) + ("/" if trailing else "")
    normalised = WorkspaceSpec(prefix=prefix).prefix
    assert normalised == "/".join(segments)
    # Normalisation is idempotent.
    assert WorkspaceSpec(prefix=normalised).prefix == normalised


def test_guardrails_may_be_given_as_dicts() -> None:
    spec = WorkspaceSpec.model_validate(
        {"pre": [{"kind": "require_file", "path": "a.json"}], "post": [require_file("b")]}
    )
    assert spec.pre == [require_file("a.json")]
    assert spec.post == [require_file("b")]


def test_invalid_guardrail_dict_is_a_validation_error() -> None:
    with pytest.raises(ValidationError, match=re.escape("must not contain '..'")):
        WorkspaceSpec.model_validate({"pre": [{"kind": "require_file", "path": "../a"}]})


@pytest.mark.parametrize("model", [WorkspaceInput, WorkspaceOutput])
def test_reference_accepts_canonical_ref_type(model: type[WorkspaceRef]) -> None:
    ref = model.model_validate(REF)
    assert (ref.repository, ref.branch, ref.ref_type, ref.ref) == (
        "repo",
        "main",
        "commit",
        "c0ffee",
    )


@pytest.mark.parametrize("model", [WorkspaceInput, WorkspaceOutput])
def test_reference_also_accepts_ref_type_camel_case(model: type[WorkspaceRef]) -> None:
    data = {**{k: v for k, v in REF.items() if k != "ref_type"}, "refType": "commit"}
    assert model.model_validate(data).ref_type == "commit"


def test_reference_dumps_canonical_spelling() -> None:
    data = {**{k: v for k, v in REF.items() if k != "ref_type"}, "refType": "commit"}
    assert WorkspaceOutput.model_validate(data).model_dump(mode="json") == REF


def test_ref_type_must_be_commit() -> None:
    with pytest.raises(ValidationError, match="ref_type"):
        WorkspaceInput.model_validate({**REF, "ref_type": "branch"})


def test_ref_type_is_required() -> None:
    with pytest.raises(ValidationError, match="ref_type"):
        WorkspaceInput.model_validate({k: v for k, v in REF.items() if k != "ref_type"})


@pytest.mark.parametrize("model", [WorkspaceInput, WorkspaceOutput])
def test_reference_rejects_unknown_fields(model: type[WorkspaceRef]) -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        model.model_validate({**REF, "prefix": "a"})


@pytest.mark.parametrize("field", ["repository", "branch", "ref"])
def test_reference_fields_must_not_be_empty(field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        WorkspaceInput.model_validate({**REF, field: ""})


@pytest.mark.parametrize("field", ["repository", "branch", "ref"])
def test_reference_fields_must_not_be_blank(field: str) -> None:
    message = "workspace repository, branch, and ref must not be blank"
    with pytest.raises(ValidationError, match=re.escape(message)):
        WorkspaceInput.model_validate({**REF, field: "  "})


@pytest.mark.parametrize("field", ["repository", "branch", "ref"])
def test_reference_fields_are_required(field: str) -> None:
    data: dict[str, Any] = {k: v for k, v in REF.items() if k != field}
    with pytest.raises(ValidationError, match=field):
        WorkspaceInput.model_validate(data)


def test_published_output_keeps_repository_and_branch() -> None:
    output = WorkspaceInput.model_validate(REF).published_output("beef")
    assert isinstance(output, WorkspaceOutput)
    assert output.model_dump() == {**REF, "ref": "beef"}


def test_published_output_rejects_empty_ref() -> None:
    with pytest.raises(ValidationError, match="ref"):
        WorkspaceInput.model_validate(REF).published_output("")
