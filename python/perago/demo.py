"""The end-to-end demo behind ``make demo`` (``python -m perago.demo``).

Starts (or reuses) the local lakeFS and Conductor servers, seeds a lakeFS repository with two raw
"tracks", registers the ``examples.render_audio`` TaskDef and a one-task workflow, runs
``perago start`` in the background, starts a workflow, waits for it, prints the published commit
and the files it changed, then stops everything it started.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import requests
from pydantic import SecretStr

from perago.config import (
    LAKEFS_ACCESS_KEY_ID,
    LAKEFS_ENDPOINT_URL,
    LAKEFS_SECRET_ACCESS_KEY,
    LakeFSConfig,
    parse_dotenv,
)
from perago.lakefs.client import LakeFSControl

MODULE = "examples.render_audio"
WORKFLOW = "perago_demo_render_audio"
TRACKS = {"audio/raw/intro.txt": b"hello perago\n", "audio/raw/outro.txt": b"goodbye lakefs\n"}


def _perago(
    *args: str, cwd: Path, check: bool = True, show_progress: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run a perago command; ``show_progress`` passes its stderr (progress lines and bars of a
    cold provisioning, minutes long) straight to the terminal instead of capturing it."""
    command = [str(Path(sys.executable).with_name("perago")), *args]
    stderr = None if show_progress else subprocess.PIPE
    result = subprocess.run(
        command, cwd=cwd, stdout=subprocess.PIPE, stderr=stderr, text=True, check=False
    )
    if check and result.returncode != 0:
        # With show_progress its error line already reached the terminal.
        detail = (result.stderr or "").strip() or f"exit {result.returncode}"
        raise SystemExit(f"error: perago {' '.join(args)} failed: {detail}")
    return result


def _lakefs(env: dict[str, str]) -> LakeFSControl:
    return LakeFSControl.from_config(
        LakeFSConfig(
            endpoint_url=env[LAKEFS_ENDPOINT_URL],
            access_key_id=env[LAKEFS_ACCESS_KEY_ID],
            secret_access_key=SecretStr(env[LAKEFS_SECRET_ACCESS_KEY]),
        )
    )


def _seed(lakefs: LakeFSControl, repository: str) -> str:
    lakefs.create_repository(repository, f"local://{repository}")
    for path, content in TRACKS.items():
        lakefs.upload_object(repository, "main", path, content)
    return lakefs.commit(repository, "main", "seed", {})


def _changed(lakefs: LakeFSControl, repository: str, left: str, right: str) -> list[str]:
    return sorted(f"{d.type:<8} {d.path}" for d in lakefs.iter_diff(repository, left, right))


def _wait_for_workflow(api: str, workflow_id: str, timeout: float = 300.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state: dict[str, Any] = requests.get(f"{api}/workflow/{workflow_id}", timeout=30).json()
        if state["status"] != "RUNNING":
            return state
        time.sleep(0.5)
    raise SystemExit(f"error: workflow {workflow_id} did not finish within {timeout:.0f}s")


def run(repo_root: Path, state_dir: Path | None = None) -> int:
    demo_dir = repo_root / ".perago" / "demo"
    demo_dir.mkdir(parents=True, exist_ok=True)
    shutil.copytree(repo_root / "examples", demo_dir / "examples", dirs_exist_ok=True)
    state_args = ["--state-dir", str(state_dir)] if state_dir is not None else []
    already_up = _perago("dev", "status", *state_args, cwd=demo_dir, check=False).returncode == 0
    print("== starting local lakeFS and Conductor (perago dev up)", flush=True)
    stack = _perago(
        "dev", "up", *state_args, "--env-file", ".env", cwd=demo_dir, show_progress=True
    )
    print(stack.stdout.strip())
    env = parse_dotenv((demo_dir / ".env").read_text(encoding="utf-8"))
    env.setdefault("PERAGO_WORKSPACE_ROOT", str(demo_dir / "workspaces"))
    env.setdefault("PERAGO_LOG_ROOT", str(demo_dir / "logs"))
    with (demo_dir / ".env").open("a", encoding="utf-8") as handle:
        for key in ("PERAGO_WORKSPACE_ROOT", "PERAGO_LOG_ROOT"):
            handle.write(f"{key}={env[key]}\n")
    api = env["CONDUCTOR_SERVER_URL"].rstrip("/")
    lakefs = _lakefs(env)
    worker: subprocess.Popen[str] | None = None
    try:
        repository = f"perago-demo-{uuid.uuid4().hex[:8]}"
        input_ref = _seed(lakefs, repository)
        print(f"== seeded lakeFS repository {repository} at commit {input_ref}")
        print(_perago("register", MODULE, cwd=demo_dir).stdout.strip())
        workflow_def: dict[str, Any] = {
            "name": WORKFLOW,
            "version": 1,
            "schemaVersion": 2,
            "ownerEmail": "demo@example.com",
            "tasks": [
                {
                    "name": "render_audio",
                    "taskReferenceName": "render",
                    "type": "SIMPLE",
                    "inputParameters": {
                        "workspace": "${workflow.input.workspace}",
                        "params": "${workflow.input.params}",
                    },
                }
            ],
        }
        requests.put(f"{api}/metadata/workflow", json=[workflow_def], timeout=30).raise_for_status()
        print("== perago start examples.render_audio -j 2 (background)")
        worker = subprocess.Popen(
            [str(Path(sys.executable).with_name("perago")), "start", MODULE, "-j", "2"],
            cwd=demo_dir,
            text=True,
        )
        workspace = {
            "repository": repository,
            "branch": "main",
            "ref_type": "commit",
            "ref": input_ref,
        }
        started = requests.post(
            f"{api}/workflow/{WORKFLOW}",
            json={"workspace": workspace, "params": {"gain": 1.5}},
            timeout=30,
        )
        started.raise_for_status()
        workflow_id = started.text.strip().strip('"')
        print(f"== started workflow {workflow_id}; waiting")
        state = _wait_for_workflow(api, workflow_id)
        print(f"== workflow {state['status']}")
        if state["status"] != "COMPLETED":
            reasons = [t.get("reasonForIncompletion") for t in state.get("tasks", [])]
            print(f"error: workflow did not complete: {reasons}", file=sys.stderr)
            return 1
        output = state["output"]
        published = output["workspace"]["ref"]
        print(f"published commit: {published} on {repository}/main")
        print(f"result: {output['result']}")
        print("changed files:")
        for line in _changed(lakefs, repository, input_ref, published):
            print(f"  {line}")
        return 0
    finally:
        lakefs.close()
        if worker is not None:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=120)
        if not already_up:
            print("== stopping the servers this demo started (perago dev down)")
            _perago("dev", "down", *state_args, cwd=demo_dir, check=False)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m perago.demo", description=__doc__)
    parser.add_argument(
        "repo_root", nargs="?", type=Path, default=Path.cwd(), help="directory holding examples/"
    )
    parser.add_argument(
        "--state-dir", type=Path, help="servers' state directory (default: perago dev's default)"
    )
    args = parser.parse_args()
    state_dir = args.state_dir.resolve() if args.state_dir is not None else None
    raise SystemExit(run(args.repo_root.resolve(), state_dir))


if __name__ == "__main__":
    main()
