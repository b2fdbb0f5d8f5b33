"""Issue 12 against the real Conductor: the ``.env`` key pair, SDK worker settings, body env.

Our Conductor OSS server has no authentication, so the tests put a small recording proxy in front
of it: every perago command must still work with ``CONDUCTOR_AUTH_KEY``/``SECRET`` only in
``.env``, and the proxy shows that conductor-python used them (``POST /api/token`` with the key
pair; the OSS server answers 404 and the SDK then carries on without authentication).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import ConductorRest, deploy, make_project, stop
from tests.servers_fixture import ConductorServer

pytestmark = pytest.mark.integration

AUTH_KEY = "perago-e2e-key-id"
AUTH_SECRET = "perago-e2e-key-secret"
AUTH_DOTENV = {"CONDUCTOR_AUTH_KEY": AUTH_KEY, "CONDUCTOR_AUTH_SECRET": AUTH_SECRET}
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "proxy-connection",
    "upgrade",
}


@dataclass
class Seen:
    method: str
    path: str
    authorization: str | None
    body: bytes
    status: int


@dataclass
class RecordingProxy:
    """Forwards everything to the real Conductor and records what perago's SDK sent."""

    upstream: str
    seen: list[Seen] = field(default_factory=list)
    api_url: str = ""

    def token_requests(self) -> list[dict[str, Any]]:
        return [
            json.loads(s.body) for s in self.seen if s.method == "POST" and s.path == "/api/token"
        ]


def _handler(proxy: RecordingProxy) -> type[BaseHTTPRequestHandler]:
    target = urllib.parse.urlsplit(proxy.upstream)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args: Any) -> None:
            pass

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            headers["Host"] = target.netloc
            assert target.hostname is not None, proxy.upstream
            connection = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
            try:
                connection.request(self.command, self.path, body=body or None, headers=headers)
                response = connection.getresponse()
                data = response.read()
                reply = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
                status = response.status
            finally:
                connection.close()
            proxy.seen.append(
                Seen(self.command, self.path, self.headers.get("X-Authorization"), body, status)
            )
            self.send_response(status)
            for key, value in reply:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _forward

    return Handler


@pytest.fixture
def proxy(conductor_server: ConductorServer) -> Iterator[RecordingProxy]:
    recording = RecordingProxy(conductor_server.url)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(recording))
    server.daemon_threads = True
    recording.api_url = f"http://127.0.0.1:{server.server_address[1]}/api"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recording
    finally:
        server.shutdown()
        server.server_close()


WORD_TASK = """
from pydantic import BaseModel
from perago import task

class Params(BaseModel):
    text: str

class Result(BaseModel):
    words: int

@task(name="{name}", owner_email="tests@example.com")
def run(params: Params) -> Result:
    return Result(words=len(params.text.split()))
"""


def test_register_with_the_key_pair_only_in_dotenv(
    tmp_path: Path, proxy: RecordingProxy, conductor_server: ConductorServer, unique_name: str
) -> None:
    project = make_project(
        tmp_path,
        "mod_" + unique_name,
        WORD_TASK.format(name=unique_name),
        conductor_api_url=proxy.api_url,
        dotenv=AUTH_DOTENV,
    )
    result = project.run("register", project.module)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"created: {unique_name}"
    assert result.stderr == ""
    # conductor-python asked for a token with the pair from .env ...
    assert proxy.token_requests() == [{"keyId": AUTH_KEY, "keySecret": AUTH_SECRET}]
    (token,) = [s for s in proxy.seen if s.path == "/api/token"]
    assert token.status == 404  # ... the OSS server has no /token ...
    # ... so the SDK dropped authentication and sent the metadata calls without a token.
    metadata = [s for s in proxy.seen if s.path.startswith("/api/metadata/taskdefs")]
    assert [s.method for s in metadata] == ["GET", "POST"]
    assert {s.authorization for s in metadata} == {None}
    rest = ConductorRest(conductor_server.api_url)
    registered = rest.http.get(f"{rest.api_url}/metadata/taskdefs/{unique_name}", timeout=30)
    assert registered.status_code == 200
    assert registered.json()["name"] == unique_name


ENV_TASK = """
import os, subprocess, sys
from pydantic import BaseModel
from perago import task

NAMES = {names!r}

class Params(BaseModel):
    pass

class Result(BaseModel):
    in_process: list[str]
    in_subprocess: list[str]

@task(name="{name}", owner_email="tests@example.com")
def run(params: Params) -> Result:
    code = "import os, sys; print(','.join(n for n in sys.argv[1:] if n in os.environ))"
    out = subprocess.run([sys.executable, "-c", code, *NAMES], capture_output=True, text=True)
    return Result(
        in_process=[n for n in NAMES if n in os.environ],
        in_subprocess=[n for n in out.stdout.strip().split(",") if n],
    )
"""
CREDENTIALS = {
    **AUTH_DOTENV,
    "LAKECTL_SERVER_ENDPOINT_URL": "http://127.0.0.1:9",  # parsed only: the task has no workspace
    "LAKECTL_CREDENTIALS_ACCESS_KEY_ID": "AKIAE2E",
    "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY": "lakefs-e2e-secret",
}


def test_start_uses_the_dotenv_pair_and_bodies_do_not_inherit_credentials(
    tmp_path: Path, proxy: RecordingProxy, conductor_server: ConductorServer, unique_name: str
) -> None:
    source = ENV_TASK.format(name=unique_name, names=sorted(CREDENTIALS))
    project = make_project(
        tmp_path,
        "mod_" + unique_name,
        source,
        conductor_api_url=proxy.api_url,
        dotenv={**CREDENTIALS, "PERAGO_BODY_ENV_PASSTHROUGH": "LAKECTL_CREDENTIALS_ACCESS_KEY_ID"},
        # The process environment is a second source of the same secrets: also withheld.
        env={"CONDUCTOR_AUTH_SECRET": AUTH_SECRET},
    )
    rest = ConductorRest(conductor_server.api_url)
    app = deploy(project, rest, unique_name, {"params": "${workflow.input.params}"})
    state = app.run_one({"params": {}})
    assert state["status"] == "COMPLETED", state
    result = state["output"]["result"]
    visible = ["LAKECTL_CREDENTIALS_ACCESS_KEY_ID", "LAKECTL_SERVER_ENDPOINT_URL"]
    assert result == {"in_process": visible, "in_subprocess": visible}
    # register, the start pre-flight and the worker process each built their SDK configuration
    # from .env: three token requests with the pair (OSS: 404, then no authentication).
    assert proxy.token_requests() == [{"keyId": AUTH_KEY, "keySecret": AUTH_SECRET}] * 3
    assert {s.authorization for s in proxy.seen} == {None}
    (withheld,) = project.events("credentials withheld from task bodies")
    assert withheld["variables"] == [
        "CONDUCTOR_AUTH_KEY",
        "CONDUCTOR_AUTH_SECRET",
        "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY",
    ]
    logs = "".join(p.read_text() for p in project.logs.rglob("*.jsonl"))
    for secret in (AUTH_SECRET, "lakefs-e2e-secret"):
        assert secret not in logs


def _start_in_domain(rest: ConductorRest, workflow: str, task: str, domain: str) -> str:
    request: dict[str, Any] = {
        "name": workflow,
        "version": 1,
        "input": {"params": {"text": ""}},
        "taskToDomain": {task: domain},
    }
    response = rest.http.post(f"{rest.api_url}/workflow", json=request, timeout=30)
    response.raise_for_status()
    return response.text.strip().strip('"')


def _task_of(rest: ConductorRest, workflow_id: str) -> dict[str, Any]:
    (task,) = rest.workflow(workflow_id)["tasks"]
    return dict(task)


def test_worker_domain_from_dotenv_picks_up_only_its_domain(
    tmp_path: Path, conductor_server: ConductorServer, unique_name: str
) -> None:
    rest = ConductorRest(conductor_server.api_url)
    domain = "blue" + unique_name[-6:]
    source = WORD_TASK.format(name=unique_name)
    plain = make_project(
        tmp_path, "mod_" + unique_name, source, conductor_api_url=conductor_server.api_url
    )
    app = deploy(plain, rest, unique_name, {"params": "${workflow.input.params}"})
    in_domain = _start_in_domain(rest, app.workflow, unique_name, domain)

    # A worker without the domain runs plain workflows but never the one routed to the domain.
    worker = plain.start()
    try:
        plain_state = rest.wait(app.start_workflow({"params": {"text": "a b"}}))
        time.sleep(3)  # several polls of the running worker
        waiting = _task_of(rest, in_domain)
    finally:
        code, _out, err = stop(worker)
    assert code == 0, err
    assert plain_state["status"] == "COMPLETED"
    assert waiting["status"] == "SCHEDULED"
    assert waiting["domain"] == domain
    assert not waiting.get("workerId")

    # The same task module with the domain in .env (the SDK's per-task variable name).
    blue = make_project(
        tmp_path,
        "mod_" + unique_name,
        source,
        conductor_api_url=conductor_server.api_url,
        dotenv={f"CONDUCTOR_WORKER_{unique_name.upper()}_DOMAIN": domain},
        name="blue",
    )
    checked = blue.run("check", blue.module)
    assert checked.returncode == 0, checked.stderr
    assert f"sdk_worker: domain={domain} poll_interval_ms=100 poll_timeout_ms=100" in (
        checked.stdout.splitlines()
    )
    worker = blue.start()
    try:
        state = rest.wait(in_domain, timeout=60)
    finally:
        code, _out, err = stop(worker)
    assert code == 0, err
    assert state["status"] == "COMPLETED"
    assert state["output"]["result"] == {"words": 0}
    (settings,) = blue.events("conductor worker settings")
    assert settings["domain"] == domain
    assert settings["sources"] == {"domain": f"CONDUCTOR_WORKER_{unique_name.upper()}_DOMAIN"}
