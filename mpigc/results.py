"""Every HDF5 read and write of mpigc: the result schema, provenance, user datasets.

This is the only module that imports h5py. A result file holds runs under
``/runs/<name>``; each run keeps its parameters as attributes and its tables
(``rounds``, ``events``, ``workers``, ``jobs``) as chunked, resizable 1-D
compound datasets. Writers buffer rows in memory and append them on
``flush()``, reopening and closing the file each time, so a killed job leaves a
readable file holding every flushed row.

Bookkeeping attributes: the root's ``mpigc_schema`` (schema version) marks a
file as ours; a run's ``json_attrs`` lists the attributes stored as JSON text
(dicts and lists), which ``read_runs`` decodes.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

import mpigc
from mpigc.errors import InputError

ROUNDS_DTYPE = np.dtype([
    ("round", "i8"), ("latency", "f8"), ("status", "i1"), ("messages", "i4"),
    ("chunks_done", "i4"), ("coef_error", "f8"), ("grad_error", "f8"), ("loss", "f8"),
    ("waitout", "i1"), ("level", "i2"), ("cond", "f8"),
])
EVENTS_DTYPE = np.dtype([
    ("round", "i8"), ("job", "i8"), ("worker", "i4"), ("task", "i4"), ("chunk", "i4"),
    ("t_arrive", "f8"), ("nbytes", "i8"), ("stale", "?"), ("used", "?"),
])
WORKERS_DTYPE = np.dtype([
    ("round", "i8"), ("worker", "i4"), ("busy", "f8"), ("injected", "f8"),
    ("tasks_done", "i4"), ("failed", "?"), ("overrun", "f8"),
])
JOBS_DTYPE = np.dtype([
    ("job", "i8"), ("model", "i4"), ("round_done", "i8"), ("t_done", "f8"), ("loss", "f8"),
])
TABLES: dict[str, np.dtype] = {
    "rounds": ROUNDS_DTYPE, "events": EVENTS_DTYPE, "workers": WORKERS_DTYPE, "jobs": JOBS_DTYPE,
}
# Values for fields a caller may leave out (the extra fields beyond the published schema).
DEFAULTS: dict[str, dict[str, Any]] = {
    "rounds": {"level": -1, "cond": np.nan},
    "events": {},
    "workers": {"overrun": 0.0},
    "jobs": {},
}

SCHEMA_VERSION = 1
CHUNK_ROWS = 4096
_MARKER = "mpigc_schema"     # root attribute that identifies our files
_JSON_KEYS = "json_attrs"    # run attribute listing the attributes stored as JSON text


def provenance(backend: str) -> dict[str, str]:
    """Return the provenance attributes of a run made on this host with ``backend``.

    Parameters
    ----------
    backend : str
        ``"mpi"`` or ``"sim"``.

    Returns
    -------
    dict
        mpigc_version, created (ISO 8601 UTC), host, python, numpy, h5py, backend.
        MPI runs add ``mpi_library`` and ``hosts`` themselves.
    """
    return {
        "mpigc_version": mpigc.__version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "h5py": h5py.__version__,
        "backend": backend,
    }


# ----------------------------------------------------------------------------- attributes

def _encode_attrs(attrs: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Convert attribute values to HDF5-storable ones; return them and the JSON-encoded keys."""
    out: dict[str, Any] = {}
    json_keys: list[str] = []
    for key, value in attrs.items():
        if not isinstance(key, str) or not key or key == _JSON_KEYS:
            raise ValueError(f"invalid run attribute name {key!r}")
        if isinstance(value, np.generic):
            value = value.item()
        if value is None:
            out[key] = ""
        elif isinstance(value, (str, bool, int, float)):
            out[key] = value
        elif isinstance(value, (dict, list, tuple, np.ndarray)):
            if isinstance(value, np.ndarray):
                value = value.tolist()
            try:
                out[key] = json.dumps(value, default=_json_default)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"run attribute {key!r} cannot be JSON-encoded: {exc}") from exc
            json_keys.append(key)
        else:
            raise ValueError(f"run attribute {key!r} has unsupported type {type(value).__name__}")
    return out, json_keys


def _json_default(obj: Any) -> Any:
    """Encode numpy scalars and arrays nested in JSON attributes."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _write_attrs(group: h5py.Group, encoded: dict[str, Any], json_keys: list[str]) -> None:
    """Write encoded attributes and merge the group's list of JSON-encoded keys."""
    old = set(json.loads(_plain(group.attrs.get(_JSON_KEYS, "[]"))))
    old -= set(encoded)            # a key rewritten as a plain value is no longer JSON
    old |= set(json_keys)
    for key, value in encoded.items():
        group.attrs[key] = value
    group.attrs[_JSON_KEYS] = json.dumps(sorted(old))


def _read_attrs(group: h5py.Group) -> dict[str, Any]:
    """Read a run's attributes, decoding JSON-encoded ones."""
    json_keys = set(json.loads(_plain(group.attrs.get(_JSON_KEYS, "[]"))))
    out: dict[str, Any] = {}
    for key, value in group.attrs.items():
        if key == _JSON_KEYS:
            continue
        value = _plain(value)
        if key in json_keys and isinstance(value, str):
            value = json.loads(value)
        out[key] = value
    return out


def _plain(value: Any) -> Any:
    """Turn an attribute value read by h5py into a plain Python value."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.generic):
        return value.item()
    return value


# ----------------------------------------------------------------------------- files

def _is_ours(f: h5py.File) -> bool:
    """Tell whether an open HDF5 file is an mpigc result file."""
    return _MARKER in f.attrs or isinstance(f.get("runs"), h5py.Group)


def _open_read(path: str | os.PathLike) -> h5py.File:
    """Open an existing HDF5 file for reading or raise an InputError naming it."""
    key = os.fspath(path)
    if not os.path.exists(key):
        raise InputError(key, "no such file")
    if os.path.isdir(key):
        raise InputError(key, "is a directory, not an HDF5 file")
    try:
        if not h5py.is_hdf5(key):
            raise InputError(key, "not an HDF5 file")
        return h5py.File(key, "r")
    except OSError as exc:
        raise InputError(key, f"cannot be read as HDF5 ({exc})") from exc


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

@dataclass
class RunData:
    """One run read back from a result file."""

    name: str
    attrs: dict
    tables: dict[str, np.ndarray]


def read_runs(path: str | os.PathLike, names: Sequence[str] | None = None) -> list[RunData]:
    """Read runs (all, in creation order, or ``names`` in that order) from a result file.

    Raises
    ------
    InputError
        Keyed by the file name if it is missing, unreadable, not an mpigc
        result file, or lacks one of ``names``.
    """
    key = os.fspath(path)
    with _open_read(path) as f:
        if not _is_ours(f):
            raise InputError(key, "not an mpigc result file (no /runs group)")
        runs = f["runs"] if "runs" in f else {}
        available = list(runs)
        if names is None:
            names = available
        missing = [n for n in names if n not in runs]
        if missing:
            raise InputError(key, f"no run named {', '.join(map(repr, missing))} "
                                  f"(runs: {', '.join(available) or 'none'})")
        out = []
        for name in names:
            group = runs[name]
            tables = {t: ds[()] for t, ds in group.items() if isinstance(ds, h5py.Dataset)}
            out.append(RunData(name=name, attrs=_read_attrs(group), tables=tables))
    return out


def read_matrix(path: str | os.PathLike, dataset: str) -> np.ndarray:
    """Read a whole dataset (e.g. ``X``, ``y`` or a trace) from an HDF5 file.

    Raises
    ------
    InputError
        Keyed by the file name if it is missing or unreadable or has no such dataset.
    """
    key = os.fspath(path)
    with _open_read(path) as f:
        obj = f.get(dataset)
        if not isinstance(obj, h5py.Dataset):
            what = "is a group, not a dataset" if obj is not None else "does not exist"
            known = ", ".join(_datasets(f))
            raise InputError(key, f"dataset {dataset!r} {what} (datasets: {known})")
        return np.asarray(obj[()])


def read_rows(path: str | os.PathLike, dataset: str, start: int, stop: int) -> np.ndarray:
    """Read rows ``start:stop`` of a dataset without loading the rest.

    Rows past the end are cut off as in numpy slicing, so ``start = stop = 0``
    gives an empty array with the dataset's trailing shape.

    Raises
    ------
    InputError
        Keyed by the file name if it is missing or unreadable, has no such
        dataset, or the dataset is a scalar.
    """
    key = os.fspath(path)
    with _open_read(path) as f:
        obj = f.get(dataset)
        if not isinstance(obj, h5py.Dataset):
            what = "is a group, not a dataset" if obj is not None else "does not exist"
            known = ", ".join(_datasets(f))
            raise InputError(key, f"dataset {dataset!r} {what} (datasets: {known})")
        if not obj.shape:
            raise InputError(key, f"dataset {dataset!r} is a scalar, not an array of rows")
        n = obj.shape[0]
        lo, hi = min(max(int(start), 0), n), min(max(int(stop), 0), n)
        if hi <= lo:
            return np.empty((0, *obj.shape[1:]), dtype=obj.dtype)
        return np.asarray(obj[lo:hi])


def _datasets(f: h5py.File) -> list[str]:
    """List the paths of the datasets in a file (for error messages)."""
    found: list[str] = []
    f.visititems(lambda n, o: found.append(n) if isinstance(o, h5py.Dataset) else None)
    return found[:20] or ["none"]
