"""Run one command and report its wall time and peak RSS, from a small fresh interpreter.

Linux carries a process's high-water RSS across ``exec``: a child started straight from the
bench driver would report at least the driver's own peak (data generation, seeding). Started
from this launcher (``python -I -S``, stdlib only, ~10 MiB), the floor is this process instead,
far below what either tool uses. Usage: ``python -I -S child_launcher.py REPORT_FD CMD ARG...``;
writes ``<seconds> <peak_rss_kib> <cpu_seconds> <exit_code>`` to REPORT_FD (CPU: user + system
of the command and the children it waited for) and exits with the command's code.
"""

import os
import sys
import time


def main(argv: list[str]) -> int:
    report_fd, command = int(argv[0]), argv[1:]
    started = time.perf_counter()
    try:
        pid = os.posix_spawnp(command[0], command, os.environ)
    except OSError as exc:
        sys.stderr.write(f"cannot start {command[0]}: {exc}\n")
        return 127
    _, status, usage = os.wait4(pid, 0)
    elapsed = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    os.write(report_fd, f"{elapsed} {usage.ru_maxrss} {cpu} {code}".encode())
    return code if code >= 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
