"""The @task decorator — metadata rules, signature rules and TaskDefinition."""

from __future__ import annotations

import dataclasses
import re
import types
from collections.abc import Callable
from pathlib import Path, PurePath
from typing import Any

import pytest
from pydantic import BaseModel

from perago import (
    TaskControls,
    TaskDefinition,
    TaskDefinitionError,
    WorkspaceSpec,
    task,
)
from perago.definition.decorator import TASK_ATTRIBUTE
from tests.unit.conftest import BUDGET


class Params(BaseModel):
    n: int


class Output(BaseModel):
    total: int


class NotAModel:
    pass


def free_body(params: Params) -> Output:
    return Output(total=params.n)


def workspace_body(workspace: Path, params: Params) -> Output:
    return Output(total=params.n)


def _copy(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A fresh function object with the same code, so each test decorates a new function."""
    assert isinstance(fn, types.FunctionType)
    clone = types.FunctionType(
        fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__
    )
    clone.__annotations__ = dict(fn.__annotations__)
    clone.__kwdefaults__ = fn.__kwdefaults__
    return clone


def _definition(fn: Callable[..., Any]) -> TaskDefinition:
    definition = fn.__dict__[TASK_ATTRIBUTE]
    assert isinstance(definition, TaskDefinition)
    return definition


def _raises(message: str) -> Any:
    return pytest.raises(TaskDefinitionError, match=f"^{re.escape(message)}$")


# ------------------------------------------------------------------ successful declarations


def test_workspace_free_task_definition() -> None:
    fn = _copy(free_body)
    returned = task(name="sum.build", owner_email="team@example.com")(fn)
    assert returned is fn
    definition = _definition(fn)
    assert definition.name == "sum.build"
    assert definition.owner_email == "team@example.com"
    assert definition.fn is fn
    assert definition.params_model is Params
    assert definition.output_model is Output
    assert definition.description is None
    assert definition.workspace is None
    assert definition.controls == TaskControls()
    assert definition.strict_params is True
    assert definition.has_workspace is False


def test_workspace_task_definition() -> None:
    spec = WorkspaceSpec(prefix="audio")
    controls = TaskControls(publish_budget=BUDGET)
    fn = task(
        name="render",
        owner_email="a@b.c",
        description="Render audio",
        workspace=spec,
        controls=controls,
        strict_params=False,
    )(_copy(workspace_body))
    definition = _definition(fn)
    assert definition.workspace is spec
    assert definition.controls is controls
    assert definition.description == "Render audio"
    assert definition.strict_params is False
    assert definition.has_workspace is True


def test_decorated_function_stays_directly_callable(tmp_path: Path) -> None:
    fn = task(name="t", owner_email="a@b.c", workspace=WorkspaceSpec())(_copy(workspace_body))
    assert fn(tmp_path, Params(n=3)) == Output(total=3)


def test_task_definition_is_frozen_dataclass() -> None:
    definition = _definition(task(name="t", owner_email="a@b.c")(_copy(free_body)))
    assert dataclasses.is_dataclass(definition)
    with pytest.raises(dataclasses.FrozenInstanceError):
        definition.name = "other"  # type: ignore[misc]
    assert [f.name for f in dataclasses.fields(TaskDefinition)] == [
        "name",
        "owner_email",
        "fn",
        "params_model",
        "output_model",
        "description",
        "workspace",
        "controls",
        "strict_params",
        "metrics",
    ]


@pytest.mark.parametrize("name", ["with space", "ünïcode", "a.b.c", " padded "])
def test_task_names_are_kept_verbatim(name: str) -> None:
    assert _definition(task(name=name, owner_email="a@b.c")(_copy(free_body))).name == name


def test_owner_email_is_not_validated_as_an_address() -> None:
    fn = task(name="t", owner_email="not-an-email")(_copy(free_body))
    assert _definition(fn).owner_email == "not-an-email"


def test_read_only_task_may_carry_a_publish_budget() -> None:
    spec = WorkspaceSpec(read_only=True)
    fn = task(
        name="t", owner_email="a@b.c", workspace=spec, controls=TaskControls(publish_budget=BUDGET)
    )(_copy(workspace_body))
    assert _definition(fn).controls.publish_budget == BUDGET


# ------------------------------------------------------------------ metadata rules


@pytest.mark.parametrize(
    "fields",
    [{"params": Params}, {"inputKeys": ["params"]}, {"output": 1, "b": 2}],
)
def test_unsupported_fields_are_rejected(fields: dict[str, Any]) -> None:
    names = ", ".join(sorted(fields))
    with _raises(f"unsupported task decorator fields: {names}"):
        task(name="t", owner_email="a@b.c", **fields)


def test_decorator_arguments_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        task("t", "a@b.c")  # type: ignore[call-arg]


@pytest.mark.parametrize("name", ["", "   ", None, 3])
def test_task_name_is_required(name: Any) -> None:
    with _raises("task name is required"):
        task(name=name, owner_email="a@b.c")


@pytest.mark.parametrize("name", ["a/b", "a\\b", "/"])
def test_task_name_must_not_contain_path_separators(name: str) -> None:
    with _raises("task name must not contain path separators"):
        task(name=name, owner_email="a@b.c")


@pytest.mark.parametrize("owner", ["", " \t", None])
def test_owner_email_is_required(owner: Any) -> None:
    with _raises("owner_email is required"):
        task(name="t", owner_email=owner)


def test_description_must_be_a_string() -> None:
    with _raises("description must be a string"):
        task(name="t", owner_email="a@b.c", description=3)  # type: ignore[arg-type]


@pytest.mark.parametrize("workspace", [{"prefix": "/"}, "/", True])
def test_workspace_must_be_a_workspace_spec(workspace: Any) -> None:
    with _raises("workspace must be a WorkspaceSpec"):
        task(name="t", owner_email="a@b.c", workspace=workspace)


@pytest.mark.parametrize("controls", [{"retry": {"count": 1}}, {}, "x"])
def test_controls_must_be_task_controls(controls: Any) -> None:
    with _raises("controls must be a TaskControls"):
        task(name="t", owner_email="a@b.c", controls=controls)


@pytest.mark.parametrize("strict", [1, 0, "true", None])
def test_strict_params_must_be_a_real_bool(strict: Any) -> None:
    with _raises("strict_params must be a bool"):
        task(name="t", owner_email="a@b.c", strict_params=strict)


def test_publish_budget_requires_a_workspace() -> None:
    with _raises("publish_budget requires workspace=WorkspaceSpec(...)"):
        task(name="t", owner_email="a@b.c", controls=TaskControls(publish_budget=BUDGET))


# ------------------------------------------------------------------ signature rules


def _decorate(fn: Callable[..., Any], *, workspace: WorkspaceSpec | None = None) -> Any:
    return task(name="t", owner_email="a@b.c", workspace=workspace)(fn)


def test_async_functions_are_rejected() -> None:
    async def body(params: Params) -> Output:
        return Output(total=1)

    with _raises("task function must be a synchronous function"):
        _decorate(body)


def test_async_generators_are_rejected() -> None:
    async def body(params: Params) -> Output:  # type: ignore[misc]
        yield Output(total=1)

    with _raises("task function must be a synchronous function"):
        _decorate(body)


def test_only_plain_functions_can_be_decorated() -> None:
    class Callable_:
        def __call__(self, params: Params) -> Output:
            return Output(total=1)

    with _raises("@task must decorate a plain function"):
        _decorate(Callable_())


def test_decorating_twice_is_rejected() -> None:
    fn = _decorate(_copy(free_body))
    with _raises("task function is already decorated with @task"):
        _decorate(fn)


def _varargs(*params: Params) -> Output:
    raise NotImplementedError


def _kwargs(**params: Params) -> Output:
    raise NotImplementedError


def _kwonly(*, params: Params) -> Output:
    raise NotImplementedError


def _posonly(params: Params, /) -> Output:
    raise NotImplementedError


def _mixed(workspace: Path, *, params: Params) -> Output:
    raise NotImplementedError


@pytest.mark.parametrize("fn", [_varargs, _kwargs, _kwonly, _posonly, _mixed])
def test_variadic_keyword_only_and_positional_only_parameters_are_rejected(
    fn: Callable[..., Any],
) -> None:
    with _raises("task function must not use *args, **kwargs, or keyword-only fields"):
        _decorate(_copy(fn), workspace=WorkspaceSpec())


def _with_default(params: Params = Params(n=1)) -> Output:  # noqa: B008
    raise NotImplementedError


def test_parameter_defaults_are_rejected() -> None:
    with _raises("task function parameters must not declare defaults"):
        _decorate(_with_default)


def test_unresolvable_type_hints_are_rejected() -> None:
    def body(params: MissingModel) -> Output:  # type: ignore[name-defined]  # noqa: F821
        raise NotImplementedError

    with pytest.raises(
        TaskDefinitionError,
        match=re.escape("failed to resolve task type hints: name 'MissingModel' is not defined"),
    ):
        _decorate(body)


def _zero() -> Output:
    raise NotImplementedError


def _four(workspace: Path, params: Params, metrics: Params, extra: Params) -> Output:
    raise NotImplementedError


@pytest.mark.parametrize("fn", [_zero, _four])
def test_other_arities_are_rejected(fn: Callable[..., Any]) -> None:
    with _raises(
        "task function must be exactly (workspace: Path, params: ParamsModel), "
        "(workspace: Path, params: ParamsModel, metrics: MetricRecorder), (params: ParamsModel), "
        "or (params: ParamsModel, metrics: MetricRecorder)"
    ):
        _decorate(fn, workspace=WorkspaceSpec())


def _swapped(params: Params, workspace: Path) -> Output:
    raise NotImplementedError


def _misnamed(root: Path, params: Params) -> Output:
    raise NotImplementedError


@pytest.mark.parametrize("fn", [_swapped, _misnamed])
def test_workspace_parameters_must_be_named_workspace_and_params(fn: Callable[..., Any]) -> None:
    with _raises("workspace task parameters must be named workspace and params"):
        _decorate(fn, workspace=WorkspaceSpec())


def _ws_str(workspace: str, params: Params) -> Output:
    raise NotImplementedError


def _ws_purepath(workspace: PurePath, params: Params) -> Output:
    raise NotImplementedError


def _ws_optional(workspace: Path | None, params: Params) -> Output:
    raise NotImplementedError


def _ws_missing(workspace, params: Params) -> Output:  # type: ignore[no-untyped-def]
    raise NotImplementedError


class _PathSubclass(type(Path())):  # type: ignore[misc]
    pass


def _ws_subclass(workspace: _PathSubclass, params: Params) -> Output:
    raise NotImplementedError


@pytest.mark.parametrize("fn", [_ws_str, _ws_purepath, _ws_optional, _ws_missing, _ws_subclass])
def test_workspace_must_be_annotated_exactly_as_path(fn: Callable[..., Any]) -> None:
    with _raises("workspace must be annotated as pathlib.Path"):
        _decorate(fn, workspace=WorkspaceSpec())


def test_workspace_signature_requires_workspace_spec() -> None:
    with _raises("workspace task functions require workspace=WorkspaceSpec(...)"):
        _decorate(_copy(workspace_body))


def _free_misnamed(payload: Params) -> Output:
    raise NotImplementedError


def test_workspace_free_parameter_must_be_named_params() -> None:
    with _raises("workspace-free task parameter must be named params"):
        _decorate(_free_misnamed)


def test_workspace_free_function_must_not_declare_workspace() -> None:
    with _raises("workspace-free task functions must not declare workspace=WorkspaceSpec(...)"):
        _decorate(_copy(free_body), workspace=WorkspaceSpec())


def _params_not_model(params: NotAModel) -> Output:
    raise NotImplementedError


def _params_dict(params: dict[str, int]) -> Output:
    raise NotImplementedError


def _params_missing(params) -> Output:  # type: ignore[no-untyped-def]
    raise NotImplementedError


def _params_instance_hint(params: Params | None) -> Output:
    raise NotImplementedError


@pytest.mark.parametrize(
    "fn", [_params_not_model, _params_dict, _params_missing, _params_instance_hint]
)
def test_params_must_be_a_model_class(fn: Callable[..., Any]) -> None:
    with _raises("params must be annotated as a Pydantic BaseModel subclass"):
        _decorate(fn)


def _return_missing(params: Params):  # type: ignore[no-untyped-def]
    raise NotImplementedError


def _return_dict(params: Params) -> dict[str, int]:
    raise NotImplementedError


def _return_none(params: Params) -> None:
    raise NotImplementedError


@pytest.mark.parametrize("fn", [_return_missing, _return_dict, _return_none])
def test_return_must_be_a_model_class(fn: Callable[..., Any]) -> None:
    with _raises("return value must be annotated as a Pydantic BaseModel subclass"):
        _decorate(fn)


def test_metadata_errors_come_before_signature_errors() -> None:
    # The factory validates its own arguments before it ever sees a function.
    with _raises("owner_email is required"):
        task(name="t", owner_email="")
