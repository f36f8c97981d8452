"""The result schema: table dtypes, provenance, attribute encoding, opening files."""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import socket
from typing import Any

import h5py
import numpy as np

import mpigc
from mpigc.errors import InputError

ROUNDS_DTYPE = np.dtype([
    ("round", "i8"), ("latency", "f8"), ("status", "i1"), ("messages", "i4"),
    ("chunks_done", "i4"), ("coef_error", "f8"), ("grad_error", "f8"), ("loss", "f8"),
    ("waitout", "i1"), ("level", "i2"), ("cond", "f8"), ("eval_loss", "f8"), ("eval_accuracy", "f8"),
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
    "rounds": {"level": -1, "cond": np.nan, "eval_loss": np.nan, "eval_accuracy": np.nan},
    "events": {},
    "workers": {"overrun": 0.0},
    "jobs": {},
}



def as_rows(table: str, rows: Any) -> np.ndarray:
    """Return ``rows`` (tuples in field order, or records) as a 1-D array of the table's dtype.

    Tuples may stop before the table's trailing optional fields (those in
    :data:`DEFAULTS`, e.g. ``eval_loss``): producers written before a field
    was added keep working, and the missing fields get their defaults.

    Raises
    ------
    ValueError
        A tuple leaves out a field without a default, or has too many fields.
    """
    dtype = TABLES[table]
    if isinstance(rows, np.ndarray) or not isinstance(rows, (list, tuple)):
        return np.atleast_1d(np.array(rows, dtype=dtype))
    names = dtype.names
    pads: dict[int, tuple] = {}

    def pad(row: tuple) -> tuple:
        n = len(row)
        if n == len(names):
            return row
        if n not in pads:
            missing = [f for f in names[n:] if f not in DEFAULTS[table]]
            if n > len(names) or missing:
                raise ValueError(f"{table}: a row of {n} fields; expected {len(names)}"
                                 + (f" (no default for {missing[0]!r})" if missing else ""))
            pads[n] = tuple(DEFAULTS[table][f] for f in names[n:])
        return tuple(row) + pads[n]

    return np.array([pad(row) for row in rows], dtype=dtype).reshape(-1)


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
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
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
    """Open an existing HDF5 file for reading or raise an InputError naming it.

    Result files are never written in place (``mpigc.results.store``), so a
    plain open always sees a consistent file. A side file of a running run
    (or one a killed job left) refuses plain opens ("already open for
    write"): it is opened in SWMR read mode, which sees a consistent prefix
    of its rows. A file an older mpigc writer holds open (HDF5's lock) is
    read without taking the lock.
    """
    key = os.fspath(path)
    if not os.path.exists(key):
        raise InputError(key, "no such file")
    if os.path.isdir(key):
        raise InputError(key, "is a directory, not an HDF5 file")
    try:
        if not h5py.is_hdf5(key):
            raise InputError(key, "not an HDF5 file")
        try:
            return h5py.File(key, "r")
        except OSError as exc:
            text = str(exc)
            if "lock" not in text and "already open for write" not in text:
                raise
            return h5py.File(key, "r", locking=False, swmr="already open for write" in text)
    except OSError as exc:
        raise InputError(key, f"cannot be read as HDF5 ({exc})") from exc
