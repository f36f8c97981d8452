"""Checks before a result file is written: the output path and run names (one line each, exit 2)."""
from __future__ import annotations

import os
import unicodedata
from pathlib import Path

import h5py

from mpigc.errors import InputError
from mpigc.results.lock import FileBusyError, describe, holder, target
from mpigc.results.schema import _is_ours


def check_writable(path: str | os.PathLike) -> None:
    """Check that results can be written to ``path``; call before any run starts.

    Raises
    ------
    InputError
        With key ``--out`` if the directory is missing or not writable, the
        file exists but is not an mpigc HDF5 result file (or cannot be
        written), or another process is writing it (:class:`FileBusyError`).
    """
    p = target(path)       # through a symlink: its target is the file written and locked
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.exists():
        raise InputError("--out", f"directory {parent} does not exist")
    if not parent.is_dir():
        raise InputError("--out", f"{parent} is not a directory")
    if p.is_dir():
        raise InputError("--out", f"{p} is a directory")
    check_name_length(p)
    busy = holder(p)
    if busy is not None:
        raise FileBusyError("--out", f"{p} is open for writing by another process ({describe(busy)}); "
                                     "choose another --out or wait for it to end")
    _check_file(p, parent)


#: bytes the longest name mpigc makes beside a result file adds to its name: the unswitched side file
#: ``.<stem>.running<k><suffix>.new`` (13 + the digits of k, allowed up to 7)
NAME_EXTRA = 20


def check_name_length(path: str | os.PathLike) -> None:
    """Refuse a result file name too long for its lock, side and commit files (before anything is created).

    Raises
    ------
    InputError
        With key ``--out`` if the name plus :data:`NAME_EXTRA` bytes exceeds
        the directory's maximum name length (usually 255 bytes).
    """
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    try:
        limit = os.pathconf(parent, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    size = len(os.fsencode(p.name))
    if size + NAME_EXTRA > limit:
        raise InputError("--out", f"file name of {size} bytes is too long: mpigc writes files named like it with "
                                  f"up to {NAME_EXTRA} more bytes beside it, and names here hold {limit} bytes "
                                  f"(use at most {limit - NAME_EXTRA})")


def _check_file(p: Path, parent: Path) -> None:
    """Return the checks of ``check_writable`` but the lock's (which its own holder would fail)."""
    if not os.access(parent, os.W_OK | os.X_OK):   # commits create a file next to it
        raise InputError("--out", f"directory {parent} is not writable")
    if not p.exists():
        return
    if not os.access(p, os.R_OK | os.W_OK):
        raise InputError("--out", f"{p} exists and is not writable")
    try:
        if not h5py.is_hdf5(p):
            raise InputError("--out", f"{p} exists and is not an HDF5 file")
        with h5py.File(p, "r", locking=False) as f:
            ours = _is_ours(f)
    except OSError as exc:
        raise InputError("--out", f"{p} exists and cannot be opened as HDF5 ({exc})") from exc
    if not ours:
        raise InputError("--out", f"{p} is an HDF5 file not written by mpigc (no /runs group)")


def check_run_name(name: str, key: str = "--name") -> None:
    """Reject run names HDF5 cannot hold as one group name.

    Raises
    ------
    InputError
        With ``key`` if ``name`` is empty or blank, contains '/' or a control
        character (NUL, newline, tab, escape, U+007F-U+009F), or is ``.`` or ``..``.
    """
    if not isinstance(name, str) or not name.strip() or "/" in name or name in (".", ".."):
        raise InputError(key, f"invalid run name {name!r} (non-empty, no '/')")
    control = [c for c in name if unicodedata.category(c) == "Cc"]
    if control:
        raise InputError(key, f"invalid run name {name!r}: control character U+{ord(control[0]):04X} "
                              "(names are printed in tables, one per line)")
