"""The lakeFS client's pure logic: URL normalisation, which failures are transient, how SDK
failures become ``perago.errors.LakeFSError``, and the bounded retry loop (driven with
injected clock and sleep; the real server is exercised in tests/integration)."""

from __future__ import annotations

import pickle
from collections.abc import Callable

import pytest
from lakefs_sdk.exceptions import ApiException, ApiValueError, NotFoundException
from pydantic import SecretStr
from urllib3.exceptions import (
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from perago.errors import LakeFSError, PeragoError
from perago.lakefs.client import (
    NO_RETRIES,
    LakeFSControl,
    Retries,
    api_base_url,
    is_transient,
    lakefs_error,
)

SECRET = "client-secret-value"


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://lakefs:8000",
        "http://lakefs:8000/",
        "http://lakefs:8000/api/v1",
        "http://lakefs:8000/api/v1/",
        " http://lakefs:8000 ",
    ],
)
def test_every_endpoint_spelling_means_the_v1_api_root(endpoint: str) -> None:
    assert api_base_url(endpoint) == "http://lakefs:8000/api/v1"


def test_the_client_repr_names_the_api_root_and_never_the_secret() -> None:
    control = LakeFSControl("http://lakefs:8000/", "key", SecretStr(SECRET))
    assert repr(control) == "LakeFSControl('http://lakefs:8000/api/v1')"
    assert SECRET not in repr(control)


def _api_error(status: int, body: str = "") -> ApiException:
    error = ApiException(status=status, reason="Reason")
    error.body = body
    return error


def _refused() -> MaxRetryError:
    cause = NewConnectionError(None, "Failed to establish a new connection: [Errno 111] refused")  # type: ignore[arg-type]
    return MaxRetryError(None, "/api/v1/x", cause)  # type: ignore[arg-type]


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_throttling_and_gateway_statuses_are_transient(status: int) -> None:
    assert is_transient(_api_error(status))
    assert is_transient(LakeFSError("get branch", status, "x"))


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 412, 500])
def test_answers_that_mean_no_are_not_transient(status: int) -> None:
    assert not is_transient(_api_error(status))
    assert not is_transient(LakeFSError("get branch", status, "x"))


@pytest.mark.parametrize(
    "failure",
    [
        _refused(),
        MaxRetryError(None, "/x", ProtocolError("Connection aborted.", ConnectionResetError())),  # type: ignore[arg-type]
        ProtocolError("Connection aborted.", ConnectionResetError()),
        ReadTimeoutError(None, "/x", "read timed out"),  # type: ignore[arg-type]
        ConnectionRefusedError(111, "refused"),
        ConnectionResetError(104, "reset"),
    ],
)
def test_connection_failures_are_transient(failure: BaseException) -> None:
    assert is_transient(failure)


@pytest.mark.parametrize(
    "failure",
    [
        MaxRetryError(None, "/x", SSLError("certificate verify failed")),  # type: ignore[arg-type]
        ApiValueError("bad argument"),
        _api_error(0, ""),  # the SDK's own "cannot prepare the request"
        LakeFSError("commit", None, "branch moved"),
        ValueError("not lakeFS"),
    ],
)
def test_other_failures_are_not_transient(failure: BaseException) -> None:
    assert not is_transient(failure)


def test_api_failures_carry_the_status_and_the_servers_own_message() -> None:
    error = lakefs_error("get branch", _api_error(404, '{"message": "branch not found"}'))
    assert isinstance(error, LakeFSError)
    assert isinstance(error, PeragoError)
    assert (error.operation, error.status, error.server_message) == (
        "get branch",
        404,
        "branch not found",
    )
    assert str(error) == "lakeFS get branch failed (HTTP 404): branch not found"
    plain = lakefs_error("commit", _api_error(502, "<html>  Bad\n gateway </html>"))
    assert plain is not None
    assert plain.server_message == "<html> Bad gateway </html>"
    no_body = lakefs_error("commit", NotFoundException(status=404, reason="Not Found"))
    assert no_body is not None
    assert no_body.server_message == "Not Found"


def test_connection_failures_name_the_failure_without_a_status() -> None:
    error = lakefs_error("get commit", _refused())
    assert error is not None
    assert error.status is None
    assert error.server_message.startswith("MaxRetryError: ")


def test_non_lakefs_exceptions_are_not_mapped() -> None:
    assert lakefs_error("x", ValueError("bug")) is None
    existing = LakeFSError("x", 1, "y")
    assert lakefs_error("other", existing) is existing


def test_the_error_keeps_a_target_and_survives_pickling() -> None:
    error = LakeFSError("list objects", 404, "not found", target="repo@main:p/")
    assert str(error) == "lakeFS list objects repo@main:p/ failed (HTTP 404): not found"
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.operation, copy.status, copy.server_message, copy.target, str(copy)) == (
        error.operation,
        error.status,
        error.server_message,
        error.target,
        str(error),
    )


def test_retry_delays_follow_the_data_paths_schedule() -> None:
    policy = Retries()
    assert policy.max_attempts == 8
    assert [policy.delay(n, 0.0) for n in range(7)] == [0.1, 0.2, 0.4, 0.8, 1.6, 2.5, 2.5]
    assert [policy.delay(n, 1.0) for n in range(7)] == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
    # Like the Rust data path (8 tries over roughly 15 s): between 8 and 17 s of waiting.
    waits = [sum(policy.delay(n, unit) for n in range(policy.max_attempts - 1)) for unit in (0, 1)]
    assert 8 < waits[0] < waits[1] < 17


# -- the retry loop, with a fake clock ------------------------------------------------------------


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _control(
    time: FakeTime, *, timeout: float = 60.0, retries: Retries | None = None
) -> LakeFSControl:
    return LakeFSControl(
        "http://127.0.0.1:1",
        "key",
        SecretStr(SECRET),
        timeout_seconds=timeout,
        retries=retries or Retries(),
        sleep=time.sleep,
        clock=time.clock,
    )


def _failing(failures: list[BaseException], result: str = "ok") -> Callable[[float], str]:
    def send(timeout: float) -> str:
        send.timeouts.append(timeout)  # type: ignore[attr-defined]
        if failures:
            raise failures.pop(0)
        return result

    send.timeouts = []  # type: ignore[attr-defined]
    return send


def test_transient_failures_are_retried_with_growing_delays() -> None:
    time = FakeTime()
    send = _failing([_refused(), _api_error(503), _api_error(502)])
    assert _control(time)._call("get branch", send) == "ok"
    assert len(send.timeouts) == 4  # type: ignore[attr-defined]
    assert len(time.sleeps) == 3
    assert time.sleeps[0] < time.sleeps[2]


def test_a_definite_failure_is_raised_at_once() -> None:
    time = FakeTime()
    send = _failing([_api_error(404, '{"message": "no such branch"}')])
    with pytest.raises(LakeFSError) as failure:
        _control(time)._call("get branch", send)
    assert failure.value.status == 404
    assert failure.value.server_message == "no such branch"
    assert time.sleeps == []


def test_retries_end_with_the_attempts_and_say_so() -> None:
    time = FakeTime()
    send = _failing([_api_error(503, '{"message": "down"}') for _ in range(10)])
    with pytest.raises(LakeFSError) as failure:
        _control(time, retries=Retries(max_attempts=3))._call("get branch", send)
    assert len(send.timeouts) == 3  # type: ignore[attr-defined]
    assert failure.value.status == 503
    assert failure.value.server_message == "down (gave up after 3 tries)"


def test_retries_end_with_the_calls_timeout_and_later_tries_get_only_the_time_left() -> None:
    time = FakeTime()
    send = _failing([_refused() for _ in range(50)])
    with pytest.raises(LakeFSError):
        _control(time, timeout=3.0, retries=Retries(max_attempts=50))._call("get branch", send)
    timeouts: list[float] = send.timeouts  # type: ignore[attr-defined]
    assert timeouts[0] == 3.0
    assert all(t < 3.0 for t in timeouts[1:])
    assert time.now <= 3.0  # the whole call stayed within its timeout


@pytest.mark.parametrize("make", [lambda c: c.without_retries(), None])
def test_calls_without_retries_are_sent_once(
    make: Callable[[LakeFSControl], LakeFSControl] | None,
) -> None:
    time = FakeTime()
    control = _control(time) if make is None else make(_control(time))
    send = _failing([_refused(), _refused()])
    with pytest.raises(LakeFSError):
        control._call("merge", send, retry=make is not None)
    assert len(send.timeouts) == 1  # type: ignore[attr-defined]
    assert time.sleeps == []
    assert _control(time, retries=NO_RETRIES)._retries.max_attempts == 1


def test_a_lost_answer_is_looked_for_before_anything_is_sent_again() -> None:
    time = FakeTime()
    timed_out = ReadTimeoutError(None, "/commits", "read timed out")  # type: ignore[arg-type]
    send = _failing([timed_out], result="resent")
    checks: list[float] = []

    def landed(timeout: float) -> str | None:
        checks.append(timeout)
        return "landed"

    assert _control(time)._call("commit", send, landed=landed) == "landed"
    assert len(send.timeouts) == 1  # type: ignore[attr-defined]
    assert len(checks) == 1


def test_a_lost_answer_that_did_not_land_is_sent_again() -> None:
    time = FakeTime()
    send = _failing([_api_error(504)], result="resent")
    assert _control(time)._call("commit", send, landed=lambda _t: None) == "resent"
    assert len(send.timeouts) == 2  # type: ignore[attr-defined]


def test_an_unreadable_head_holds_the_resend_back() -> None:
    time = FakeTime()
    send = _failing([_api_error(503)], result="resent")
    answers: list[BaseException | str | None] = [_refused(), _api_error(502), None]

    def landed(_timeout: float) -> str | None:
        answer = answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    assert _control(time)._call("commit", send, landed=landed) == "resent"
    assert len(send.timeouts) == 2  # type: ignore[attr-defined]
    assert answers == []


def test_a_refused_connection_needs_no_lookup() -> None:
    time = FakeTime()
    send = _failing([_refused()], result="sent")

    def landed(_timeout: float) -> str | None:
        raise AssertionError("nothing was sent, so nothing can have landed")

    assert _control(time)._call("commit", send, landed=landed) == "sent"


def test_a_refused_resend_looks_again_for_the_lost_try() -> None:
    time = FakeTime()
    # The first try's answer is lost; the look-up finds nothing yet; the resend is refused
    # ("no changes") because the first try landed meanwhile.
    send = _failing([_api_error(504), _api_error(400, '{"message": "no changes"}')])
    found: list[str | None] = [None, "landed-late"]
    assert _control(time)._call("commit", send, landed=lambda _t: found.pop(0)) == "landed-late"
