"""The one Python lakeFS client: control-plane calls through lakefs-sdk, with timeouts and retries.

The worker runtime (branches, commits, merge, hard reset), ``perago gc``, the benches and the
demo all talk to lakeFS through :class:`LakeFSControl`; bulk data never goes through here (see
:mod:`perago.engine.transfer`, the Rust client). Every failure is raised as
:class:`perago.errors.LakeFSError` naming the operation, the HTTP status and lakeFS's own message
— never the request headers, so credentials cannot leak into reasons or logs.

Timeouts. Every call has one: ``timeout_seconds`` (``PERAGO_CONTROL_TIMEOUT``, default 60 s;
a ``PublishBudget`` overrides it for merge and hard reset). It also bounds a call's retries: a
call never takes much longer than its timeout, because a retry is sent only while time is left
and gets only the time left (docs/adr/0007 §7).

Retries. lakeFS restarting, a proxy in front of it answering 502/503/504, or throttling (429)
are transient: the Rust data path rides them out for ~15 s, and so does this client, with the
same schedule (:class:`Retries`: up to 8 tries, 0.2 s doubling to at most 5 s, equal jitter).
A failure is transient when nothing definite was answered: connection refused/reset/timed out,
or HTTP 429/502/503/504 (:func:`is_transient`). What is retried:

* reads — get branch/commit/repository, diff, list branches: idempotent, always retried;
* ``upload_object`` (small objects): the same bytes to the same path, so a repeat is harmless;
* ``delete_branch`` / ``delete_repository``: retried; a 404 after a retried try counts as done
  (the lost answer was the deletion's);
* ``create_branch`` / ``create_repository``: retried; a 409 after a retried try counts as done
  only when what exists is what was asked for (same head as the source / same namespace);
* ``commit``: retried only with a check that it did not land: the head is read before the
  commit, and before every resend the head is read again; a head whose parent is the old head
  and whose message and metadata are ours *is* the lost commit and is returned, an unchanged
  head means nothing landed and the commit is sent again, an unreadable head means nothing is
  sent until it can be read. A commit is therefore never made twice. (Only the committing
  attempt writes its staging branch, and bench and demo branches are their own.)
* ``squash_merge`` and ``hard_reset`` are **never** retried here: they move a published branch
  under the fenced publication protocol (docs/adr/0007), whose :mod:`perago.lakefs.publisher`
  re-reads the fence and the head before every move, has its own bounded retry window for resets
  and looks a merge with a lost answer up on the branch instead of sending it again. The
  publisher also retries its own reads, so it is handed :meth:`LakeFSControl.without_retries`.

urllib3's own retries are off, so nothing is ever re-sent behind these rules.
"""

from __future__ import annotations

import copy
import functools
import json
import random
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from lakefs_sdk.api.branches_api import BranchesApi
from lakefs_sdk.api.commits_api import CommitsApi
from lakefs_sdk.api.experimental_api import ExperimentalApi
from lakefs_sdk.api.objects_api import ObjectsApi
from lakefs_sdk.api.refs_api import RefsApi
from lakefs_sdk.api.repositories_api import RepositoriesApi
from lakefs_sdk.api_client import ApiClient
from lakefs_sdk.configuration import Configuration
from lakefs_sdk.exceptions import ApiException, OpenApiException
from lakefs_sdk.models.branch_creation import BranchCreation
from lakefs_sdk.models.commit_creation import CommitCreation
from lakefs_sdk.models.merge import Merge
from lakefs_sdk.models.pagination import Pagination
from lakefs_sdk.models.repository_creation import RepositoryCreation
from pydantic import SecretStr
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import (
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
)
from urllib3.exceptions import (
    TimeoutError as Urllib3TimeoutError,
)

from perago.config import DEFAULT_CONTROL_TIMEOUT_SECONDS, LakeFSConfig, ca_bundle
from perago.engine import LAKEFS_PAGE_SIZE
from perago.errors import LakeFSError

__all__ = [
    "DEFAULT_CONTROL_TIMEOUT_SECONDS",
    "NO_RETRIES",
    "TRANSIENT_STATUSES",
    "CommitInfo",
    "DiffEntry",
    "LakeFSControl",
    "LakeFSError",
    "Retries",
    "api_base_url",
    "is_transient",
    "lakefs_error",
]


T = TypeVar("T")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)

# Statuses that say "not now" rather than "no": a restarting server behind a proxy, throttling.
TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})
# A retry is not sent with less time than this left before the call's deadline.
MIN_TRY_SECONDS = 0.5


@dataclass(frozen=True)
class Retries:
    """How often a transient failure is retried (the Rust data path's schedule, ~15 s)."""

    max_attempts: int = 8
    base_delay: float = 0.2
    max_delay: float = 5.0

    def delay(self, retry: int, unit: float) -> float:
        """Delay before retry ``retry`` (0-based) for a uniform ``unit`` in [0, 1): "equal
        jitter" — half the capped exponential step fixed, half random."""
        capped = min(self.base_delay * 2.0**retry, self.max_delay)
        return capped / 2 + capped / 2 * min(max(unit, 0.0), 1.0)


NO_RETRIES = Retries(max_attempts=1)


@dataclass(frozen=True)
class CommitInfo:
    id: str
    parents: tuple[str, ...]
    metadata: Mapping[str, str]
    creation_date: datetime
    message: str = ""

    @property
    def first_parent(self) -> str | None:
        return self.parents[0] if self.parents else None


@dataclass(frozen=True)
class DiffEntry:
    """One changed path between two refs: ``type`` is added, removed, changed or conflict."""

    type: str
    path: str


def api_base_url(endpoint_url: str) -> str:
    """``http://host:8000`` and ``http://host:8000/api/v1`` (with or without a trailing slash)
    both mean the v1 API root."""
    base = endpoint_url.strip().rstrip("/")
    return base if base.endswith("/api/v1") else base + "/api/v1"


class _Page(Protocol[R_co]):
    """One page of a lakeFS listing (``RefList``, ``DiffList``, ...)."""

    @property
    def results(self) -> Sequence[R_co]: ...

    @property
    def pagination(self) -> Pagination: ...


class LakeFSControl:
    """The typed lakeFS control-plane client (see the module docstring for timeouts/retries)."""

    def __init__(
        self,
        endpoint_url: str,
        access_key_id: str,
        secret_access_key: SecretStr,
        *,
        timeout_seconds: float = DEFAULT_CONTROL_TIMEOUT_SECONDS,
        retries: Retries = Retries(),
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # Every call has a timeout: one half-open connection must never hold a worker forever.
        self._timeout = timeout_seconds
        self._retries = retries
        self._sleep = sleep
        self._clock = clock
        configuration = Configuration(
            host=api_base_url(endpoint_url),
            username=access_key_id,
            password=secret_access_key.get_secret_value(),
        )
        # No hidden urllib3 retries: a timed-out PUT (hard reset) must not silently run again
        # behind the publisher's back; this client retries only what the docstring lists.
        configuration.retries = 0  # type: ignore[assignment]
        # The engine's trust, for https endpoints with a private CA (urllib3 alone would honour
        # SSL_CERT_FILE but not REQUESTS_CA_BUNDLE).
        configuration.ssl_ca_cert = ca_bundle()
        self._client = ApiClient(configuration)
        self._branches = BranchesApi(self._client)
        self._commits = CommitsApi(self._client)
        self._refs = RefsApi(self._client)
        self._objects = ObjectsApi(self._client)
        self._repositories = RepositoriesApi(self._client)
        self._experimental = ExperimentalApi(self._client)

    @classmethod
    def from_config(
        cls,
        config: LakeFSConfig,
        *,
        timeout_seconds: float = DEFAULT_CONTROL_TIMEOUT_SECONDS,
        retries: Retries = Retries(),
    ) -> LakeFSControl:
        return cls(
            config.endpoint_url,
            config.access_key_id,
            config.secret_access_key,
            timeout_seconds=timeout_seconds,
            retries=retries,
        )

    def without_retries(self) -> LakeFSControl:
        """The same client (connections, timeout) sending every call exactly once: for callers
        with a retry policy of their own (the publisher)."""
        view = copy.copy(self)
        view._retries = NO_RETRIES
        return view

    def __repr__(self) -> str:
        return f"LakeFSControl({self._client.configuration.host!r})"

    def close(self) -> None:
        self._client.close()  # type: ignore[no-untyped-call]

    # -- the retry loop ------------------------------------------------------------------------

    def _call(
        self,
        operation: str,
        send: Callable[[float], T],
        *,
        retry: bool = True,
        landed: Callable[[float], T | None] | None = None,
        timeout_seconds: float | None = None,
    ) -> T:
        """``send(request timeout)``, retried on transient failures while the call's time lasts.

        ``landed(request timeout)``, when given, runs before every resend: a value means the
        lost try did land (it is returned), ``None`` that it did not (the call is sent again).
        """
        timeout = self._timeout if timeout_seconds is None else timeout_seconds
        policy = self._retries if retry else NO_RETRIES
        deadline = self._clock() + timeout
        tries, retries, check = 0, 0, False
        while True:
            left = timeout if retries == 0 else max(deadline - self._clock(), MIN_TRY_SECONDS)
            try:
                if check:
                    assert landed is not None
                    found = landed(left)
                    if found is not None:
                        return found
                    check = False
                tries += 1
                return send(left)
            except Exception as exc:
                error = lakefs_error(operation, exc)
                if error is None:
                    raise
                transient = is_transient(exc)
                if not transient and check is False and landed is not None and retries:
                    # A definite refusal of a resend (lakeFS: "no changes") may mean that a try
                    # whose answer was lost landed meanwhile.
                    found = self._landed_quietly(landed, left)
                    if found is not None:
                        return found
                delay = policy.delay(retries, random.random())
                if (
                    not transient
                    or retries + 1 >= policy.max_attempts
                    or self._clock() + delay + MIN_TRY_SECONDS > deadline
                ):
                    if retries:
                        error = LakeFSError(
                            operation,
                            error.status,
                            f"{error.server_message} (gave up after {tries} tries)",
                        )
                    raise error from None
                check = landed is not None and tries > 0 and (check or _sent(exc))
            retries += 1
            self._sleep(delay)

    @staticmethod
    def _landed_quietly(landed: Callable[[float], T | None], timeout: float) -> T | None:
        try:
            return landed(timeout)
        except Exception as exc:
            if lakefs_error("check", exc) is None:
                raise
            return None

    # -- reads ---------------------------------------------------------------------------------

    def branch_head(self, repository: str, branch: str) -> str:
        ref = self._call(
            "get branch",
            lambda timeout: self._branches.get_branch(repository, branch, _request_timeout=timeout),
        )
        return str(ref.commit_id)

    def resolve_commit(self, repository: str, ref: str) -> CommitInfo:
        """Commit id (and details) of any ref: commit id, branch or tag."""
        return self.get_commit(repository, ref)

    def get_commit(self, repository: str, commit_id: str) -> CommitInfo:
        return self._call(
            "get commit", lambda timeout: self._get_commit(repository, commit_id, timeout)
        )

    def _get_commit(self, repository: str, commit_id: str, timeout: float) -> CommitInfo:
        commit = self._commits.get_commit(repository, commit_id, _request_timeout=timeout)
        return CommitInfo(
            id=str(commit.id),
            parents=tuple(str(parent) for parent in commit.parents or ()),
            metadata=dict(commit.metadata or {}),
            creation_date=datetime.fromtimestamp(int(commit.creation_date), UTC),
            message=str(commit.message or ""),
        )

    def _paged(self, operation: str, page: Callable[[str, float], _Page[R]]) -> Iterator[R]:
        """Every result of a listing lakeFS pages: ``page(after, request timeout)``, each page
        one retried call, the next one sent only once the results before it are used."""
        after = ""
        while True:
            found = self._call(operation, functools.partial(page, after))
            yield from found.results
            if not found.pagination.has_more:
                return
            after = found.pagination.next_offset

    def has_uncommitted_changes(self, repository: str, branch: str) -> bool:
        diff = self._call(
            "diff branch",
            lambda timeout: self._branches.diff_branch(
                repository, branch, amount=1, _request_timeout=timeout
            ),
        )
        return bool(diff.results)

    def iter_branches(self, repository: str, prefix: str) -> Iterator[tuple[str, str]]:
        """``(branch id, head commit id)`` of every branch whose id starts with ``prefix``."""
        for ref in self._paged(
            "list branches",
            lambda after, timeout: self._branches.list_branches(
                repository,
                prefix=prefix,
                after=after,
                amount=LAKEFS_PAGE_SIZE,
                _request_timeout=timeout,
            ),
        ):
            yield str(ref.id), str(ref.commit_id)

    def iter_diff(self, repository: str, left_ref: str, right_ref: str) -> Iterator[DiffEntry]:
        """Every path that differs between two refs (lakeFS's own diff, page by page)."""
        for item in self._paged(
            "diff refs",
            lambda after, timeout: self._refs.diff_refs(
                repository,
                left_ref,
                right_ref,
                after=after,
                amount=LAKEFS_PAGE_SIZE,
                _request_timeout=timeout,
            ),
        ):
            yield DiffEntry(type=str(item.type), path=str(item.path))

    def storage_namespace(self, repository: str) -> str:
        found = self._call(
            "get repository",
            lambda timeout: self._repositories.get_repository(repository, _request_timeout=timeout),
        )
        return str(found.storage_namespace)

    # -- repositories, branches, objects ---------------------------------------------------------

    def create_repository(
        self, repository: str, storage_namespace: str, default_branch: str = "main"
    ) -> None:
        creation = RepositoryCreation(
            name=repository,
            storage_id=None,
            storage_namespace=storage_namespace,
            default_branch=default_branch,
            sample_data=None,
            read_only=None,
        )
        self._create(
            "create repository",
            lambda timeout: self._repositories.create_repository(
                creation, _request_timeout=timeout
            ),
            # Ours, if it has the namespace we asked for.
            ours=lambda: self.storage_namespace(repository) == storage_namespace,
        )

    def delete_repository(self, repository: str) -> None:
        self._delete(
            "delete repository",
            lambda timeout: self._repositories.delete_repository(
                repository, _request_timeout=timeout
            ),
        )

    def create_branch(self, repository: str, branch: str, source: str) -> None:
        creation = BranchCreation(name=branch, source=source, force=None, hidden=None)
        self._create(
            "create branch",
            lambda timeout: self._branches.create_branch(
                repository, creation, _request_timeout=timeout
            ),
            # Ours, if it points where we asked.
            ours=lambda: (
                self.branch_head(repository, branch) == self.get_commit(repository, source).id
            ),
        )

    def delete_branch(self, repository: str, branch: str) -> None:
        self._delete(
            "delete branch",
            lambda timeout: self._branches.delete_branch(
                repository, branch, _request_timeout=timeout
            ),
        )

    def _create(
        self, operation: str, send: Callable[[float], object], *, ours: Callable[[], bool]
    ) -> None:
        # A retried creation answered "exists": done, if ``ours()``.
        self._lost_try_did_it(operation, send, 409, ours)

    def _delete(self, operation: str, send: Callable[[float], None]) -> None:
        # Gone after a retried try.
        self._lost_try_did_it(operation, send, 404, lambda: True)

    def _lost_try_did_it(
        self,
        operation: str,
        send: Callable[[float], object],
        status: int,
        ours: Callable[[], bool],
    ) -> None:
        """``send``, retried; ``status`` after a retried try means the try whose answer was
        lost did the work (when ``ours()`` confirms it), so the call is done."""
        tries = _Counter()
        try:
            self._call(operation, tries.counted(send))
        except LakeFSError as exc:
            if not (exc.status == status and tries.count > 1):
                raise
            if not ours():
                raise

    def upload_object(self, repository: str, branch: str, path: str, content: bytes) -> None:
        """Write one small object (bulk data goes through :mod:`perago.engine.transfer`)."""
        # lakefs-sdk uploads a file by name (multipart), so the bytes go through a temp file.
        with tempfile.NamedTemporaryFile(prefix="perago-upload-") as staged:
            staged.write(content)
            staged.flush()
            self._call(
                "upload object",
                lambda timeout: self._objects.upload_object(
                    repository, branch, path, content=staged.name, _request_timeout=timeout
                ),
            )

    # -- branch moves ------------------------------------------------------------------------------

    def commit(
        self, repository: str, branch: str, message: str, metadata: Mapping[str, str]
    ) -> str:
        """Commit the branch's uncommitted changes; never twice (see the module docstring)."""
        wanted = dict(metadata)
        creation = CommitCreation(
            message=message, metadata=wanted, date=None, allow_empty=None, force=None
        )
        before = self.branch_head(repository, branch) if self._retries.max_attempts > 1 else None

        def send(timeout: float) -> str:
            return str(
                self._commits.commit(repository, branch, creation, _request_timeout=timeout).id
            )

        def landed(timeout: float) -> str | None:
            head = str(
                self._branches.get_branch(repository, branch, _request_timeout=timeout).commit_id
            )
            if head == before:
                return None
            found = self._get_commit(repository, head, timeout)
            mine = (
                found.first_parent == before
                and found.message == message
                and dict(found.metadata) == wanted
            )
            if not mine:
                raise LakeFSError(
                    "commit",
                    None,
                    f"{branch} moved from {before} to {head} while the commit's answer was lost",
                )
            return found.id

        return self._call("commit", send, retry=before is not None, landed=landed)

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
        """Sent once: a lost answer is the publisher's to look up (docs/adr/0007 §5)."""
        merge = Merge(
            message=message,
            metadata=dict(metadata),
            strategy=None,
            force=None,
            allow_empty=None,
            squash_merge=True,
        )
        result = self._call(
            "merge",
            lambda timeout: self._refs.merge_into_branch(
                repository,
                source_ref,
                destination_branch,
                merge=merge,
                _request_timeout=timeout,
            ),
            retry=False,
            timeout_seconds=timeout_seconds,
        )
        return str(result.reference)

    def hard_reset(
        self, repository: str, branch: str, ref: str, timeout_seconds: float | None
    ) -> None:
        """Sent once: the publisher re-reads the head and fence before any further try."""
        self._call(
            "hard reset",
            lambda timeout: self._experimental.hard_reset_branch(
                repository, branch, ref, force=False, _request_timeout=timeout
            ),
            retry=False,
            timeout_seconds=timeout_seconds,
        )


class _Counter:
    """Counts the tries of one call (did a retry happen before this answer?)."""

    def __init__(self) -> None:
        self.count = 0

    def counted(self, send: Callable[[float], T]) -> Callable[[float], T]:
        def counting(timeout: float) -> T:
            self.count += 1
            return send(timeout)

        return counting


# -- failure classification and mapping (pure) -------------------------------------------------


def _connection_failure(exc: BaseException) -> BaseException | None:
    """The connection-level cause of a urllib3/OS failure (``MaxRetryError`` unwrapped)."""
    if isinstance(exc, MaxRetryError):
        return exc.reason
    return exc


def is_transient(exc: BaseException) -> bool:
    """No definite answer, or "not now": connection refused/reset/timed out, 429/502/503/504."""
    if isinstance(exc, ApiException):
        return exc.status in TRANSIENT_STATUSES
    if isinstance(exc, LakeFSError):
        return exc.status in TRANSIENT_STATUSES
    cause = _connection_failure(exc)
    return isinstance(
        cause,
        NewConnectionError | ProtocolError | Urllib3TimeoutError | ConnectionError | TimeoutError,
    )


def _sent(exc: BaseException) -> bool:
    """Whether the request may have reached the server (a refused connection never did)."""
    cause = _connection_failure(exc)
    return not isinstance(cause, NewConnectionError | ConnectionRefusedError)


def lakefs_error(operation: str, exc: BaseException) -> LakeFSError | None:
    """``exc`` as perago's :class:`LakeFSError` (``None``: not a lakeFS failure, re-raise it)."""
    if isinstance(exc, LakeFSError):
        return exc
    if isinstance(exc, ApiException):
        return LakeFSError(operation, exc.status or None, _api_message(exc))
    if isinstance(exc, OpenApiException):
        return LakeFSError(operation, None, str(exc))
    if isinstance(exc, OSError | Urllib3Error):
        # Connection refused, timeouts: name the failure, never the request.
        return LakeFSError(operation, None, f"{type(exc).__name__}: {exc}")
    return None


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
