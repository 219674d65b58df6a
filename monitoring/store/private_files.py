"""Files only their owner can read: everything ltfu creates holds patient data or secrets.

    private_umask()            0o077 for the whole process (the CLI and `ltfu serve` set it first,
                               so reports, exports, backups and the dashboard's files inherit it)
    private_dir(path)          mkdir -p; the folder (and the parents it creates) 0700
    private_file(path)         create empty when missing; 0600 either way
    tighten(path)              0600 / 0700 on an existing file or folder that we own
    write_private_text(p, t)   a report or export: its folder made when missing, the file 0600

Modes are set explicitly as well as through the umask, because a library caller (the dashboard
started by `streamlit run`, tests) may run under any umask.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700
PRIVATE_UMASK = 0o077


def private_umask() -> int:
    """Make every later file 0600 and folder 0700 at most; returns the previous umask."""
    return os.umask(PRIVATE_UMASK)


def tighten(path: str | Path) -> None:
    """Owner-only mode on an existing file or folder; silently skips what we do not own."""
    path = Path(path)
    try:
        info = path.stat()
        if info.st_uid != os.getuid():
            return
        mode = DIR_MODE if stat.S_ISDIR(info.st_mode) else FILE_MODE
        if stat.S_IMODE(info.st_mode) != mode:
            path.chmod(mode)
    except OSError:
        return


def private_dir(path: str | Path) -> Path:
    """Create the folder (and missing parents) as 0700; an existing folder keeps its mode
    unless it was created here."""
    path = Path(path)
    missing: list[Path] = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    for created in missing:
        tighten(created)
    return path


def private_file(path: str | Path) -> Path:
    """The file, created empty when missing, with mode 0600."""
    path = Path(path)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        tighten(path)
        return path
    try:
        os.fchmod(descriptor, FILE_MODE)  # the umask may have removed bits, never added
    finally:
        os.close(descriptor)
    return path


def write_private_text(path: str | Path, text: str) -> Path:
    path = Path(path)
    private_dir(path.parent)
    private_file(path)
    path.write_text(text, encoding="utf-8")
    return path


def write_private_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` to a file that is 0600 from its first byte, in a 0700 folder."""
    path = Path(path)
    private_dir(path.parent)
    private_file(path)
    path.write_bytes(data)
    return path
