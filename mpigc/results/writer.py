"""Writing result files: runs added to a file, rows buffered and appended on flush."""
from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

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
        raise InputError("--out", f"{p} exists and cannot be opened as HDF5 ({exc})") from exc
    if not ours:
        raise InputError("--out", f"{p} is an HDF5 file not written by mpigc (no /runs group)")


def _check_name(name: str) -> None:
    """Reject run names HDF5 cannot hold as one group name."""
    if not isinstance(name, str) or not name.strip() or "/" in name or name in (".", ".."):
        raise InputError("--name", f"invalid run name {name!r} (non-empty, no '/')")


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

    Rows are buffered in memory and written on ``flush()``; each flush opens
    the file in append mode, appends to chunked resizable 1-D compound datasets
    (``maxshape=(None,)``) and closes it, so a killed job leaves a consistent,
    readable file with every flushed row.

    Parameters
    ----------
    path : str or os.PathLike
        The file; it is created (with its directory) by the first ``new_run``.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._writers: list[RunWriter] = []

    def new_run(self, name: str, attrs: dict, tables: Iterable[str] = ("rounds",)) -> RunWriter:
        """Create ``/runs/<unique name>`` with ``attrs`` and empty ``tables``; return its writer.

        ``name`` gets ``-2``, ``-3``... appended if a run of that name exists.
        Attribute values may be str, int, float, bool, None (stored as ``""``),
        or dicts/lists (stored as JSON text, decoded by ``read_runs``).
        """
        _check_name(name)
        tables = list(tables)
        unknown = [t for t in tables if t not in TABLES]
        if unknown:
            raise ValueError(f"unknown tables {unknown}; known: {sorted(TABLES)}")
        encoded, json_keys = _encode_attrs(dict(attrs))
        if self.path.exists():
            check_writable(self.path)        # never append to someone else's file
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(self.path, "a") as f:
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
        writer = RunWriter(self, unique, tables)
        self._writers.append(writer)
        return writer

    def flush(self) -> None:
        """Flush every run writer created by this file."""
        for writer in self._writers:
            writer.flush()


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
    _rows: dict[str, list[np.ndarray]] = field(default_factory=dict, repr=False)
    _attrs: dict[str, Any] = field(default_factory=dict, repr=False)

    def append(self, table: str, rows: np.ndarray) -> None:
        """Buffer ``rows`` (a structured array of ``TABLES[table]`` dtype, or convertible)."""
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}; known: {sorted(TABLES)}")
        arr = _as_rows(table, rows)
        if arr.size:
            self._rows.setdefault(table, []).append(arr)

    def pending(self, table: str = "rounds") -> int:
        """Return the number of buffered, not yet flushed rows of ``table``."""
        return sum(a.size for a in self._rows.get(table, []))

    def set_attrs(self, **attrs: Any) -> None:
        """Set run attributes (e.g. summary statistics), written on the next flush."""
        _encode_attrs(attrs)      # fail now, not at flush time
        self._attrs.update(attrs)

    def flush(self) -> None:
        """Append every buffered row and attribute to the file, then close it."""
        if not self._rows and not self._attrs:
            return
        encoded, json_keys = _encode_attrs(self._attrs)
        with h5py.File(self.file.path, "a") as f:
            group = f["runs"][self.name]
            for table, chunks in self._rows.items():
                data = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
                ds = group[table] if table in group else _create_table(group, table)
                n = ds.shape[0]
                ds.resize((n + data.size,))
                ds[n:] = data
            if encoded:
                _write_attrs(group, encoded, json_keys)
        self._rows.clear()
        self._attrs.clear()


# ----------------------------------------------------------------------------- reading

