"""Replacing a file whole: readers see the old content or the new, never a part."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["write_atomically"]


def write_atomically(target: Path, data: bytes, mode: int, *, sync: bool) -> None:
    """Write ``data`` to a temporary file beside ``target`` and rename it over it."""
    fd, tmp = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
    )
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            # mkstemp creates 0600: give the intended mode so others can read it.
            os.fchmod(file.fileno(), mode)
            if sync:
                os.fsync(file.fileno())
        Path(tmp).replace(target)
    except BaseException:
        with contextlib.suppress(OSError):
            Path(tmp).unlink()
        raise
    if sync:  # the rename survives a crash only once the directory entry is on disk
        dir_fd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
