"""Writing result files: runs added to a file, rows buffered and appended on flush (see ``ResultFile``)."""
from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from mpigc import interrupts
from mpigc.errors import InputError
from mpigc.results.schema import (_MARKER, CHUNK_ROWS, DEFAULTS, SCHEMA_VERSION, TABLES, _encode_attrs,
                                  _is_ours, _write_attrs)


def check_writable(path: str | os.PathLike) -> None:
    """Check that results can be written to ``path``; call before any run starts.

    Raises
    ------
    InputError
        With key ``--out`` if the directory is missing or not writable, or the
        file exists but is not an mpigc HDF5 result file (or cannot be written).
    """
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.exists():
        raise InputError("--out", f"directory {parent} does not exist")
    if not parent.is_dir():
        raise InputError("--out", f"{parent} is not a directory")
    if not p.exists():
        if not os.access(parent, os.W_OK | os.X_OK):
            raise InputError("--out", f"directory {parent} is not writable")
        return
    if p.is_dir():
        raise InputError("--out", f"{p} is a directory")
    if not os.access(p, os.R_OK | os.W_OK):
        raise InputError("--out", f"{p} exists and is not writable")
    try:
        if not h5py.is_hdf5(p):
            raise InputError("--out", f"{p} exists and is not an HDF5 file")
        with h5py.File(p, "r") as f:
            ours = _is_ours(f)
    except OSError as exc:
        if "lock" in str(exc):  # an ``mpigc run`` holds its file open (and locked) until it ends
            raise InputError("--out", f"{p} is open for writing by another process (another job writing "
                                      "there?); choose another --out or wait for it to end") from exc
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


def _unique_name(runs: h5py.Group, name: str) -> str:
    """Return ``name``, or ``name-2``, ``name-3``... if it is taken in ``runs``."""
    if name not in runs:
        return name
    k = 2
    while f"{name}-{k}" in runs:
        k += 1
    return f"{name}-{k}"


def _as_rows(table: str, rows: Any) -> np.ndarray:
    """Convert ``rows`` to a 1-D array of the table's dtype, filling optional fields."""
    dtype = TABLES[table]
    if isinstance(rows, np.void):
        rows = np.array([rows])
    if not (isinstance(rows, np.ndarray) and rows.dtype.names is not None):
        return np.atleast_1d(np.array(rows, dtype=dtype))   # e.g. a list of tuples
    flat = rows.reshape(-1)
    if flat.dtype == dtype:
        return flat.copy()
    extra = set(flat.dtype.names) - set(dtype.names)
    if extra:
        raise ValueError(f"{table}: unknown fields {sorted(extra)}")
    out = np.empty(flat.size, dtype=dtype)
    for fname in dtype.names:
        if fname in flat.dtype.names:
            out[fname] = flat[fname]
        elif fname in DEFAULTS[table]:
            out[fname] = DEFAULTS[table][fname]
        else:
            raise ValueError(f"{table}: missing field {fname!r}")
    return out


class ResultFile:
    """Writer for one HDF5 file holding several runs.

    Rows are buffered in memory and written on ``flush()``: appended to
    chunked resizable 1-D compound datasets (``maxshape=(None,)``). Between
    two writes the file is never touched, so a killed job leaves a
    consistent, readable file with every row written so far.

    By default each write opens the file in append mode and closes it again
    (what ``simulate``, writing 1000 rounds at a time, wants). ``mpigc run``
    writes a little every round and passes ``keep_open=True`` and
    ``min_interval``: the file stays open from the first ``new_run`` to
    ``close()`` (each write ends with an HDF5 flush to the OS, so what was
    written survives a killed job), and ``RunWriter.flush`` writes at most
    every ``min_interval`` seconds. Reopening the file for every round cost
    rank 0 about 1-2 ms per round on the anchor configuration; a write a
    second costs nothing measurable, and a killed job loses at most that
    second of rounds (an interrupted one none: ``close()`` writes the rest).
    Holding the file open also means no reader can make a write fail
    (HDF5's lock is taken once, when the run starts).

    Parameters
    ----------
    path : str or os.PathLike
        The file; it is created (with its directory) by the first ``new_run``.
    keep_open : bool
        Keep the file open between writes until ``close()``.
    min_interval : float
        Seconds between two writes of a run writer's ``flush()``; 0 writes at
        every call. ``flush(force=True)``, ``ResultFile.flush`` and ``close``
        always write.
    """

    def __init__(self, path: str | os.PathLike, *, keep_open: bool = False, min_interval: float = 0.0) -> None:
        self.path = Path(path)
        self.keep_open = bool(keep_open)
        self.min_interval = float(min_interval)
        self._writers: list[RunWriter] = []
        self._handle: h5py.File | None = None

    @property
    def writers(self) -> list[RunWriter]:
        """The run writers made by this file, oldest first."""
        return list(self._writers)

    @contextmanager
    def _open(self, check: bool = False) -> Iterator[h5py.File]:
        """The file, open for appending: the kept handle, or one opened for this block only."""
        if self._handle is not None:
            yield self._handle
            return
        if check and self.path.exists():
            check_writable(self.path)        # never append to someone else's file
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = h5py.File(self.path, "a")
        if self.keep_open:
            self._handle = f
            yield f
            return
        try:
            yield f
        finally:
            f.close()

    def new_run(self, name: str, attrs: dict, tables: Iterable[str] = ("rounds",)) -> RunWriter:
        """Create ``/runs/<unique name>`` with ``attrs`` and empty ``tables``; return its writer.

        ``name`` gets ``-2``, ``-3``... appended if a run of that name exists.
        Attribute values may be str, int, float, bool, None (stored as ``""``),
        or dicts/lists (stored as JSON text, decoded by ``read_runs``).
        """
        check_run_name(name)
        tables = list(tables)
        unknown = [t for t in tables if t not in TABLES]
        if unknown:
            raise ValueError(f"unknown tables {unknown}; known: {sorted(TABLES)}")
        encoded, json_keys = _encode_attrs(dict(attrs))
        with interrupts.deferred(), self._open(check=True) as f:
            if _MARKER not in f.attrs:
                f.attrs[_MARKER] = SCHEMA_VERSION
            if "runs" not in f:
                f.create_group("runs", track_order=True)    # iterate runs in creation order
            runs = f["runs"]
            unique = _unique_name(runs, name)
            group = runs.create_group(unique)
            _write_attrs(group, encoded, json_keys)
            for table in tables:
                _create_table(group, table)
            f.flush()
        writer = RunWriter(self, unique, tables)
        self._writers.append(writer)
        return writer

    def flush(self) -> None:
        """Write everything every run writer of this file has buffered."""
        for writer in self._writers:
            writer.flush(force=True)

    def close(self) -> None:
        """Write everything buffered and close the file (safe to call twice)."""
        try:
            self.flush()
        finally:
            if self._handle is not None:
                handle, self._handle = self._handle, None
                handle.close()

    def __enter__(self) -> ResultFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _create_table(group: h5py.Group, table: str) -> h5py.Dataset:
    """Create an empty, chunked, resizable table dataset in a run group."""
    return group.create_dataset(table, shape=(0,), maxshape=(None,), dtype=TABLES[table],
                                chunks=(CHUNK_ROWS,))


@dataclass
class RunWriter:
    """Buffered writer of one run's tables and attributes (made by ``ResultFile.new_run``)."""

    file: ResultFile
    name: str
    tables: list[str]
    written: dict[str, int] = field(default_factory=dict)
    _rows: dict[str, list[np.ndarray]] = field(default_factory=dict, repr=False)
    _attrs: dict[str, Any] = field(default_factory=dict, repr=False)
    _last: float = field(default_factory=time.monotonic, repr=False)

    def append(self, table: str, rows: np.ndarray) -> None:
        """Buffer ``rows`` (a structured array of ``TABLES[table]`` dtype, or convertible)."""
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}; known: {sorted(TABLES)}")
        arr = _as_rows(table, rows)
        if arr.size:
            self._rows.setdefault(table, []).append(arr)

    def pending(self, table: str = "rounds") -> int:
        """Return the number of buffered, not yet written rows of ``table``."""
        return sum(a.size for a in self._rows.get(table, []))

    def set_attrs(self, **attrs: Any) -> None:
        """Set run attributes (e.g. summary statistics), written on the next write."""
        _encode_attrs(attrs)      # fail now, not at flush time
        self._attrs.update(attrs)

    def flush(self, force: bool = False) -> None:
        """Append every buffered row and attribute to the file.

        With the file's ``min_interval`` > 0 this writes only if that many
        seconds have passed since this writer's last write (or ``force``).
        The write is never torn by SIGTERM/SIGINT (see ``mpigc.interrupts``).
        """
        if not self._rows and not self._attrs:
            return
        now = time.monotonic()
        if not force and now - self._last < self.file.min_interval:
            return
        encoded, json_keys = _encode_attrs(self._attrs)
        with interrupts.deferred(), self.file._open() as f:
            group = f["runs"][self.name]
            for table, chunks in self._rows.items():
                data = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
                ds = group[table] if table in group else _create_table(group, table)
                n = ds.shape[0]
                ds.resize((n + data.size,))
                ds[n:] = data
                self.written[table] = n + data.size
            if encoded:
                _write_attrs(group, encoded, json_keys)
            f.flush()
            self._rows.clear()
            self._attrs.clear()
        self._last = now


def mark_interrupted(path: str | os.PathLike, signal_name: str, before: Iterable[str]) -> str | None:
    """Mark the newest run of ``path`` not named in ``before`` as interrupted by ``signal_name``.

    For commands whose writer is out of reach when a signal stops them
    (``mpigc simulate``): ``before`` lists the runs the file had when the
    command started. Returns the marked run's name, or None if there is
    none (no file, or the signal came before the first run was created).
    """
    p = Path(path)
    if not p.exists():
        return None
    known = set(before)
    with interrupts.deferred(), h5py.File(p, "a") as f:
        runs = f.get("runs")
        new = [name for name in (runs or {}) if name not in known]
        if not new:
            return None
        encoded, json_keys = _encode_attrs({"interrupted": signal_name})
        _write_attrs(runs[new[-1]], encoded, json_keys)
        return new[-1]
