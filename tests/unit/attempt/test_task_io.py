"""Input wrapper, params (strict and lenient) and output validation."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from perago.attempt.result import InvalidAttemptInput
from perago.attempt.validation import (
    parse_workspace_free_task_input,
    parse_workspace_task_input,
    validate_task_output,
)
from perago.definition.decorator import TaskDefinition
from tests.unit.conftest import WORKSPACE, Output, make_task


def test_valid_input_with_ref_type_alias() -> None:
    workspace = dict(WORKSPACE)
    workspace["refType"] = workspace.pop("ref_type")
    ws, params = parse_workspace_task_input(
        make_task(), {"workspace": workspace, "params": {"name": "a"}}
    )
    assert ws.ref == "c0ffee"
    assert params.model_dump()["name"] == "a"


@pytest.mark.parametrize(
    "data",
    [
        {"params": {"name": "a"}},
        {"workspace": WORKSPACE, "params": {"name": "a"}, "other": 1},
        "not a mapping",
    ],
)
def test_strict_wrapper_shape(data: Any) -> None:
    with pytest.raises(InvalidAttemptInput, match="must contain only workspace and params"):
        parse_workspace_task_input(make_task(), data)


def test_lenient_wrapper_ignores_unknown_top_level_keys() -> None:
    task = make_task(strict=False)
    _, params = parse_workspace_task_input(
        task, {"workspace": WORKSPACE, "params": {"name": "a", "x": 1}, "other": 1}
    )
    assert params.model_dump()["name"] == "a"
    with pytest.raises(InvalidAttemptInput, match="must contain workspace and params"):
        parse_workspace_task_input(task, {"params": {}})


def test_invalid_workspace_input() -> None:
    with pytest.raises(InvalidAttemptInput, match="invalid workspace input: ref_type"):
        parse_workspace_task_input(
            make_task(), {"workspace": {**WORKSPACE, "ref_type": "branch"}, "params": {"name": "a"}}
        )


@pytest.mark.parametrize(
    ("params", "location"),
    [
        ({"name": "a", "x": 1}, "x"),
        ({"name": "a", "inner": {"level": 1, "deep": 2}}, "inner.deep"),
        ({"name": "a", "items": [{"level": 1}, {"bad": 1}]}, "items.1.bad"),
    ],
)
def test_strict_params_forbid_unknown_fields_at_every_level(
    params: dict[str, Any], location: str
) -> None:
    with pytest.raises(InvalidAttemptInput, match=f"invalid params: {location}: Extra inputs"):
        parse_workspace_task_input(make_task(), {"workspace": WORKSPACE, "params": params})


def test_invalid_params_message() -> None:
    with pytest.raises(InvalidAttemptInput, match="invalid params: name: Field required"):
        parse_workspace_free_task_input(make_task(workspace=False), {"params": {}})
    with pytest.raises(InvalidAttemptInput, match="must contain only params"):
        parse_workspace_free_task_input(make_task(workspace=False), {"params": {}, "w": 1})


def test_model_that_allows_extra_keeps_it_in_strict_mode() -> None:
    class Open(BaseModel):
        model_config = ConfigDict(extra="allow")
        a: int

    task = TaskDefinition(
        name="t", owner_email="o@x", fn=lambda p: p, params_model=Open, output_model=Open
    )
    params = parse_workspace_free_task_input(task, {"params": {"a": 1, "b": 2}})
    assert params.model_dump() == {"a": 1, "b": 2}


def test_output_accepts_model_or_mapping_and_forbids_extra() -> None:
    task = make_task()
    assert validate_task_output(task, Output(ok=True)).model_dump() == {"ok": True, "note": ""}
    assert validate_task_output(task, {"ok": False}).model_dump()["ok"] is False
    with pytest.raises(ValueError, match=r"invalid task output \(Output\): extra: Extra inputs"):
        validate_task_output(task, {"ok": True, "extra": 1})
    with pytest.raises(ValueError, match=r"invalid task output \(Output\): ok: "):
        validate_task_output(task, {"note": "x"})
