"""Side files that prove who writes them, that their writer lives, and that their rows are whole.

A side file (``<stem>.running<k><suffix>``, see :mod:`mpigc.results.store`)
holds one run in progress. Besides the run it carries, from the moment it
appears under its name:

* ``mpigc_schema`` (root attribute): the result schema version;
* ``mpigc_side`` (root attribute): its writer's identity as JSON text:
  ``host``, ``pid``, ``started`` (ISO 8601 UTC), ``token`` (random, unique
  per side file) and ``result`` (the name of the result file it belongs to);
* ``mpigc_ledger`` (root dataset, ``uint64``, shape ``(len(TABLES), 2)``):
  per table of :data:`~mpigc.results.schema.TABLES`, in that order, the rows
  written so far and the CRC-32 of their bytes. The writer updates it after
  each flush's rows are in the file, so it never counts a row that is not.

Its writer also holds a shared ``flock`` on the side file for its whole
life (the kernel drops it when the process ends, however it ends). Another
process merges a side file only if it can take an exclusive lock on it (or,
on a file system without ``flock``, if the identity names a dead process on
this host); a locking HDF5 reader holding it open also defers the merge.
:func:`verify` says what a side file is: ours and whole, damaged
(why), from another schema version, or not mpigc's at all.
"""
from __future__ import annotations

import datetime as _dt
import errno
import fcntl
import json
import os
import secrets
import socket
import zlib
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from mpigc.results.schema import _MARKER, SCHEMA_VERSION, TABLES

IDENTITY = "mpigc_side"      # root attribute: the writer's identity (JSON)
LEDGER = "mpigc_ledger"      # root dataset: rows and CRC-32 per table
_NO_FLOCK = (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL)
_ORDER = tuple(TABLES)       # ledger row of each table

#: what :func:`verify` found
HEALTHY, DAMAGED, OTHER_SCHEMA, FOREIGN = "healthy", "damaged", "other schema", "foreign"


def identity(result: Path) -> dict[str, object]:
    """Return a new side file's identity record (see the module docstring)."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "token": secrets.token_hex(8),
            "started": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"), "result": result.name}


def stamp(f: h5py.File, record: dict[str, object]) -> h5py.Dataset:
    """Write the identity and an empty ledger into a new side file (before SWMR starts); return the ledger."""
    f.attrs[_MARKER] = SCHEMA_VERSION
    f.attrs[IDENTITY] = json.dumps(record)
    return f.create_dataset(LEDGER, data=np.zeros((len(_ORDER), 2), dtype=np.uint64))


class Ledger:
    """The writer's running row counts and checksums of one side file."""

    def __init__(self, dataset: h5py.Dataset) -> None:
        self.dataset = dataset
        self.state = np.zeros((len(_ORDER), 2), dtype=np.uint64)

    def add(self, table: str, rows: np.ndarray) -> None:
        """Count ``rows`` (just written to ``table``) in the ledger's state."""
        i = _ORDER.index(table)
        self.state[i, 0] += rows.size
        self.state[i, 1] = zlib.crc32(np.ascontiguousarray(rows).tobytes(), int(self.state[i, 1]))

    def write(self) -> None:
        """Store the state in the file (call after the rows are flushed, then flush again)."""
        self.dataset[...] = self.state


def claim(path: Path) -> int:
    """Open ``path`` and hold a shared ``flock`` on it; return the descriptor (closing it releases).

    Shared, not exclusive: HDF5 readers that lock files (h5py's default)
    take a shared lock too and must still open a running side file. Anyone
    who would merge it asks for an exclusive lock, which either kind refuses.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno not in _NO_FLOCK:
            os.close(fd)
            raise
    return fd


def take_orphan(path: Path) -> int | None:
    """Lock a side file whose writer is gone; return the descriptor, or None if its writer lives.

    Without ``flock`` support the identity decides: a dead pid on this host
    is gone; a writer on another host is presumed alive (its file stays).
    """
    fd, state = _try_lock(path)
    if state == "locked":
        return fd
    if state == "no-flock" and not _writer_alive(path, missing=True):
        return fd
    if fd is not None:
        os.close(fd)
    return None


def is_live(path: Path) -> bool:
    """Whether a side file's writer holds it now (or a locking HDF5 reader has it open: counted alive)."""
    fd, state = _try_lock(path)
    if fd is not None:
        os.close(fd)
    return state == "held" or (state == "no-flock" and _writer_alive(path, missing=False))


def _try_lock(path: Path) -> tuple[int | None, str]:
    """Open ``path`` and try an exclusive flock: (fd, "locked"), (None, "held"), (fd, "no-flock") or (None, "gone")."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None, "gone"
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return fd, "locked"
    except BlockingIOError:
        os.close(fd)
        return None, "held"
    except OSError as exc:
        if exc.errno not in _NO_FLOCK:
            os.close(fd)
            raise
        return fd, "no-flock"


def _writer_alive(path: Path, missing: bool) -> bool:
    """Without flock, the identity decides: alive unless a dead pid on this host (``missing``: no record)."""
    record = read_identity(path)
    if record is None:
        return missing
    return record.get("host") != socket.gethostname() or _pid_alive(record.get("pid"))


def _pid_alive(pid: object) -> bool:
    try:
        os.kill(int(pid), 0)                   # type: ignore[arg-type]
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, TypeError, OverflowError):
        return True
    return True


def same_file(path: Path, fd: int) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (not removed, not replaced)."""
    try:
        a, b = os.stat(path), os.fstat(fd)
    except OSError:
        return False
    return (a.st_ino, a.st_dev) == (b.st_ino, b.st_dev)


def _open(path: Path) -> h5py.File:
    """Open a side file for reading: plainly if its writer closed it, else in SWMR mode."""
    try:
        return h5py.File(path, "r", locking=False)
    except OSError:
        return h5py.File(path, "r", swmr=True, locking=False)


def read_identity(path: Path) -> dict | None:
    """Return a side file's identity record, or None if it has none (or cannot be read)."""
    try:
        with _open(path) as f:
            return _identity(f)
    except (OSError, ValueError, KeyError, RuntimeError):
        return None


def _identity(f: h5py.File) -> dict | None:
    raw = f.attrs.get(IDENTITY)
    if raw is None:
        return None
    try:
        record = json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))
    except ValueError:
        return None
    return record if isinstance(record, dict) and "token" in record else None


@dataclass(frozen=True)
class Verdict:
    """What a side file is: ``kind`` (healthy, damaged, other schema, foreign) and why; confirmed rows."""

    kind: str
    reason: str = ""
    rows: dict[str, int] | None = None     # healthy: rows per table the ledger confirms

    @property
    def healthy(self) -> bool:
        """Whether the side file may be merged."""
        return self.kind == HEALTHY


_READ_ERRORS = (OSError, KeyError, ValueError, TypeError, RuntimeError)


def verify(path: Path) -> Verdict:
    """Check a side file: made by mpigc at this schema, one run, every counted row there and unchanged.

    A table may hold more rows than the ledger counts (a job killed between
    writing rows and the ledger): only the counted rows are confirmed.
    """
    try:
        if not h5py.is_hdf5(path):
            return Verdict(FOREIGN, "not an HDF5 file") if path.stat().st_size else Verdict(DAMAGED, "empty file")
        f = _open(path)
    except _READ_ERRORS as exc:
        return Verdict(DAMAGED, f"unreadable ({_why(exc)})")
    try:
        with f:
            return _verify_open(f)
    except _READ_ERRORS as exc:
        return Verdict(DAMAGED, f"unreadable ({_why(exc)})")


def _verify_open(f: h5py.File) -> Verdict:
    if _MARKER not in f.attrs:
        return Verdict(FOREIGN, "no mpigc_schema attribute: not written by mpigc")
    version = f.attrs[_MARKER]
    if _identity(f) is None:
        return Verdict(FOREIGN, "no writer identity (mpigc_side): not a side file of this mpigc")
    if int(version) != SCHEMA_VERSION:
        return Verdict(OTHER_SCHEMA, f"schema version {version}, this mpigc writes {SCHEMA_VERSION}")
    ledger = f.get(LEDGER)
    if not isinstance(ledger, h5py.Dataset) or ledger.shape != (len(_ORDER), 2):
        return Verdict(DAMAGED, "its row ledger is missing or malformed")
    counts = np.asarray(ledger[()], dtype=np.uint64)
    runs = f.get("runs")
    names = list(runs) if isinstance(runs, h5py.Group) else []
    if len(names) != 1 or not isinstance(runs[names[0]], h5py.Group):
        return Verdict(DAMAGED, f"{len(names)} runs (a side file holds one)")
    group = runs[names[0]]
    confirmed: dict[str, int] = {}
    for i, table in enumerate(_ORDER):
        want, crc = int(counts[i, 0]), int(counts[i, 1])
        ds = group.get(table)
        have = ds.shape[0] if isinstance(ds, h5py.Dataset) and ds.ndim == 1 else 0
        if have < want:
            return Verdict(DAMAGED, f"truncated: table {table!r} holds {have} of its {want} rows")
        if ds is None:
            continue
        rows = np.ascontiguousarray(ds[:want]) if want else np.empty(0, ds.dtype)
        if zlib.crc32(rows.tobytes()) != crc:
            return Verdict(DAMAGED, f"checksum of table {table!r} does not match its {want} rows (corrupted)")
        confirmed[table] = want
    return Verdict(HEALTHY, rows=confirmed)


def _why(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:160]


def set_aside(path: Path) -> Path:
    """Rename a damaged side file ``<stem>.running<k><suffix>`` to ``<stem>.damaged<k><suffix>`` (never delete)."""
    target = path.with_name(path.name.replace(".running", ".damaged", 1))
    k = 2
    while target.exists():
        target = path.with_name(path.name.replace(".running", ".damaged", 1) + f".{k}")
        k += 1
    os.replace(path, target)
    return target
