"""The one exception type of the dev-server tooling (rendered as a one-line CLI error)."""

from __future__ import annotations

from perago.errors import PeragoError


class DevServerError(PeragoError, RuntimeError):
    """Provisioning, start, health or stop of a dev server failed; the message says why."""
