"""The ``@task`` decorator, ``TaskDefinition`` and ``load_module_task``.

Registry design (why loading survives ``importlib.reload`` and re-exports):

* The decorator attaches the definition to the function as ``__perago_task__`` and returns the
  function unchanged.
* It also records the definition in a per-module registry entry tagged with the module's
  ``__spec__`` object. ``importlib.reload`` installs a fresh spec before re-executing the module
  body, so the first definition of a new execution replaces the entry instead of piling up.
* ``load_module_task`` combines the definitions of the module's current execution with the
  definitions reachable from the module namespace that were declared in *other* modules
  (re-exports such as ``from pkg.impl import build``), de-duplicated by identity. Definitions of
  earlier executions that linger in the namespace after a reload are ignored.
"""

from __future__ import annotations

import inspect
import threading
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from perago.definition.controls import TaskControls
from perago.definition.workspace import WorkspaceSpec
from perago.errors import TaskDefinitionError
from perago.metrics.api import MetricRecorder, MetricSpec

__all__ = ["TASK_ATTRIBUTE", "TaskDefinition", "load_module_task", "task"]

TASK_ATTRIBUTE = "__perago_task__"

F = TypeVar("F", bound=Callable[..., Any])

_SIGNATURE_SHAPES = (
    "task function must be exactly (workspace: Path, params: ParamsModel), "
    "(workspace: Path, params: ParamsModel, metrics: MetricRecorder), (params: ParamsModel), "
    "or (params: ParamsModel, metrics: MetricRecorder)"
)


@dataclass(frozen=True, eq=False)
class TaskDefinition:
    """The validated contract of one task. Compared and hashed by identity."""

    name: str
    owner_email: str
    fn: Callable[..., Any]
    params_model: type[BaseModel]
    output_model: type[BaseModel]
    description: str | None = None
    workspace: WorkspaceSpec | None = None
    controls: TaskControls = field(default_factory=TaskControls)
    strict_params: bool = True
    # Declared by ``metrics=MetricSpec(...)``: the function takes a ``metrics`` recorder last.
    metrics: MetricSpec | None = None

    @property
    def has_workspace(self) -> bool:
        return self.workspace is not None

    @property
    def has_metrics(self) -> bool:
        return self.metrics is not None


@dataclass
class _ModuleEntry:
    execution: object  # the module's __spec__ during the execution that registered these
    definitions: list[TaskDefinition]


_registry: dict[str, _ModuleEntry] = {}
_registry_lock = threading.Lock()


def _register(definition: TaskDefinition) -> None:
    module_name = getattr(definition.fn, "__module__", None) or "__main__"
    module_globals = getattr(definition.fn, "__globals__", {})
    execution = module_globals.get("__spec__")
    with _registry_lock:
        entry = _registry.get(module_name)
        if entry is None or entry.execution is not execution:
            _registry[module_name] = _ModuleEntry(execution, [definition])
        else:
            entry.definitions.append(definition)


def _checked_metadata(
    *,
    name: object,
    owner_email: object,
    description: object,
    workspace: object,
    controls: object,
    strict_params: object,
    metrics: object,
    unsupported: dict[str, object],
) -> tuple[str, str, str | None, WorkspaceSpec | None, TaskControls, bool, MetricSpec | None]:
    if unsupported:
        names = ", ".join(sorted(unsupported))
        raise TaskDefinitionError(f"unsupported task decorator fields: {names}")
    if not isinstance(name, str) or not name.strip():
        raise TaskDefinitionError("task name is required")
    if "/" in name or "\\" in name:
        raise TaskDefinitionError("task name must not contain path separators")
    if not isinstance(owner_email, str) or not owner_email.strip():
        raise TaskDefinitionError("owner_email is required")
    if description is not None and not isinstance(description, str):
        raise TaskDefinitionError("description must be a string")
    if workspace is not None and not isinstance(workspace, WorkspaceSpec):
        raise TaskDefinitionError("workspace must be a WorkspaceSpec")
    if controls is None:
        controls = TaskControls()
    elif not isinstance(controls, TaskControls):
        raise TaskDefinitionError("controls must be a TaskControls")
    if not isinstance(strict_params, bool):
        raise TaskDefinitionError("strict_params must be a bool")
    if metrics is not None and not isinstance(metrics, MetricSpec):
        raise TaskDefinitionError("metrics must be a MetricSpec")
    if controls.publish_budget is not None and workspace is None:
        raise TaskDefinitionError("publish_budget requires workspace=WorkspaceSpec(...)")
    return name, owner_email, description, workspace, controls, strict_params, metrics


def _is_model_class(hint: object) -> bool:
    return isinstance(hint, type) and issubclass(hint, BaseModel)


def _check_metrics_parameter(
    names: list[str], hints: dict[str, Any], metrics: MetricSpec | None
) -> None:
    """A trailing ``metrics: MetricRecorder`` parameter exactly when ``metrics=`` is given."""
    if len(names) == 3 or names == ["params", "metrics"]:
        if names[-1] != "metrics":
            raise TaskDefinitionError("metrics-enabled task parameter must be named metrics")
        if hints.get("metrics") is not MetricRecorder:
            raise TaskDefinitionError("metrics must be annotated as perago.MetricRecorder")
        if metrics is None:
            raise TaskDefinitionError("metrics parameter requires metrics=MetricSpec(...)")
    elif metrics is not None:
        raise TaskDefinitionError("metrics=MetricSpec(...) requires a metrics parameter")


def _checked_signature(
    fn: Callable[..., Any], workspace: WorkspaceSpec | None, metrics: MetricSpec | None = None
) -> tuple[type[BaseModel], type[BaseModel]]:
    """Return (params model, output model) of a valid task function."""
    if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
        raise TaskDefinitionError("task function must be a synchronous function")
    parameters = list(inspect.signature(fn).parameters.values())
    if any(p.kind is not inspect.Parameter.POSITIONAL_OR_KEYWORD for p in parameters):
        raise TaskDefinitionError(
            "task function must not use *args, **kwargs, or keyword-only fields"
        )
    if any(p.default is not inspect.Parameter.empty for p in parameters):
        raise TaskDefinitionError("task function parameters must not declare defaults")
    try:
        hints = typing.get_type_hints(fn)
    except Exception as exc:  # NameError, TypeError, SyntaxError from string annotations
        raise TaskDefinitionError(f"failed to resolve task type hints: {exc}") from exc

    names = [p.name for p in parameters]
    if not names or len(names) > 3:
        raise TaskDefinitionError(_SIGNATURE_SHAPES)
    with_recorder = len(names) == 3 or names == ["params", "metrics"]
    all_names, names = names, names[:-1] if with_recorder else names
    if len(names) == 2:
        if names != ["workspace", "params"]:
            raise TaskDefinitionError(
                "workspace task parameters must be named workspace and params"
            )
        if hints.get("workspace") is not Path:
            raise TaskDefinitionError("workspace must be annotated as pathlib.Path")
        if workspace is None:
            raise TaskDefinitionError(
                "workspace task functions require workspace=WorkspaceSpec(...)"
            )
    elif len(names) == 1:
        if names != ["params"]:
            raise TaskDefinitionError("workspace-free task parameter must be named params")
        if workspace is not None:
            raise TaskDefinitionError(
                "workspace-free task functions must not declare workspace=WorkspaceSpec(...)"
            )
    else:
        raise TaskDefinitionError(_SIGNATURE_SHAPES)
    _check_metrics_parameter(all_names, hints, metrics)

    params_model = hints.get("params")
    if not _is_model_class(params_model):
        raise TaskDefinitionError("params must be annotated as a Pydantic BaseModel subclass")
    output_model = hints.get("return")
    if not _is_model_class(output_model):
        raise TaskDefinitionError("return value must be annotated as a Pydantic BaseModel subclass")
    return typing.cast(type[BaseModel], params_model), typing.cast(type[BaseModel], output_model)


def task(
    *,
    name: str,
    owner_email: str,
    description: str | None = None,
    workspace: WorkspaceSpec | None = None,
    controls: TaskControls | None = None,
    strict_params: bool = True,
    metrics: MetricSpec | None = None,
    **unsupported: object,
) -> Callable[[F], F]:
    """Declare the single Perago task of a module.

    The decorated function is validated at import time, registered for its module, and returned
    unchanged (so unit tests can call it directly). Every problem raises TaskDefinitionError.
    """
    task_name, owner, text, spec, task_controls, strict, metric_spec = _checked_metadata(
        name=name,
        owner_email=owner_email,
        description=description,
        workspace=workspace,
        controls=controls,
        strict_params=strict_params,
        metrics=metrics,
        unsupported=unsupported,
    )

    def decorate(fn: F) -> F:
        if not inspect.isfunction(fn):
            raise TaskDefinitionError("@task must decorate a plain function")
        if isinstance(fn.__dict__.get(TASK_ATTRIBUTE), TaskDefinition):
            raise TaskDefinitionError("task function is already decorated with @task")
        params_model, output_model = _checked_signature(fn, spec, metric_spec)
        definition = TaskDefinition(
            name=task_name,
            owner_email=owner,
            fn=fn,
            params_model=params_model,
            output_model=output_model,
            description=text,
            workspace=spec,
            controls=task_controls,
            strict_params=strict,
            metrics=metric_spec,
        )
        setattr(fn, TASK_ATTRIBUTE, definition)
        _register(definition)
        return fn

    return decorate


def _valid_target(target: object) -> bool:
    if not isinstance(target, str) or not target:
        return False
    if any(ch in target for ch in "/\\:") or target.endswith(".py"):
        return False
    return all(segment.isidentifier() for segment in target.split("."))


def _definition_of(value: object) -> TaskDefinition | None:
    # Only plain functions can carry a definition; never trigger __getattr__ of other objects.
    if not inspect.isfunction(value):
        return None
    definition = value.__dict__.get(TASK_ATTRIBUTE)
    return definition if isinstance(definition, TaskDefinition) else None


def load_module_task(module_target: str) -> TaskDefinition:
    """Import ``module_target`` (a dotted import path) and return its single task."""
    if not _valid_target(module_target):
        raise TaskDefinitionError(
            "module target must be a Python import path, not a file path or object path"
        )
    module = import_module(module_target)
    module_name = module.__name__
    with _registry_lock:
        entry = _registry.get(module_name)
        declared = list(entry.definitions) if entry is not None else []
        if entry is not None and entry.execution is not getattr(module, "__spec__", None):
            declared = []  # registered by an execution the module object no longer reflects
    found: dict[int, TaskDefinition] = {id(d): d for d in declared}
    for value in list(vars(module).values()):
        definition = _definition_of(value)
        if definition is not None and getattr(definition.fn, "__module__", None) != module_name:
            found.setdefault(id(definition), definition)
    if not found:
        raise TaskDefinitionError(f"{module_target} does not declare a Perago task")
    if len(found) > 1:
        raise TaskDefinitionError(f"{module_target} declares more than one Perago task")
    (definition,) = found.values()
    return definition
