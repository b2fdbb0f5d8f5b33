"""Real lakeFS and Conductor servers for development, tests and CI (no Docker, no mocks).

``provision`` builds/fetches the server programs into the cache, ``lakefs``/``conductor`` know how
to start and probe each one, ``supervisor`` runs a pair of them under a state directory, and
``cli`` exposes ``perago dev up|down|status``.
"""

from __future__ import annotations

from perago.devservers.errors import DevServerError

__all__ = ["DevServerError"]
