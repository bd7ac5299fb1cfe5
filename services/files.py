"""Private files: every database, key and trust file of a state directory is readable by its owner only.

Files are created with mode 0600 and directories with 0700 from the start, whatever the process's umask, so
there is no moment when another user could open them. SQLite's ``-wal`` and ``-shm`` files take the mode of
their database file, so a database created here keeps them private too (:func:`private_sqlite` also tightens
any that an older version left readable).
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

__all__ = ["DIR_MODE", "FILE_MODE", "private_dir", "private_file", "private_sqlite", "tighten"]

FILE_MODE = 0o600
DIR_MODE = 0o700
_SQLITE_SIDES = ("-wal", "-shm", "-journal")


def private_dir(path: Path) -> Path:
    """``path`` and every missing parent created with mode 0700 (an existing directory is tightened)."""
    missing: list[Path] = []
    at = path
    while not at.exists():
        missing.append(at)
        if at.parent == at:
            break
        at = at.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):
            d.mkdir(mode=DIR_MODE)
        os.chmod(d, DIR_MODE)  # mkdir's mode is masked by the umask
    tighten(path, DIR_MODE)
    return path


def tighten(path: Path, mode: int) -> None:
    """Take group and other permissions away from ``path`` if it has any (and it is ours to change); ``mode`` is
    what it gets then."""
    try:
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            os.chmod(path, mode)
    except (FileNotFoundError, PermissionError):
        pass


def private_file(path: Path) -> Path:
    """``path`` created empty with mode 0600 in a 0700 directory if it does not exist; tightened if it does."""
    private_dir(path.parent)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, FILE_MODE)
    os.close(fd)
    tighten(path, FILE_MODE)
    return path


def private_sqlite(path: Path) -> Path:
    """A SQLite database file (and any ``-wal``, ``-shm`` or ``-journal`` beside it) private to its owner."""
    private_file(path)
    for side in _SQLITE_SIDES:
        tighten(Path(f"{path}{side}"), FILE_MODE)
    return path
