"""perago: typed Conductor workers on lakeFS-versioned workspaces, with a Rust core.

The public API is the set of names this package exports, listed once in ``__init__.pyi``; the
subpackages (``definition``, ``attempt``, ``engine``, ``lakefs``, ``conductor``, ``runtime``,
``cli``, ``devservers``, ``bench``) are internal and may change between releases. ``perago.errors``
holds the whole exception hierarchy, rooted at :class:`PeragoError`.

Every public name is loaded on first use (PEP 562): ``import perago`` stays cheap, so short-lived
processes (a transfer child, ``perago --version``) do not pay for pydantic, loguru or the SDKs.
"""

from __future__ import annotations

import ast
import importlib
import os


def _read_exports() -> dict[str, str]:
    # The stub's ``from perago.X import NAME as NAME`` lines are the table: one place to list
    # names. It is read through the package's own loader (not the file system), so it is found
    # wherever the loader finds this module.
    stub_path = os.path.join(os.path.dirname(__file__), "__init__.pyi")
    text = __spec__.loader.get_data(stub_path).decode("utf-8")  # type: ignore[union-attr]
    return {
        alias.name: node.module
        for node in ast.parse(text).body
        if isinstance(node, ast.ImportFrom)
        and node.module is not None
        and node.module.startswith("perago.")
        for alias in node.names
        if alias.asname == alias.name
    }


_MODULE_OF = _read_exports()
__all__ = sorted([*_MODULE_OF, "__version__"])  # noqa: PLE0605 - the stub is the list


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("perago")
    except PackageNotFoundError:  # running from a source tree without an install
        return "0.0.0+unknown"


def __getattr__(name: str) -> object:
    if name == "__version__":
        value: object = _package_version()
    else:
        module_name = _MODULE_OF.get(name)
        if module_name is None:
            raise AttributeError(f"module 'perago' has no attribute {name!r}")
        value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
