"""Byte sizes as the bench commands take them: ``4096``, ``4K``, ``100KiB``, ``1M``, ``1GiB``."""

from __future__ import annotations

MIB = 1 << 20
_UNITS = {"": 1, "K": 1 << 10, "KI": 1 << 10, "M": MIB, "MI": MIB, "G": 1 << 30, "GI": 1 << 30}


def parse_size(text: str) -> int:
    """Binary units; a trailing ``B`` is optional."""
    cleaned = text.strip().upper().removesuffix("B")
    number = cleaned.rstrip("KMGI")
    unit = cleaned[len(number) :]
    if not number.isdigit() or unit not in _UNITS:
        raise ValueError(f"invalid size {text!r} (use e.g. 4096, 4K, 100KiB, 1GiB)")
    return int(number) * _UNITS[unit]
