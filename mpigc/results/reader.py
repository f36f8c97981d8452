"""Reading result files and user datasets (never more rows than asked for)."""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import h5py
import numpy as np

from mpigc.errors import InputError
from mpigc.results.schema import _is_ours, _open_read, _read_attrs


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


def run_names(path: str | os.PathLike) -> list[str]:
    """Names of the runs in a result file, in creation order; [] if the file does not exist.

    Raises
    ------
    InputError
        Keyed by the file name if it exists but is not a readable mpigc result file.
    """
    if not os.path.exists(os.fspath(path)):
        return []
    with _open_read(path) as f:
        if not _is_ours(f):
            raise InputError(os.fspath(path), "not an mpigc result file (no /runs group)")
        return list(f["runs"]) if "runs" in f else []


def read_matrix(path: str | os.PathLike, dataset: str) -> np.ndarray:
    """Read a whole dataset (e.g. ``X``, ``y`` or a trace) from an HDF5 file.

    Raises
    ------
    InputError
        Keyed by the file name if it is missing or unreadable or has no such dataset.
    """
    with _open_read(path) as f:
        return np.asarray(_dataset(f, dataset, os.fspath(path))[()])


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
        obj = _dataset(f, dataset, key)
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


def _dataset(f: h5py.File, name: str, key: str) -> h5py.Dataset:
    """The dataset ``name`` of an open file, or an InputError listing the datasets there are."""
    obj = f.get(name)
    if not isinstance(obj, h5py.Dataset):
        what = "is a group, not a dataset" if obj is not None else "does not exist"
        raise InputError(key, f"dataset {name!r} {what} (datasets: {', '.join(_datasets(f))})")
    return obj
