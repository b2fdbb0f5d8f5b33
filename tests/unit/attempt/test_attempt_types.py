from __future__ import annotations

import time

from perago.attempt.identity import AttemptStats, TaskAttempt


def test_phase_times_accumulate_and_export() -> None:
    stats = AttemptStats()
    with stats.phase("download"):
        time.sleep(0.01)
    with stats.phase("download"):
        time.sleep(0.01)
    fields = stats.as_log_fields()
    assert fields["phase_ms"]["download"] >= 20.0
    assert fields["files_downloaded"] == 0


def test_task_attempt_defaults() -> None:
    attempt = TaskAttempt(
        workflow_instance_id="wf",
        task_id="t",
        retry_count=0,
        task_def_name="render",
        reference_task_name="render_ref",
        seq=1,
        status="IN_PROGRESS",
        input_data={},
    )
    assert attempt.iteration == 0
    assert attempt.worker_id is None
