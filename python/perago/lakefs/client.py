"""lakeFS control-plane calls (branches, commits, merge, hard reset) through lakefs-sdk.

Bulk data never goes through here (see :mod:`perago.engine.transfer`). Every SDK failure is
re-raised as
:class:`LakeFSError` naming the operation, HTTP status and lakeFS's own message — never
the request headers, so credentials cannot leak into reasons or logs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from lakefs_sdk.api.branches_api import BranchesApi
from lakefs_sdk.api.commits_api import CommitsApi
from lakefs_sdk.api.experimental_api import ExperimentalApi
from lakefs_sdk.api.refs_api import RefsApi
from lakefs_sdk.api_client import ApiClient
from lakefs_sdk.configuration import Configuration
from lakefs_sdk.exceptions import ApiException, OpenApiException
from lakefs_sdk.models.branch_creation import BranchCreation
from lakefs_sdk.models.commit_creation import CommitCreation
from lakefs_sdk.models.merge import Merge
from pydantic import SecretStr
from urllib3.exceptions import HTTPError as Urllib3Error

from perago.config import DEFAULT_CONTROL_TIMEOUT_SECONDS
from perago.errors import LakeFSError

__all__ = [
    "DEFAULT_CONTROL_TIMEOUT_SECONDS",
    "CommitInfo",
    "LakeFSControl",
    "LakeFSError",
    "api_base_url",
]


T = TypeVar("T")


@dataclass(frozen=True)
class CommitInfo:
    id: str
    parents: tuple[str, ...]
    metadata: Mapping[str, str]
    creation_date: datetime

    @property
    def first_parent(self) -> str | None:
        return self.parents[0] if self.parents else None


def api_base_url(endpoint_url: str) -> str:
    """``http://host:8000`` and ``http://host:8000/api/v1`` both mean the v1 API root."""
    base = endpoint_url.rstrip("/")
    return base if base.endswith("/api/v1") else base + "/api/v1"


class LakeFSControl:
    """Thin typed wrapper over the handful of lakefs-sdk calls perago needs."""

    def __init__(
        self,
        endpoint_url: str,
        access_key_id: str,
        secret_access_key: SecretStr,
        *,
        timeout_seconds: float = DEFAULT_CONTROL_TIMEOUT_SECONDS,
    ) -> None:
        # Every call has a timeout: one half-open connection must never hold a worker forever.
        self._timeout = timeout_seconds
        configuration = Configuration(
            host=api_base_url(endpoint_url),
            username=access_key_id,
            password=secret_access_key.get_secret_value(),
        )
        # No hidden urllib3 retries: a timed-out PUT (hard reset) must not silently run again
        # behind the publisher's back; callers that retry do it themselves, with backoff.
        configuration.retries = 0  # type: ignore[assignment]
        self._client = ApiClient(configuration)
        self._branches = BranchesApi(self._client)
        self._commits = CommitsApi(self._client)
        self._refs = RefsApi(self._client)
        self._experimental = ExperimentalApi(self._client)

    def __repr__(self) -> str:
        return f"LakeFSControl({self._client.configuration.host!r})"

    def close(self) -> None:
        self._client.close()  # type: ignore[no-untyped-call]

    def _move_timeout(self, override: float | None) -> float:
        """Merge and reset: the PublishBudget's timeout when declared, else the default."""
        return self._timeout if override is None else override

    def branch_head(self, repository: str, branch: str) -> str:
        ref = _call(
            "get branch",
            lambda: self._branches.get_branch(repository, branch, _request_timeout=self._timeout),
        )
        return str(ref.commit_id)

    def resolve_commit(self, repository: str, ref: str) -> CommitInfo:
        """Commit id (and details) of any ref: commit id, branch or tag."""
        return self.get_commit(repository, ref)

    def get_commit(self, repository: str, commit_id: str) -> CommitInfo:
        commit = _call(
            "get commit",
            lambda: self._commits.get_commit(repository, commit_id, _request_timeout=self._timeout),
        )
        return CommitInfo(
            id=str(commit.id),
            parents=tuple(str(parent) for parent in commit.parents or ()),
            metadata=dict(commit.metadata or {}),
            creation_date=datetime.fromtimestamp(int(commit.creation_date), UTC),
        )

    def create_branch(self, repository: str, branch: str, source: str) -> None:
        creation = BranchCreation(name=branch, source=source, force=None, hidden=None)
        _call(
            "create branch",
            lambda: self._branches.create_branch(
                repository, creation, _request_timeout=self._timeout
            ),
        )

    def delete_branch(self, repository: str, branch: str) -> None:
        _call(
            "delete branch",
            lambda: self._branches.delete_branch(
                repository, branch, _request_timeout=self._timeout
            ),
        )

    def commit(
        self, repository: str, branch: str, message: str, metadata: Mapping[str, str]
    ) -> str:
        creation = CommitCreation(
            message=message, metadata=dict(metadata), date=None, allow_empty=None, force=None
        )
        commit = _call(
            "commit",
            lambda: self._commits.commit(
                repository, branch, creation, _request_timeout=self._timeout
            ),
        )
        return str(commit.id)

    def squash_merge(
        self,
        repository: str,
        source_ref: str,
        destination_branch: str,
        *,
        message: str,
        metadata: Mapping[str, str],
        timeout_seconds: float | None,
    ) -> str:
        merge = Merge(
            message=message,
            metadata=dict(metadata),
            strategy=None,
            force=None,
            allow_empty=None,
            squash_merge=True,
        )
        result = _call(
            "merge",
            lambda: self._refs.merge_into_branch(
                repository,
                source_ref,
                destination_branch,
                merge=merge,
                _request_timeout=self._move_timeout(timeout_seconds),
            ),
        )
        return str(result.reference)

    def hard_reset(
        self, repository: str, branch: str, ref: str, timeout_seconds: float | None
    ) -> None:
        _call(
            "hard reset",
            lambda: self._experimental.hard_reset_branch(
                repository,
                branch,
                ref,
                force=False,
                _request_timeout=self._move_timeout(timeout_seconds),
            ),
        )

    def has_uncommitted_changes(self, repository: str, branch: str) -> bool:
        diff = _call(
            "diff branch",
            lambda: self._branches.diff_branch(
                repository, branch, amount=1, _request_timeout=self._timeout
            ),
        )
        return bool(diff.results)

    def iter_branches(self, repository: str, prefix: str) -> Iterator[tuple[str, str]]:
        """``(branch id, head commit id)`` of every branch whose id starts with ``prefix``."""
        after = ""
        while True:
            page = _call(
                "list branches",
                lambda after=after: self._branches.list_branches(  # type: ignore[misc]
                    repository,
                    prefix=prefix,
                    after=after,
                    amount=1000,
                    _request_timeout=self._timeout,
                ),
            )
            for ref in page.results:
                yield str(ref.id), str(ref.commit_id)
            if not page.pagination.has_more:
                return
            after = page.pagination.next_offset


def _call(operation: str, request: Callable[[], T]) -> T:
    try:
        return request()
    except ApiException as exc:
        raise LakeFSError(operation, exc.status, _api_message(exc)) from None
    except OpenApiException as exc:
        raise LakeFSError(operation, None, str(exc)) from None
    except (OSError, Urllib3Error) as exc:
        # Connection refused, timeouts, retries exhausted: name the failure, never the request.
        raise LakeFSError(operation, None, f"{type(exc).__name__}: {exc}") from None


def _api_message(exc: ApiException) -> str:
    body: Any = exc.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str) and body:
        try:
            parsed = json.loads(body)
        except ValueError:
            return " ".join(body.split())[:300]
        if isinstance(parsed, dict) and parsed.get("message"):
            return str(parsed["message"])
    return str(exc.reason or "request failed")
