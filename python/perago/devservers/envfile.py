"""Update KEY=value lines of a ``.env`` in place, keeping every other line as it was."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from perago.host.secure_files import write_private_file

_KEY = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=")


def update_env_file(path: Path, values: Mapping[str, str], remove: Iterable[str] = ()) -> None:
    """Replace the value of each key where it already appears; append the missing keys; drop
    the lines that define a key of ``remove`` (settings that no longer apply).

    The file is written atomically and readable only by its owner (it holds a secret): see
    ``perago.host.secure_files.write_private_file``.
    """
    lines = path.read_text().splitlines() if path.exists() else []
    pending = dict(values)
    dropped = set(remove) - set(values)
    updated: list[str] = []
    for line in lines:
        match = _KEY.match(line)
        key = match.group(1) if match else None
        if key is not None and key in dropped:
            continue
        if key is not None and key in values:
            if key in pending:
                updated.append(f"{key}={pending.pop(key)}")
            # a duplicate of a key we already wrote is dropped: one definition per key
            continue
        updated.append(line)
    updated += [f"{key}={value}" for key, value in pending.items()]
    write_private_file(path, "\n".join(updated) + "\n")
