"""What a worker process and its supervisor agree on: exit codes and the status pipe."""

from __future__ import annotations

EXIT_OK = 0
EXIT_STARTUP_FAILED = 3
# The watchdog ended the process after an overdue attempt: restart the slot at once, not a crash.
EXIT_DEADLINE = 70

# Environment variable naming the inherited pipe fd on which a worker writes ``ready`` once it
# polls, or ``fatal: <cause>`` when it cannot start.
STATUS_FD_ENV = "PERAGO_STATUS_FD"
