"""Validation of an attempt's input wrapper, params and the body's output.

Strict params (the default) forbid unknown fields at every level of the params model; models
that explicitly say ``extra="allow"`` keep their extras. Lenient params (``strict_params=False``)
ignore unknown keys and unknown top-level wrapper keys, but never override a model's own
``extra="forbid"``. Output is always checked strictly.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from perago.attempt.result import InvalidAttemptInput, condense_validation_error
from perago.definition.decorator import TaskDefinition
from perago.definition.workspace import WorkspaceInput

__all__ = [
    "parse_workspace_free_task_input",
    "parse_workspace_task_input",
    "validate_task_output",
    "validate_task_params",
]

_WORKSPACE_KEYS = frozenset({"workspace", "params"})
_FREE_KEYS = frozenset({"params"})


def parse_workspace_task_input(
    task: TaskDefinition, input_data: object
) -> tuple[WorkspaceInput, BaseModel]:
    """Validate ``{"workspace": ..., "params": ...}``; raises :class:`InvalidAttemptInput`."""
    wrapper = _checked_wrapper(
        input_data,
        _WORKSPACE_KEYS,
        strict=task.strict_params,
        exact_message="workspace task input must contain only workspace and params",
        lenient_message="workspace task input must contain workspace and params",
    )
    try:
        workspace = WorkspaceInput.model_validate(wrapper["workspace"])
    except ValidationError as exc:
        raise InvalidAttemptInput(
            condense_validation_error(exc, context="invalid workspace input")
        ) from exc
    return workspace, validate_task_params(task, wrapper["params"])


def parse_workspace_free_task_input(task: TaskDefinition, input_data: object) -> BaseModel:
    """Validate ``{"params": ...}``; raises :class:`InvalidAttemptInput`."""
    wrapper = _checked_wrapper(
        input_data,
        _FREE_KEYS,
        strict=task.strict_params,
        exact_message="workspace-free task input must contain only params",
        lenient_message="workspace-free task input must contain params",
    )
    return validate_task_params(task, wrapper["params"])


def validate_task_params(task: TaskDefinition, raw: object) -> BaseModel:
    try:
        params = task.params_model.model_validate(raw)
    except ValidationError as exc:
        raise InvalidAttemptInput(condense_validation_error(exc, context="invalid params")) from exc
    if task.strict_params:
        unknown = sorted(_unknown_fields(params, raw, ()))
        if unknown:
            details = "; ".join(f"{loc}: Extra inputs are not permitted" for loc in unknown)
            raise InvalidAttemptInput(f"invalid params: {details}")
    return params


def validate_task_output(task: TaskDefinition, raw: object) -> BaseModel:
    """Re-validate the body's return value (model or mapping) against the output model.

    Raises ``ValueError`` naming the offending fields; that failure is retryable.
    """
    data: object = raw.model_dump(by_alias=True) if isinstance(raw, BaseModel) else raw
    model = task.output_model
    try:
        output = model.model_validate(data)
    except ValidationError as exc:
        raise ValueError(
            condense_validation_error(exc, context=f"invalid task output ({model.__name__})")
        ) from exc
    unknown = sorted(_unknown_fields(output, data, ()))
    if unknown:
        details = "; ".join(f"{loc}: Extra inputs are not permitted" for loc in unknown)
        raise ValueError(f"invalid task output ({model.__name__}): {details}")
    return output


def _checked_wrapper(
    input_data: object,
    keys: frozenset[str],
    *,
    strict: bool,
    exact_message: str,
    lenient_message: str,
) -> Mapping[str, Any]:
    if not isinstance(input_data, Mapping):
        raise InvalidAttemptInput(exact_message if strict else lenient_message)
    present = set(input_data)
    if strict and present != keys:
        raise InvalidAttemptInput(exact_message)
    if not keys <= present:
        raise InvalidAttemptInput(lenient_message)
    return input_data


def _unknown_fields(model: BaseModel, raw: object, loc: tuple[str, ...]) -> Iterator[str]:
    """Dotted locations of keys in ``raw`` that ``model`` (recursively) does not declare."""
    if not isinstance(raw, Mapping):
        return
    fields = type(model).model_fields
    accepted: dict[str, str] = {}
    for name, info in fields.items():
        accepted[name] = name
        if info.alias:
            accepted[info.alias] = name
        choices = getattr(info.validation_alias, "choices", None)
        if isinstance(info.validation_alias, str):
            accepted[info.validation_alias] = name
        elif choices:
            for choice in choices:
                if isinstance(choice, str):
                    accepted[choice] = name
    allows_extra = type(model).model_config.get("extra") == "allow"
    for key, value in raw.items():
        key_text = str(key)
        field_name = accepted.get(key_text)
        if field_name is None:
            if not allows_extra:
                yield ".".join((*loc, key_text))
            continue
        yield from _unknown_in_value(getattr(model, field_name, None), value, (*loc, key_text))


def _unknown_in_value(value: object, raw: object, loc: tuple[str, ...]) -> Iterator[str]:
    if isinstance(value, BaseModel):
        yield from _unknown_fields(value, raw, loc)
    elif isinstance(value, Mapping) and isinstance(raw, Mapping):
        for key, item in value.items():
            if key in raw:
                yield from _unknown_in_value(item, raw[key], (*loc, str(key)))
    elif (
        isinstance(value, Sequence | set | frozenset)
        and not isinstance(value, str | bytes)
        and isinstance(raw, Sequence)
        and not isinstance(raw, str | bytes)
    ):
        for index, (item, raw_item) in enumerate(zip(value, raw, strict=False)):
            yield from _unknown_in_value(item, raw_item, (*loc, str(index)))
