"""Checks before a result file is written: the output path and run names (one line each, exit 2)."""
from __future__ import annotations

import os
from pathlib import Path

import h5py

from mpigc.errors import InputError
from mpigc.results.lock import FileBusyError, describe, holder
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
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.exists():
        raise InputError("--out", f"directory {parent} does not exist")
    if not parent.is_dir():
        raise InputError("--out", f"{parent} is not a directory")
    if p.is_dir():
        raise InputError("--out", f"{p} is a directory")
    busy = holder(p)
    if busy is not None:
        raise FileBusyError("--out", f"{p} is open for writing by another process ({describe(busy)}); "
                                     "choose another --out or wait for it to end")
    _check_file(p, parent)


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
        With ``key`` if ``name`` is empty or blank, contains '/' or a NUL
        character, or is ``.`` or ``..``.
    """
    if not isinstance(name, str) or not name.strip() or "/" in name or "\0" in name or name in (".", ".."):
        raise InputError(key, f"invalid run name {name!r} (non-empty, no '/', no NUL)")
