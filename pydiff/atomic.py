"""Atomic file writes: a file appears under its name complete, or not at all.

Every writer of pydiff (run files, checkpoints, figures, tables, predictions, data sets) writes
to a temporary file beside the target, flushes it to the disk and renames it over the target.
A reader never sees half a file, an interrupted writer leaves the previous file intact, and two
processes writing the same name do not share a temporary file (its name is unique).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from .errors import ConfigError


def _file_mode() -> int:
    """The mode an ordinary new file gets here (0o666 less the umask); mkstemp's own 0o600 would
    hide run directories and data from the rest of a group on a shared cluster."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


FILE_MODE = _file_mode()


def fsync_path(path) -> None:
    """Flush a file, or a directory's entries (a rename), to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check_writable(path) -> None:
    """:class:`ConfigError` in one line, before any work, where a new file cannot be made beside
    ``path`` (its directory read-only, not ours, /proc or /sys): every writer here writes a file
    beside its target and renames it, so that is the test.  Made and removed at once; the check
    that the directory exists is the caller's (with its own words)."""
    path = Path(path)
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".probe")
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
    os.close(fd)
    os.unlink(name)


@contextlib.contextmanager
def replacing(path):
    """A unique temporary path beside ``path`` for the block to write; when the block ends, the
    file is flushed to disk and renamed to ``path``.  On an error it is removed and ``path`` is
    untouched."""
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(fd, FILE_MODE)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        fsync_path(tmp)  # on disk before the rename makes it visible
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes(write, path) -> int:
    """Run ``write(file)`` on a temporary binary file and rename it to ``path``; the bytes written."""
    with replacing(path) as tmp:
        with open(tmp, "wb") as f:
            write(f)
            size = f.tell()
    return size


def write_text(text: str, path) -> int:
    return write_bytes(lambda f: f.write(text.encode()), path)
