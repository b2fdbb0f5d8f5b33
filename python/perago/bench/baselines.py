"""The programs the benches measure perago against (``lakectl``, ``b3sum``), found or not.

A baseline that cannot run is never left out silently: the bench prints one
``<tool> baseline skipped: <why>`` line on stderr (:meth:`Baseline.announce`) and lists the
baseline's rows anyway, unmeasured, with that line as their note and ``skipped: <why>`` in their
JSON (:meth:`Baseline.skipped_row`).

``lakectl`` is looked up in ``$PERAGO_LAKECTL_BIN`` (when set, it must name an executable), then
on ``PATH``, then in the cache where ``perago dev provision`` built it
(:func:`perago.devservers.provision.cached_lakefs`, under ``$PERAGO_DEV_CACHE_DIR`` or
``~/.cache/perago``): a machine that ran ``perago dev up`` has one even when none is on PATH.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass

from perago.bench.report import Row, skipped_line

LAKECTL = "lakectl"
B3SUM = "b3sum"
LAKECTL_ENV = "PERAGO_LAKECTL_BIN"
LAKECTL_MISSING = "lakectl not found on PATH or in the perago dev cache"
B3SUM_MISSING = "b3sum not found on PATH (apt-get install b3sum)"
TURNED_OFF = "turned off (--no-lakectl)"


@dataclass(frozen=True)
class Baseline:
    """A baseline program: its path, or None and why it does not run."""

    tool: str
    path: str | None
    why: str = ""

    @property
    def skipped_line(self) -> str:
        return skipped_line(self.tool, self.why)

    def announce(self, log: Callable[[str], None]) -> Baseline:
        """Say on ``log`` (stderr) that the baseline is skipped, when it is; ``self``."""
        if self.path is None:
            log(self.skipped_line)
        return self

    def skipped_row(self, scenario: str) -> Row:
        """The unmeasured row this baseline would have had in ``scenario``."""
        return Row.skipped_baseline(scenario, self.tool, self.why)


def _executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def cached_lakectl() -> str | None:
    """The ``lakectl`` ``perago dev provision`` built into its cache, if any (no network)."""
    from perago.devservers import provision

    binaries = provision.cached_lakefs()
    if binaries is None or not _executable(str(binaries.lakectl)):
        return None
    return str(binaries.lakectl)


def lakectl(enabled: bool = True) -> Baseline:
    """``lakectl``: ``$PERAGO_LAKECTL_BIN``, else on PATH, else perago dev's cached one."""
    if not enabled:
        return Baseline(LAKECTL, None, TURNED_OFF)
    explicit = os.environ.get(LAKECTL_ENV, "").strip()
    if explicit:
        if _executable(explicit):
            return Baseline(LAKECTL, explicit)
        return Baseline(LAKECTL, None, f"{LAKECTL_ENV}={explicit} is not an executable file")
    found = shutil.which(LAKECTL) or cached_lakectl()
    return Baseline(LAKECTL, found, "" if found else LAKECTL_MISSING)


def b3sum() -> Baseline:
    """``b3sum`` on PATH."""
    found = shutil.which(B3SUM)
    return Baseline(B3SUM, found, "" if found else B3SUM_MISSING)
