"""TaskDef JSON: key order, controls, wrappers, schema rewriting, recursion, files."""

from __future__ import annotations

import enum
import json
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

import jsonschema
import pytest
from pydantic import BaseModel, ConfigDict, Field, RootModel

from perago import (
    ExecutionLimits,
    RetryPolicy,
    TaskControls,
    TaskDefinition,
    TaskDefinitionError,
    TimeoutPolicy,
    WorkspaceSpec,
    build_taskdef,
    task,
    write_taskdef,
)
from perago.definition.decorator import TASK_ATTRIBUTE
from perago.definition.taskdef import (
    TASKDEF_SCHEMA_TYPE,
    TASKDEF_SCHEMA_VERSION,
    schema_for_model,
    task_contract_warnings,
)
from tests.unit.conftest import BUDGET

REF_SCHEMA = {
    "type": "object",
    "properties": {
        "repository": {"minLength": 1, "type": "string"},
        "branch": {"minLength": 1, "type": "string"},
        "ref_type": {"const": "commit", "type": "string"},
        "ref": {"minLength": 1, "type": "string"},
    },
    "required": ["repository", "branch", "ref_type", "ref"],
    "additionalProperties": False,
}
WORKSPACE = {"repository": "r", "branch": "main", "ref_type": "commit", "ref": "abc"}


class Inner(BaseModel):
    """Inner docs are model-level and must disappear."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"x": 1}]})

    x: int = Field(ge=0, description="an x", examples=[3])


class Params(BaseModel):
    """Params docs."""

    name: str = Field(min_length=1, description="the name")
    inner: Inner = Field(description="nested model")
    items: list[Inner] = []
    tags: dict[str, int] = {}
    title: str = "kept field literally named title"
    meta: dict[str, Any] = {"title": "default data is untouched"}


class Output(BaseModel):
    total: int


class Node(BaseModel):
    """A tree node."""

    name: str
    children: list[Node] = []


class Forest(BaseModel):
    label: str
    trees: list[Node]
    best: Node | None = None
    extra: Inner | None = None


class Even(BaseModel):
    next: Odd | None = None


class Odd(BaseModel):
    next: Even | None = None
    value: int = 0


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Colored(BaseModel):
    color: Color
    shade: Literal["light", "dark"] = "light"


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]


def make_task(
    params: type[BaseModel] = Params,
    output: type[BaseModel] = Output,
    *,
    workspace: WorkspaceSpec | None = None,
    **kwargs: Any,
) -> TaskDefinition:
    # The real annotations are the models given here, set on __annotations__ below.
    body: Callable[..., Any]
    if workspace is None:

        def free_body(params: Any) -> Any:
            raise NotImplementedError

        free_body.__annotations__ = {"params": params, "return": output}
        body = free_body
    else:

        def workspace_body(workspace: Any, params: Any) -> Any:
            raise NotImplementedError

        workspace_body.__annotations__ = {"workspace": Path, "params": params, "return": output}
        body = workspace_body
    decorated = task(
        name=kwargs.pop("name", "demo.task"), owner_email="o@e.x", workspace=workspace, **kwargs
    )(body)
    definition = getattr(decorated, TASK_ATTRIBUTE)
    assert isinstance(definition, TaskDefinition)
    return definition


def _validator(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    cls.check_schema(schema)
    return cls(schema)


def _objects_with_properties(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if isinstance(node.get("properties"), dict) and node.get("type") == "object":
            found.append(node)
        for key, value in node.items():
            if key not in ("default", "examples"):
                found.extend(_objects_with_properties(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_objects_with_properties(item))
    return found


# ------------------------------------------------------------------ top-level keys


def test_key_order_of_a_workspace_free_task() -> None:
    taskdef = build_taskdef(make_task())
    assert list(taskdef) == [
        "name",
        "ownerEmail",
        "retryCount",
        "retryLogic",
        "retryDelaySeconds",
        "maxRetryDelaySeconds",
        "backoffJitterMs",
        "totalTimeoutSeconds",
        "timeoutPolicy",
        "timeoutSeconds",
        "responseTimeoutSeconds",
        "pollTimeoutSeconds",
        "inputKeys",
        "outputKeys",
        "inputSchema",
        "outputSchema",
    ]


def test_defaults_are_written_explicitly() -> None:
    taskdef = build_taskdef(make_task())
    assert taskdef["name"] == "demo.task"
    assert taskdef["ownerEmail"] == "o@e.x"
    assert {k: taskdef[k] for k in list(taskdef)[2:12]} == {
        "retryCount": 3,
        "retryLogic": "FIXED",
        "retryDelaySeconds": 60,
        "maxRetryDelaySeconds": 0,
        "backoffJitterMs": 0,
        "totalTimeoutSeconds": 0,
        "timeoutPolicy": "TIME_OUT_WF",
        "timeoutSeconds": 0,
        "responseTimeoutSeconds": 600,
        "pollTimeoutSeconds": 0,
    }


def test_description_follows_owner_when_set() -> None:
    taskdef = build_taskdef(make_task(description="Builds things"))
    assert list(taskdef)[:3] == ["name", "ownerEmail", "description"]
    assert taskdef["description"] == "Builds things"


def test_controls_map_to_taskdef_keys() -> None:
    controls = TaskControls(
        retry=RetryPolicy(
            count=5, logic="EXPONENTIAL_BACKOFF", delay_seconds=7, max_delay_seconds=70, jitter_ms=9
        ),
        timeout=TimeoutPolicy(
            policy="RETRY", seconds=3600, response_seconds=300, poll_seconds=11, total_seconds=7200
        ),
    )
    taskdef = build_taskdef(make_task(controls=controls))
    assert (taskdef["retryCount"], taskdef["retryLogic"]) == (5, "EXPONENTIAL_BACKOFF")
    assert (taskdef["retryDelaySeconds"], taskdef["maxRetryDelaySeconds"]) == (7, 70)
    assert taskdef["backoffJitterMs"] == 9
    assert (taskdef["timeoutPolicy"], taskdef["timeoutSeconds"]) == ("RETRY", 3600)
    assert (taskdef["responseTimeoutSeconds"], taskdef["pollTimeoutSeconds"]) == (300, 11)
    assert taskdef["totalTimeoutSeconds"] == 7200


def test_limit_keys_only_when_set() -> None:
    assert "concurrentExecLimit" not in build_taskdef(make_task())
    limits = ExecutionLimits(
        concurrent_exec_limit=0, rate_limit_frequency_in_seconds=60, rate_limit_per_frequency=5
    )
    taskdef = build_taskdef(make_task(controls=TaskControls(limits=limits)))
    keys = list(taskdef)
    assert keys[keys.index("pollTimeoutSeconds") + 1 : keys.index("inputKeys")] == [
        "concurrentExecLimit",
        "rateLimitFrequencyInSeconds",
        "rateLimitPerFrequency",
    ]
    assert (taskdef["concurrentExecLimit"], taskdef["rateLimitPerFrequency"]) == (0, 5)
    only_concurrency = TaskControls(limits=ExecutionLimits(concurrent_exec_limit=2))
    taskdef = build_taskdef(make_task(controls=only_concurrency))
    assert taskdef["concurrentExecLimit"] == 2
    assert "rateLimitFrequencyInSeconds" not in taskdef


def test_nothing_about_the_workspace_or_budget_leaks_into_the_taskdef() -> None:
    spec = WorkspaceSpec(prefix="secret/prefix", read_only=False)
    taskdef = build_taskdef(make_task(workspace=spec, controls=TaskControls(publish_budget=BUDGET)))
    text = json.dumps(taskdef)
    assert "secret/prefix" not in text
    assert "budget" not in text.lower()
    for key in ("inputTemplate", "enforceSchema", "ownerApp", "executionNameSpace"):
        assert key not in taskdef


# ------------------------------------------------------------------ wrappers


def test_workspace_free_wrappers() -> None:
    taskdef = build_taskdef(make_task(params=Output, output=Output))
    assert taskdef["inputKeys"] == ["params"]
    assert taskdef["outputKeys"] == ["result"]
    assert taskdef["inputSchema"] == {
        "name": "demo.task.input",
        "version": 1,
        "type": "JSON",
        "data": {
            "type": "object",
            "properties": {"params": schema_for_model(Output)},
            "required": ["params"],
            "additionalProperties": False,
        },
    }
    assert taskdef["outputSchema"] == {
        "name": "demo.task.output",
        "version": 1,
        "type": "JSON",
        "data": {
            "type": "object",
            "properties": {"result": schema_for_model(Output)},
            "required": ["result"],
            "additionalProperties": False,
        },
    }
    assert (TASKDEF_SCHEMA_VERSION, TASKDEF_SCHEMA_TYPE) == (1, "JSON")


def test_workspace_wrappers() -> None:
    taskdef = build_taskdef(make_task(workspace=WorkspaceSpec()))
    assert taskdef["inputKeys"] == ["workspace", "params"]
    assert taskdef["outputKeys"] == ["workspace", "result"]
    data_in = taskdef["inputSchema"]["data"]
    data_out = taskdef["outputSchema"]["data"]
    assert list(data_in["properties"]) == ["workspace", "params"]
    assert data_in["required"] == ["workspace", "params"]
    assert list(data_out["properties"]) == ["workspace", "result"]
    assert data_out["required"] == ["workspace", "result"]
    assert data_in["properties"]["workspace"] == REF_SCHEMA
    assert data_out["properties"]["workspace"] == REF_SCHEMA


def test_wrappers_validate_real_payloads() -> None:
    taskdef = build_taskdef(make_task(workspace=WorkspaceSpec()))
    params = Params(name="n", inner=Inner(x=1), items=[Inner(x=2)]).model_dump(mode="json")
    inputs = _validator(taskdef["inputSchema"]["data"])
    outputs = _validator(taskdef["outputSchema"]["data"])
    assert not list(inputs.iter_errors({"workspace": WORKSPACE, "params": params}))
    assert list(inputs.iter_errors({"workspace": WORKSPACE, "params": params, "more": 1}))
    assert list(inputs.iter_errors({"params": params}))
    bad_ref = {**WORKSPACE, "ref_type": "branch"}
    assert list(inputs.iter_errors({"workspace": bad_ref, "params": params}))
    assert not list(outputs.iter_errors({"workspace": WORKSPACE, "result": {"total": 1}}))
    assert list(outputs.iter_errors({"workspace": WORKSPACE, "result": {"total": 1, "x": 2}}))


# ------------------------------------------------------------------ additionalProperties


def test_strict_params_forbid_extra_everywhere() -> None:
    data = build_taskdef(make_task())["inputSchema"]["data"]
    assert data["additionalProperties"] is False
    objects = _objects_with_properties(data["properties"]["params"])
    assert len(objects) >= 3  # Params, inline Inner, Inner inside items
    assert all(obj["additionalProperties"] is False for obj in objects)


def test_lenient_params_allow_extra_in_params_and_wrapper_only() -> None:
    taskdef = build_taskdef(make_task(workspace=WorkspaceSpec(), strict_params=False))
    data = taskdef["inputSchema"]["data"]
    assert data["additionalProperties"] is True
    assert all(
        obj["additionalProperties"] is True
        for obj in _objects_with_properties(data["properties"]["params"])
    )
    assert data["properties"]["workspace"]["additionalProperties"] is False
    output = taskdef["outputSchema"]["data"]
    assert output["additionalProperties"] is False
    assert all(obj["additionalProperties"] is False for obj in _objects_with_properties(output))


def test_lenient_schema_accepts_unknown_keys_at_every_level() -> None:
    data = build_taskdef(make_task(strict_params=False))["inputSchema"]["data"]
    params: dict[str, Any] = {"name": "n", "inner": {"x": 1, "unknown": 2}, "unknown": 3}
    assert not list(_validator(data).iter_errors({"params": params, "other": 1}))


def test_output_schema_is_strict_even_for_models_allowing_extra() -> None:
    class Loose(BaseModel):
        model_config = ConfigDict(extra="allow")
        total: int

    data = build_taskdef(make_task(output=Loose))["outputSchema"]["data"]
    assert data["properties"]["result"]["additionalProperties"] is False


def test_dict_fields_keep_their_value_schema() -> None:
    params = schema_for_model(Params)
    assert params["properties"]["tags"]["additionalProperties"] == {"type": "integer"}
    assert params["properties"]["meta"]["additionalProperties"] is True


# ------------------------------------------------------------------ model schema rewriting


def test_model_level_title_description_and_extras_are_removed() -> None:
    schema = schema_for_model(Params)
    assert set(schema) == {"type", "properties", "required", "additionalProperties"}
    inner = schema["properties"]["inner"]
    assert "title" not in inner
    assert inner["description"] == "nested model"  # field-level description wins
    assert "examples" not in inner  # model-level json_schema_extra dropped
    assert "Inner docs" not in json.dumps(schema)
    assert "Params docs" not in json.dumps(schema)


def test_field_metadata_is_kept() -> None:
    schema = schema_for_model(Params)
    assert schema["properties"]["name"] == {
        "description": "the name",
        "minLength": 1,
        "type": "string",
    }
    x = schema["properties"]["inner"]["properties"]["x"]
    assert x == {"description": "an x", "examples": [3], "minimum": 0, "type": "integer"}
    assert schema["properties"]["items"]["default"] == []


def test_titles_are_removed_but_fields_named_title_and_data_survive() -> None:
    schema = schema_for_model(Params)
    assert schema["properties"]["title"] == {
        "default": "kept field literally named title",
        "type": "string",
    }
    assert schema["properties"]["meta"]["default"] == {"title": "default data is untouched"}
    text = json.dumps(schema)
    assert text.count('"title"') == 2  # the property name and the default's data key


def test_refs_are_inlined_and_defs_dropped_for_plain_models() -> None:
    schema = schema_for_model(Params)
    assert "$ref" not in json.dumps(schema)
    assert "$defs" not in schema
    assert schema["properties"]["items"]["items"]["properties"]["x"]["type"] == "integer"


def test_enum_and_literal_fields() -> None:
    schema = schema_for_model(Colored)
    assert schema["properties"]["color"]["enum"] == ["red", "blue"]
    assert schema["properties"]["shade"]["enum"] == ["light", "dark"]
    assert "$defs" not in schema


def test_generic_models() -> None:
    schema = schema_for_model(Page[Inner])
    assert schema["properties"]["items"]["items"]["properties"]["x"]["type"] == "integer"
    assert "$ref" not in json.dumps(schema)


def test_allow_extra_parameter() -> None:
    assert schema_for_model(Output, allow_extra=True)["additionalProperties"] is True
    assert schema_for_model(Output)["additionalProperties"] is False


def test_workspace_reference_schema() -> None:
    from perago import WorkspaceInput, WorkspaceOutput

    assert schema_for_model(WorkspaceInput) == REF_SCHEMA
    assert schema_for_model(WorkspaceOutput) == REF_SCHEMA


# ------------------------------------------------------------------ recursive models (Improved)


def test_self_recursive_model_schema() -> None:
    schema = schema_for_model(Node)
    assert schema["type"] == "object"
    assert set(schema["properties"]) == {"name", "children"}
    assert schema["properties"]["children"]["items"] == {"$ref": "#/$defs/Node"}
    assert schema["$defs"]["Node"]["additionalProperties"] is False
    validator = _validator(schema)
    good = Node(name="a", children=[Node(name="b", children=[Node(name="c")])])
    assert not list(validator.iter_errors(good.model_dump(mode="json")))
    bad: dict[str, Any] = {"name": "a", "children": [{"name": "b", "children": [{"name": 3}]}]}
    assert list(validator.iter_errors(bad))
    extra: dict[str, Any] = {"name": "a", "children": [{"name": "b", "oops": 1}]}
    assert list(validator.iter_errors(extra))


def test_model_nesting_a_recursive_model() -> None:
    schema = schema_for_model(Forest)
    assert set(schema["$defs"]) == {"Node"}  # Inner is not recursive: inlined
    assert schema["properties"]["extra"]["anyOf"][0]["properties"]["x"]["type"] == "integer"
    validator = _validator(schema)
    forest = Forest(
        label="f", trees=[Node(name="t", children=[Node(name="u")])], best=Node(name="b")
    )
    assert not list(validator.iter_errors(forest.model_dump(mode="json")))
    assert list(validator.iter_errors({"label": "f", "trees": [{"children": []}]}))


def test_mutually_recursive_models() -> None:
    schema = schema_for_model(Even)
    assert set(schema["$defs"]) == {"Even", "Odd"}
    validator = _validator(schema)
    chain = Even(next=Odd(value=1, next=Even(next=Odd(value=2))))
    assert not list(validator.iter_errors(chain.model_dump(mode="json")))
    assert list(validator.iter_errors({"next": {"next": {"next": {"value": "x"}}}}))


@pytest.mark.parametrize("strict", [True, False])
def test_recursive_params_in_a_taskdef_validate_as_a_whole_document(strict: bool) -> None:
    taskdef = build_taskdef(make_task(params=Forest, output=Node, strict_params=strict))
    inputs = taskdef["inputSchema"]["data"]
    outputs = taskdef["outputSchema"]["data"]
    assert "$defs" not in inputs["properties"]["params"]  # hoisted to the document root
    assert set(inputs["$defs"]) == {"Node"}
    assert inputs["$defs"]["Node"]["additionalProperties"] is (not strict)
    assert outputs["$defs"]["Node"]["additionalProperties"] is False
    forest = Forest(label="f", trees=[Node(name="t", children=[Node(name="u")])])
    assert not list(_validator(inputs).iter_errors({"params": forest.model_dump(mode="json")}))
    tree = Node(name="r", children=[Node(name="s")]).model_dump(mode="json")
    assert not list(_validator(outputs).iter_errors({"result": tree}))
    deep_extra: dict[str, Any] = {"name": "r", "children": [{"name": "s", "extra": 1}]}
    assert list(_validator(outputs).iter_errors({"result": deep_extra}))
    json.dumps(taskdef)


class Cat(BaseModel):
    kind: Literal["cat"] = "cat"


class Dog(BaseModel):
    kind: Literal["dog"] = "dog"
    friend: Dog | None = None


class Pet(BaseModel):
    pet: Cat | Dog = Field(discriminator="kind")


def test_discriminated_union_with_a_recursive_member() -> None:
    schema = schema_for_model(Pet)
    assert list(schema) == ["type", "properties", "required", "additionalProperties", "$defs"]
    # Cat was inlined, so a mapping to "#/$defs/Cat" would dangle: it is dropped.
    assert schema["properties"]["pet"]["discriminator"] == {"propertyName": "kind"}
    assert set(schema["$defs"]) == {"Dog"}
    validator = _validator(schema)
    pet = Pet(pet=Dog(friend=Dog()))
    assert not list(validator.iter_errors(pet.model_dump(mode="json")))
    assert list(validator.iter_errors({"pet": {"kind": "cow"}}))
    assert list(validator.iter_errors({"pet": {"kind": "dog", "friend": {"kind": "cat"}}}))


# ------------------------------------------------------------------ rejected models


class RootParams(RootModel[list[int]]):
    pass


class HoldsRoot(BaseModel):
    values: RootParams


def test_root_model_params_are_rejected() -> None:
    message = (
        "Pydantic RootModel on task model(s) RootParams is not supported; Perago task contracts "
        "must use ordinary BaseModel object models."
    )
    with pytest.raises(TaskDefinitionError, match=f"^{re.escape(message)}$"):
        build_taskdef(make_task(params=RootParams))


def test_nested_and_output_root_models_are_named() -> None:
    with pytest.raises(TaskDefinitionError, match=re.escape("task model(s) RootParams is not")):
        build_taskdef(make_task(params=HoldsRoot))
    with pytest.raises(TaskDefinitionError, match=re.escape("task model(s) RootParams is not")):
        build_taskdef(make_task(output=RootParams))


class WithCallback(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)
    callback: Callable[[int], int]


class HoldsCallback(BaseModel):
    name: str
    nested: WithCallback


def test_callable_field_is_rejected_with_model_and_field() -> None:
    with pytest.raises(TaskDefinitionError) as caught:
        build_taskdef(make_task(params=WithCallback))
    message = str(caught.value)
    assert message.startswith("model WithCallback cannot be described as JSON schema: ")
    assert "field WithCallback.callback" in message
    assert "CallableSchema" in message


def test_nested_callable_field_names_the_inner_model() -> None:
    with pytest.raises(TaskDefinitionError, match=re.escape("field WithCallback.callback")):
        build_taskdef(make_task(output=HoldsCallback))


# ------------------------------------------------------------------ warnings


def test_short_response_timeout_warns_for_writable_budgeted_tasks() -> None:
    controls = TaskControls(timeout=TimeoutPolicy(response_seconds=60), publish_budget=BUDGET)
    definition = make_task(workspace=WorkspaceSpec(), controls=controls, name="writer")
    message = (
        "Task 'writer' has TaskControls.timeout.response_seconds=60 which is shorter than "
        "publish_budget.response_timeout_seconds=100; responseTimeoutSeconds will use "
        "timeout.response_seconds"
    )
    with pytest.warns(UserWarning, match=f"^{re.escape(message)}$"):
        taskdef = build_taskdef(definition)
    assert taskdef["responseTimeoutSeconds"] == 60


@pytest.mark.parametrize(
    ("read_only", "response"),
    [(True, 60), (False, 100), (False, 600)],
)
def test_no_response_timeout_warning_otherwise(read_only: bool, response: int) -> None:
    controls = TaskControls(timeout=TimeoutPolicy(response_seconds=response), publish_budget=BUDGET)
    definition = make_task(workspace=WorkspaceSpec(read_only=read_only), controls=controls)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert build_taskdef(definition)["responseTimeoutSeconds"] == response


def test_contract_warnings_are_empty_for_plain_tasks() -> None:
    assert task_contract_warnings(make_task(params=Output)) == []


def test_read_only_budget_warning() -> None:
    definition = make_task(
        params=Output,
        workspace=WorkspaceSpec(read_only=True),
        controls=TaskControls(publish_budget=BUDGET),
    )
    assert task_contract_warnings(definition) == [
        "WorkspaceSpec(read_only=True) disables workspace publication; "
        "TaskControls.publish_budget is ignored."
    ]


def test_config_dict_warning_names_configured_models() -> None:
    class Strict(BaseModel):
        model_config = ConfigDict(frozen=True)
        value: int

    class Wrapper(BaseModel):
        strict: list[Strict]

    definition = make_task(params=Wrapper, output=Params)
    assert task_contract_warnings(definition) == [
        "Pydantic ConfigDict on task model(s) Strict, Inner is not part of the Perago task "
        "contract; Perago does not guarantee TaskDef or runtime behavior for "
        "ConfigDict-configured task models."
    ]


# ------------------------------------------------------------------ write_taskdef


def test_write_taskdef_creates_parents_and_formats(tmp_path: Path) -> None:
    definition = make_task()
    path = tmp_path / "generated" / "deep" / "demo.json"
    assert write_taskdef(definition, path) == path
    text = path.read_text(encoding="utf-8")
    assert text == json.dumps(build_taskdef(definition), indent=2) + "\n"
    assert list(json.loads(text)) == list(build_taskdef(definition))
    assert [p.name for p in path.parent.iterdir()] == ["demo.json"]


def test_write_taskdef_accepts_strings_and_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "demo.json"
    path.write_text("old")
    write_taskdef(make_task(), str(path))
    assert json.loads(path.read_text())["name"] == "demo.task"


@pytest.mark.parametrize("name", ["demo.txt", "demo", "demo.JSON", "demo.json.bak"])
def test_write_taskdef_requires_json_suffix(tmp_path: Path, name: str) -> None:
    message = "output must be a JSON file path, for example generated/features.build.json"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        write_taskdef(make_task(), tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_write_taskdef_rejects_directories(tmp_path: Path) -> None:
    directory = tmp_path / "out.json"
    directory.mkdir()
    with pytest.raises(
        ValueError, match=re.escape("output must be a JSON file path, not a directory")
    ):
        write_taskdef(make_task(), directory)


def test_write_taskdef_writes_nothing_when_the_task_is_invalid(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "bad.json"
    with pytest.raises(TaskDefinitionError):
        write_taskdef(make_task(params=RootParams), path)
    assert not (tmp_path / "sub").exists()
