"""Liveness is judged only for the same host, boot and pid namespace (issue 12)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

from perago.host.processes import ProcessIdentity, current_process_identity, host_id, judge


def test_this_process_is_alive_and_round_trips() -> None:
    me = current_process_identity()
    assert judge(me) == "alive"
    assert ProcessIdentity.from_json(me.to_json()) == me
    assert ProcessIdentity.from_json({"pid": 1}) is None
    assert ProcessIdentity.from_json("x") is None


def test_a_dead_or_reused_pid_is_dead() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    me = current_process_identity()
    assert judge(dataclasses.replace(me, pid=child.pid)) == "dead"
    assert judge(dataclasses.replace(me, start_ticks=me.start_ticks + 1)) == "dead"


def test_another_host_boot_or_namespace_is_never_dead() -> None:
    me = current_process_identity()
    for changed in (
        dataclasses.replace(me, host_id="other-host", pid=999_999_999),
        dataclasses.replace(me, boot_id="other-boot", pid=999_999_999),
        dataclasses.replace(me, pid_namespace="pid:[1]", pid=1),
    ):
        assert judge(changed) == "unknown"


def test_instance_id_overrides_the_machine_id() -> None:
    assert host_id({"PERAGO_INSTANCE_ID": "  node-7 "}) == "node-7"
    assert host_id({}) == host_id({"PERAGO_INSTANCE_ID": ""})
    env = {"PERAGO_INSTANCE_ID": "node-7"}
    assert judge(current_process_identity(env)) == "unknown"  # judged here without it
    assert judge(current_process_identity(env), env) == "alive"
