"""Workspace declaration (``WorkspaceSpec``) and the Conductor ``workspace`` reference objects."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

from perago.definition.guardrails import _WorkspaceGuardrail
from perago.errors import TaskDefinitionError

__all__ = [
    "DEFAULT_WORKSPACE_PREFIX",
    "WorkspaceInput",
    "WorkspaceOutput",
    "WorkspaceRef",
    "WorkspaceSpec",
    "normalize_workspace_prefix",
]

DEFAULT_WORKSPACE_PREFIX = "/"
_DRIVE_PREFIX = re.compile(r"^[A-Za-z]:")


def normalize_workspace_prefix(prefix: str) -> str:
    """Return the canonical lakeFS object prefix of a workspace, or raise TaskDefinitionError.

    ``/`` is the repository root; anything else loses its leading slashes and at most one
    trailing slash, and must be a plain relative path inside the repository.
    """
    if "\\" in prefix:
        raise TaskDefinitionError("WorkspaceSpec.prefix must use '/' separators")
    text = prefix.strip()
    if text == "/":
        return text
    text = text.lstrip("/")
    if text.endswith("/"):
        text = text[:-1]
    if not text:
        raise TaskDefinitionError("WorkspaceSpec.prefix must not be empty")
    if _DRIVE_PREFIX.match(text):
        # Such a prefix would mean a different filesystem to Windows users; never a lakeFS path.
        raise TaskDefinitionError("WorkspaceSpec.prefix must not be drive-qualified")
    if any(segment in ("", ".", "..") for segment in text.split("/")):
        raise TaskDefinitionError("WorkspaceSpec.prefix must stay inside the repository")
    return text


class WorkspaceSpec(BaseModel):
    """Declares that a task works on a lakeFS workspace projected from ``prefix``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prefix: str = DEFAULT_WORKSPACE_PREFIX
    pre: list[_WorkspaceGuardrail] = Field(default_factory=list)
    post: list[_WorkspaceGuardrail] = Field(default_factory=list)
    read_only: bool = False

    @field_validator("prefix")
    @classmethod
    def _normalise_prefix(cls, value: str) -> str:
        return normalize_workspace_prefix(value)


class WorkspaceRef(BaseModel):
    """A lakeFS commit of a repository branch, as carried in Conductor payloads."""

    model_config = ConfigDict(extra="forbid")

    repository: str = Field(min_length=1)
    branch: str = Field(min_length=1)
    # Canonical spelling is ref_type; newer clients send refType, so both are accepted.
    ref_type: Literal["commit"] = Field(validation_alias=AliasChoices("ref_type", "refType"))
    ref: str = Field(min_length=1)

    @model_validator(mode="after")
    def _fields_not_blank(self) -> WorkspaceRef:
        if not (self.repository.strip() and self.branch.strip() and self.ref.strip()):
            raise ValueError("workspace repository, branch, and ref must not be blank")
        return self


class WorkspaceInput(WorkspaceRef):
    """The ``workspace`` object a workspace task receives."""

    def published_output(self, ref: str) -> WorkspaceOutput:
        """The output reference after publishing (or not changing) this workspace at ``ref``."""
        return WorkspaceOutput(
            repository=self.repository, branch=self.branch, ref_type="commit", ref=ref
        )


def workspace_task_input(repository: str, branch: str, commit: str, params: Any) -> dict[str, Any]:
    """The ``input_data`` of a workspace task that reads ``commit`` and publishes to ``branch``."""
    workspace = {"repository": repository, "branch": branch, "ref_type": "commit", "ref": commit}
    return {"workspace": workspace, "params": params}


class WorkspaceOutput(WorkspaceRef):
    """The ``workspace`` object a workspace task returns."""
