"""Type stub of the compiled module perago._native (checked against the build by tests)."""

import os

__version__: str

def hash_file(path: str | os.PathLike[str]) -> str: ...
