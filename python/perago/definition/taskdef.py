"""Conductor TaskDef generation from a ``TaskDefinition``.

Model schemas are rewritten into a self-contained, portable form: references to non-recursive
``$defs`` are inlined, model-level ``title``/``description``/extras are dropped, field-level
metadata stays, and every object schema with ``properties`` gets an explicit
``additionalProperties``. Recursive models cannot be inlined (the result would be infinite), so
the definitions that take part in a reference cycle stay in ``$defs`` at the root of the document
and keep their ``#/$defs/<name>`` references; ``build_taskdef`` hoists them to the root of the
embedded ``data`` document so the references resolve there.
"""

from __future__ import annotations

import copy
import json
import os
import typing
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, RootModel, TypeAdapter
from pydantic.errors import PydanticUserError

from perago.definition.decorator import TaskDefinition
from perago.definition.workspace import WorkspaceInput, WorkspaceOutput
from perago.errors import TaskDefinitionError
from perago.host.secure_files import replace_file

__all__ = [
    "TASKDEF_SCHEMA_TYPE",
    "TASKDEF_SCHEMA_VERSION",
    "build_taskdef",
    "schema_for_model",
    "task_contract_warnings",
    "task_models",
    "write_taskdef",
]

TASKDEF_SCHEMA_VERSION = 1
TASKDEF_SCHEMA_TYPE = "JSON"

JsonObject = dict[str, Any]

_DEFS_REF_PREFIX = "#/$defs/"
# Keywords whose values are instance data, never schemas: rewriting them would corrupt values.
_DATA_KEYWORDS = frozenset({"default", "examples", "example", "const", "enum", "discriminator"})
# Keywords whose values map arbitrary names to schemas: the names are not schema keywords.
_SCHEMA_MAP_KEYWORDS = frozenset(
    {"properties", "patternProperties", "dependentSchemas", "$defs", "definitions"}
)
# The only keys a model-level (object) schema keeps; the rest is model documentation.
_MODEL_SCHEMA_KEYS = ("type", "properties", "required", "additionalProperties", "$defs")

_READ_ONLY_BUDGET_WARNING = (
    "WorkspaceSpec(read_only=True) disables workspace publication; "
    "TaskControls.publish_budget is ignored."
)


# --------------------------------------------------------------------------- model graph


def _models_in_type(hint: object) -> Iterator[type[BaseModel]]:
    """Yield model classes mentioned by a type annotation (generic args and origins included)."""
    if isinstance(hint, type) and issubclass(hint, BaseModel):
        yield hint
        origin = hint.__pydantic_generic_metadata__.get("origin")
        if origin is not None:
            yield origin
        for arg in hint.__pydantic_generic_metadata__.get("args", ()):
            yield from _models_in_type(arg)
        return
    origin = typing.get_origin(hint)
    if origin is None:
        return
    yield from _models_in_type(origin)
    for arg in typing.get_args(hint):
        yield from _models_in_type(arg)


def _model_graph(*roots: type[BaseModel]) -> list[type[BaseModel]]:
    """All models reachable from ``roots`` through field annotations, in discovery order."""
    seen: dict[type[BaseModel], None] = {}
    pending = list(roots)
    while pending:
        model = pending.pop(0)
        if model in seen:
            continue
        seen[model] = None
        for field in model.model_fields.values():
            pending.extend(_models_in_type(field.annotation))
    return list(seen)


def task_models(task: TaskDefinition) -> list[type[BaseModel]]:
    """The params and output models of a task and every model they contain."""
    return _model_graph(task.params_model, task.output_model)


def _names(models: Sequence[type[BaseModel]]) -> str:
    return ", ".join(dict.fromkeys(model.__name__ for model in models))


def task_contract_warnings(task: TaskDefinition) -> list[str]:
    """Warnings the CLI prints (without a ``warning: `` prefix) for a loadable task."""
    messages: list[str] = []
    spec = task.workspace
    if spec is not None and spec.read_only and task.controls.publish_budget is not None:
        messages.append(_READ_ONLY_BUDGET_WARNING)
    configured = [model for model in task_models(task) if model.model_config]
    if configured:
        messages.append(
            f"Pydantic ConfigDict on task model(s) {_names(configured)} is not part of the "
            "Perago task contract; Perago does not guarantee TaskDef or runtime behavior for "
            "ConfigDict-configured task models."
        )
    return messages


def _reject_root_models(task: TaskDefinition) -> None:
    root_models = [model for model in task_models(task) if issubclass(model, RootModel)]
    if root_models:
        raise TaskDefinitionError(
            f"Pydantic RootModel on task model(s) {_names(root_models)} is not supported; "
            "Perago task contracts must use ordinary BaseModel object models."
        )


# --------------------------------------------------------------------------- schema pipeline


def _field_schema_error(model: type[BaseModel], seen: set[type[BaseModel]]) -> str | None:
    """Name the innermost ``Model.field`` whose type has no JSON schema, if one can be found."""
    seen.add(model)
    for field_name, field in model.model_fields.items():
        try:
            field_type: Any = Annotated[field.annotation, field]
            adapter: TypeAdapter[Any] = TypeAdapter(
                field_type, config=ConfigDict(arbitrary_types_allowed=True)
            )
            adapter.json_schema()
        except Exception as exc:
            for nested in _models_in_type(field.annotation):
                if nested not in seen:
                    inner = _field_schema_error(nested, seen)
                    if inner is not None:
                        return inner
            return f"field {model.__name__}.{field_name}: {exc}"
    return None


def _raw_schema(model: type[BaseModel]) -> JsonObject:
    try:
        return model.model_json_schema()
    except PydanticUserError as exc:
        try:
            located = _field_schema_error(model, set())
        except Exception:  # locating is best effort; the original error is reported below
            located = None
        detail = located or str(exc).splitlines()[0]
        raise TaskDefinitionError(
            f"model {model.__name__} cannot be described as JSON schema: {detail}"
        ) from exc


def _def_name(ref: object) -> str | None:
    if isinstance(ref, str) and ref.startswith(_DEFS_REF_PREFIX):
        return ref[len(_DEFS_REF_PREFIX) :].replace("~1", "/").replace("~0", "~")
    return None


def _def_ref(name: str) -> str:
    return _DEFS_REF_PREFIX + name.replace("~", "~0").replace("/", "~1")


def _strip_model_keys(schema: JsonObject) -> JsonObject:
    if schema.get("type") != "object":
        return schema
    return {key: schema[key] for key in _MODEL_SCHEMA_KEYS if key in schema}


def _refs_in(node: object) -> Iterator[str]:
    """Names of local ``$defs`` referenced anywhere inside a schema."""
    if isinstance(node, dict):
        name = _def_name(node.get("$ref"))
        if name is not None:
            yield name
        for key, value in node.items():
            if key not in _DATA_KEYWORDS:
                yield from _refs_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs_in(item)


def _recursive_names(defs: dict[str, JsonObject]) -> set[str]:
    """Definitions that can reach themselves through references (part of a cycle)."""
    edges = {name: set(_refs_in(body)) & defs.keys() for name, body in defs.items()}
    recursive: set[str] = set()
    for start in defs:
        stack, visited = list(edges[start]), set()
        while stack:
            current = stack.pop()
            if current == start:
                recursive.add(start)
                break
            if current not in visited:
                visited.add(current)
                stack.extend(edges[current])
    return recursive


class _Inliner:
    """Copies a schema, replacing references to non-recursive definitions by their bodies."""

    def __init__(self, defs: dict[str, JsonObject], recursive: set[str]) -> None:
        self.defs = defs
        self.recursive = recursive
        self.kept: set[str] = set()

    def schema(self, node: object) -> Any:
        if isinstance(node, list):
            return [self.schema(item) for item in node]
        if not isinstance(node, dict):
            return copy.deepcopy(node)
        node = self._collapse_single_allof(node)
        name = _def_name(node.get("$ref"))
        siblings = {key: value for key, value in node.items() if key != "$ref"}
        if name is not None and name in self.defs:
            if name in self.recursive:
                self.kept.add(name)
                return {"$ref": _def_ref(name), **self._copy_keywords(siblings)}
            return {**self.schema(self.defs[name]), **self._copy_keywords(siblings)}
        return self._copy_keywords(node)

    def expand_root(self, node: JsonObject) -> JsonObject:
        """Like ``schema`` but a root that is only a reference is expanded even if recursive."""
        name = _def_name(node.get("$ref"))
        if name is not None and name in self.defs:
            siblings = {key: value for key, value in node.items() if key != "$ref"}
            body = self._copy_keywords(self.defs[name])
            return {**body, **self._copy_keywords(siblings)}
        result: JsonObject = self.schema(node)
        return result

    def _copy_keywords(self, node: JsonObject) -> JsonObject:
        result: JsonObject = {}
        for key, value in node.items():
            if key in _DATA_KEYWORDS:
                result[key] = copy.deepcopy(value)
            elif key in _SCHEMA_MAP_KEYWORDS and isinstance(value, dict):
                result[key] = {name: self.schema(sub) for name, sub in value.items()}
            else:
                result[key] = self.schema(value)
        if isinstance(result.get("discriminator"), dict):
            self._prune_discriminator_mapping(result["discriminator"])
        return result

    def _prune_discriminator_mapping(self, discriminator: JsonObject) -> None:
        # Mapping entries point at definitions; once one is inlined the mapping is only
        # partially resolvable, so keep it only when every target is still a definition.
        mapping = discriminator.get("mapping")
        if not isinstance(mapping, dict):
            return
        targets = [_def_name(target) for target in mapping.values()]
        if all(name is not None and name in self.recursive for name in targets):
            self.kept.update(name for name in targets if name is not None)
        else:
            del discriminator["mapping"]

    def _collapse_single_allof(self, node: JsonObject) -> JsonObject:
        # Older pydantic wraps a described model field as {"allOf": [{"$ref": ...}], ...}.
        all_of = node.get("allOf")
        if (
            "$ref" not in node
            and isinstance(all_of, list)
            and len(all_of) == 1
            and isinstance(all_of[0], dict)
            and set(all_of[0]) == {"$ref"}
        ):
            collapsed = {key: value for key, value in node.items() if key != "allOf"}
            collapsed["$ref"] = all_of[0]["$ref"]
            return collapsed
        return node


def _walk_schemas(node: object, visit: typing.Callable[[JsonObject], None]) -> None:
    """Call ``visit`` on every schema object (not on name maps or instance data)."""
    if isinstance(node, list):
        for item in node:
            _walk_schemas(item, visit)
        return
    if not isinstance(node, dict):
        return
    visit(node)
    for key, value in node.items():
        if key in _DATA_KEYWORDS:
            continue
        if key in _SCHEMA_MAP_KEYWORDS and isinstance(value, dict):
            for sub in value.values():
                _walk_schemas(sub, visit)
        else:
            _walk_schemas(value, visit)


def _finish(schema: JsonObject, allow_extra: bool) -> None:
    def visit(node: JsonObject) -> None:
        if isinstance(node.get("title"), str):
            del node["title"]
        if isinstance(node.get("properties"), dict):
            node["additionalProperties"] = allow_extra

    _walk_schemas(schema, visit)


def schema_for_model(model: type[BaseModel], allow_extra: bool = False) -> JsonObject:
    """The portable JSON schema of a model (see module docstring for the rewriting rules).

    ``allow_extra`` becomes ``additionalProperties`` of every object schema with properties.
    Recursive parts are kept under a root-level ``$defs``.
    """
    raw = _raw_schema(model)
    defs = {name: _strip_model_keys(body) for name, body in raw.pop("$defs", {}).items()}
    inliner = _Inliner(defs, _recursive_names(defs))
    schema = inliner.expand_root(_strip_model_keys(raw))
    kept_defs: JsonObject = {}
    pending = sorted(inliner.kept)
    while pending:  # kept definitions may reference further recursive definitions
        name = pending.pop()
        if name in kept_defs:
            continue
        kept_defs[name] = inliner.expand_root(defs[name])
        pending.extend(sorted(inliner.kept - kept_defs.keys()))
    _finish(schema, allow_extra)
    if kept_defs:
        for body in kept_defs.values():
            _finish(body, allow_extra)
        schema["$defs"] = dict(sorted(kept_defs.items()))
    return schema


# --------------------------------------------------------------------------- TaskDef


def _wrapper_schema(name: str, properties: dict[str, JsonObject], allow_extra: bool) -> JsonObject:
    hoisted: JsonObject = {}
    for schema in properties.values():
        hoisted.update(schema.pop("$defs", {}))
    data: JsonObject = {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": allow_extra,
    }
    if hoisted:
        data["$defs"] = hoisted
    return {
        "name": name,
        "version": TASKDEF_SCHEMA_VERSION,
        "type": TASKDEF_SCHEMA_TYPE,
        "data": data,
    }


def _warn_short_response_timeout(task: TaskDefinition) -> None:
    budget = task.controls.publish_budget
    spec = task.workspace
    if budget is None or spec is None or spec.read_only:
        return
    response = task.controls.timeout.response_seconds
    if response < budget.response_timeout_seconds:
        warnings.warn(
            f"Task '{task.name}' has TaskControls.timeout.response_seconds={response} which is "
            "shorter than publish_budget.response_timeout_seconds="
            f"{budget.response_timeout_seconds}; responseTimeoutSeconds will use "
            "timeout.response_seconds",
            UserWarning,
            stacklevel=3,
        )


def build_taskdef(task: TaskDefinition) -> JsonObject:
    """The Conductor TaskDef of a task, as a JSON-ready dict with a stable key order."""
    _reject_root_models(task)
    _warn_short_response_timeout(task)
    controls = task.controls
    retry, timeout, limits = controls.retry, controls.timeout, controls.limits

    taskdef: JsonObject = {"name": task.name, "ownerEmail": task.owner_email}
    if task.description is not None:
        taskdef["description"] = task.description
    taskdef.update(
        {
            "retryCount": retry.count,
            "retryLogic": retry.logic,
            "retryDelaySeconds": retry.delay_seconds,
            "maxRetryDelaySeconds": retry.max_delay_seconds,
            "backoffJitterMs": retry.jitter_ms,
            "totalTimeoutSeconds": timeout.total_seconds,
            "timeoutPolicy": timeout.policy,
            "timeoutSeconds": timeout.seconds,
            "responseTimeoutSeconds": controls.response_timeout_seconds,
            "pollTimeoutSeconds": timeout.poll_seconds,
        }
    )
    optional_limits = {
        "concurrentExecLimit": limits.concurrent_exec_limit,
        "rateLimitFrequencyInSeconds": limits.rate_limit_frequency_in_seconds,
        "rateLimitPerFrequency": limits.rate_limit_per_frequency,
    }
    taskdef.update({key: value for key, value in optional_limits.items() if value is not None})

    params_schema = schema_for_model(task.params_model, allow_extra=not task.strict_params)
    result_schema = schema_for_model(task.output_model, allow_extra=False)
    if task.has_workspace:
        inputs = {"workspace": schema_for_model(WorkspaceInput), "params": params_schema}
        outputs = {"workspace": schema_for_model(WorkspaceOutput), "result": result_schema}
    else:
        inputs = {"params": params_schema}
        outputs = {"result": result_schema}
    taskdef["inputKeys"] = list(inputs)
    taskdef["outputKeys"] = list(outputs)
    taskdef["inputSchema"] = _wrapper_schema(
        f"{task.name}.input", inputs, allow_extra=not task.strict_params
    )
    taskdef["outputSchema"] = _wrapper_schema(f"{task.name}.output", outputs, allow_extra=False)
    return taskdef


def write_taskdef(task: TaskDefinition, output: str | os.PathLike[str]) -> Path:
    """Write the TaskDef as 2-space-indented JSON to a ``.json`` path, creating parents."""
    path = Path(output)
    if path.suffix != ".json":
        raise ValueError(
            "output must be a JSON file path, for example generated/features.build.json"
        )
    if path.is_dir():
        raise ValueError("output must be a JSON file path, not a directory")
    text = json.dumps(build_taskdef(task), indent=2) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_file(path, text)
    return path
