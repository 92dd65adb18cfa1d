"""Files in and out, nothing half-written: checked input paths and atomic output.

* :func:`input_file` -- a path that must be an existing file; otherwise ``error``
  (a one-sentence exception class of the caller) naming what it is for.
* :func:`output_folder` -- the folder an output will go to must exist.
* :func:`atomic_output` -- a context manager giving a temporary path beside the
  target; on success it is renamed over the target in one step, on any error it
  is removed, so a reader never sees a partial file.
* :func:`write_json` -- JSON written through :func:`atomic_output`.
"""

from __future__ import annotations

import contextlib
import json
import os

__all__ = ["input_file", "output_folder", "atomic_output", "write_json"]


def input_file(path, what: str, error=ValueError) -> str:
    """``path`` as a string; ``error`` unless it is an existing file (``what`` names it:
    ``"NIR file"``, ``"dataset file"``)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise error(f"{what} {path!r} does not exist")
    if os.path.isdir(path):
        raise error(f"{what} {path!r} is a folder, not a file")
    return path


def output_folder(path, error=ValueError, option: str | None = None) -> str:
    """``path`` as a string; ``error`` unless the folder it goes into exists."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        where = f"{option} {path!r}" if option else f"cannot write {path!r}"
        raise error(f"{where}: the folder {directory!r} does not exist")
    return path


@contextlib.contextmanager
def atomic_output(path, error=ValueError, *, suffix: str = ""):
    """``with atomic_output(path) as tmp``: write ``tmp``; it becomes ``path`` at the end."""
    path = output_folder(path, error)
    directory, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(directory, f".{name}.tmp-{os.getpid()}{suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(path, data, error=ValueError, *, default=None) -> None:
    """``data`` as indented JSON to ``path``, atomically."""
    with atomic_output(path, error) as tmp:
        with open(tmp, "w") as f:
            json.dump(data, f, indent=2, default=default)
            f.write("\n")
