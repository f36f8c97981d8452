"""Chunked datasets: synthetic rows generated per chunk, or row ranges of a user file.

Chunk ``i`` of ``N`` holds the contiguous rows ``bounds[i]:bounds[i+1]`` with
``bounds = round(linspace(0, samples, N + 1))``, so chunk boundaries depend on
N. A source only builds the chunks it is asked for.

Synthetic chunk ``i`` is drawn from ``stream(seed, "data", i)`` as one
``rows × (features + 1)`` standard normal matrix, filled row by row: the
features, then one noise value per row. Its data therefore depends only on
(seed, i, its row count) — not on which other chunks were built nor on N
except through the row count — and a chunk with more rows extends the one
with fewer.

User files are ``.npz`` (arrays ``X``, ``y``) or ``.h5``/``.hdf5`` (datasets
``X``, ``y``, read through :mod:`mpigc.results`). An uncompressed ``.npz``
member is memory-mapped, so a chunk reads only its rows; a compressed one
(``np.savez_compressed``) is loaded whole. ``y`` is always read whole (one
number per row). Every problem is an :class:`InputError` keyed
``workload.dataset``.
"""
from __future__ import annotations

import os
import struct
import zipfile
from collections.abc import Callable
from typing import NoReturn

import numpy as np

from mpigc import results
from mpigc.errors import InputError
from mpigc.seeding import stream

KEY = "workload.dataset"
Targets = Callable[[np.ndarray, np.ndarray], np.ndarray]
_SCAN_BYTES = 1 << 26  # rows read at a time by the finiteness scan: about 64 MB


def chunk_bounds(samples: int, chunks: int) -> np.ndarray:
    """Return the N + 1 row boundaries of ``chunks`` near-equal contiguous chunks."""
    return np.linspace(0, samples, chunks + 1).round().astype(int)


class SyntheticData:
    """Gaussian features generated per chunk; targets from a planted model.

    Parameters
    ----------
    samples, features, chunks, seed
        Total rows, columns, number of chunks N and root seed.
    targets
        ``targets(x, eps) -> y`` given a chunk's features and its standard
        normal noise draws (one per row).
    """

    def __init__(self, samples: int, features: int, chunks: int, seed: int, targets: Targets) -> None:
        if samples < chunks:
            raise InputError("workload.samples", f"{samples} samples cannot fill {chunks} chunks")
        self.samples, self.features = int(samples), int(features)
        self.seed, self.targets = int(seed), targets
        self.bounds = chunk_bounds(self.samples, int(chunks))

    def rows(self, chunk: int) -> tuple[np.ndarray, np.ndarray]:
        """Generate chunk ``chunk``'s features (rows × features) and targets."""
        count = int(self.bounds[chunk + 1] - self.bounds[chunk])
        z = stream(self.seed, "data", chunk).standard_normal((count, self.features + 1))
        x = np.ascontiguousarray(z[:, :-1])
        return x, np.asarray(self.targets(x, z[:, -1]), dtype=float)


class FileData:
    """Rows of a user ``.npz`` or ``.h5`` file, read one chunk at a time.

    Parameters
    ----------
    path
        The file, with arrays/datasets ``X`` (samples × features) and ``y``.
    chunks
        Number of chunks N; the file needs at least N rows.
    check
        Scan all of ``X`` for non-finite values now, a block at a time (never
        holding more than about 64 MB). Without it only the structure and
        ``y`` are checked here, and each chunk's rows when they are read.
    """

    def __init__(self, path: str, chunks: int, check: bool = True) -> None:
        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            self._fail("no such file" if not os.path.exists(self.path) else "not a file")
        ext = os.path.splitext(self.path)[1].lower()
        if ext == ".npz":
            self._x, shape, y = self._open_npz()
        elif ext in (".h5", ".hdf5"):
            self._x, shape, y = self._open_h5()
        else:
            self._fail(f"unsupported extension {ext or '(none)'!r}; use .npz or .h5 with X and y")
        if len(shape) != 2:
            self._fail(f"X must be 2-D (samples × features), got {len(shape)}-D")
        if shape[1] < 1:
            self._fail("X has no columns")
        self._numeric("X", self._x(0, 0))
        y = self._numeric("y", y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            self._fail(f"y must be 1-D (one target per row), got shape {y.shape}")
        if shape[0] != len(y):
            self._fail(f"X has {shape[0]} rows but y has {len(y)}")
        if not np.all(np.isfinite(y)):
            self._fail(f"y has non-finite values (first at row {int(np.argmin(np.isfinite(y)))})")
        if len(y) < chunks:
            self._fail(f"{len(y)} rows cannot fill {chunks} chunks")
        self.samples, self.features = int(shape[0]), int(shape[1])
        self.labels = np.ascontiguousarray(y, dtype=float)
        self.bounds = chunk_bounds(self.samples, int(chunks))
        if check:
            step = max(1, _SCAN_BYTES // (8 * self.features))
            for lo in range(0, self.samples, step):
                self._read(lo, min(lo + step, self.samples))

    def rows(self, chunk: int) -> tuple[np.ndarray, np.ndarray]:
        """Read chunk ``chunk``'s features and targets as float64 copies."""
        lo, hi = int(self.bounds[chunk]), int(self.bounds[chunk + 1])
        return self._read(lo, hi), self.labels[lo:hi].copy()

    def _read(self, lo: int, hi: int) -> np.ndarray:
        """Read rows ``lo:hi`` of X as float64, checking they are numeric and finite."""
        x = self._numeric("X", self._x(lo, hi))
        x = np.array(x, dtype=float, order="C")
        finite = np.isfinite(x)
        if not finite.all():
            row = lo + int(np.argmin(finite.all(axis=1)))
            self._fail(f"X has non-finite values (first at row {row})")
        return x

    def _numeric(self, name: str, a: np.ndarray) -> np.ndarray:
        """Return ``a`` if it holds real numbers (bool and integers included)."""
        if a.dtype.kind not in "biuf":
            self._fail(f"{name} is not numeric (dtype {a.dtype})")
        return a

    def _fail(self, problem: str) -> NoReturn:
        raise InputError(KEY, f"{self.path}: {problem}")

    def _open_npz(self) -> tuple[Callable[[int, int], np.ndarray], tuple[int, ...], np.ndarray]:
        """Open X (memory-mapped when stored uncompressed) and y of a ``.npz``."""
        try:
            with zipfile.ZipFile(self.path) as archive:
                names = [n[:-4] for n in archive.namelist() if n.endswith(".npy")]
                for need in ("X", "y"):
                    if need not in names:
                        self._fail(f"no array {need!r} (arrays: {', '.join(names) or 'none'})")
                x = _npz_member(self.path, archive, "X")
                with archive.open("y.npy") as fh:
                    y = np.lib.format.read_array(fh, allow_pickle=False)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            self._fail(f"cannot be read as .npz ({exc})")
        return (lambda lo, hi: x[lo:hi]), x.shape, y

    def _open_h5(self) -> tuple[Callable[[int, int], np.ndarray], tuple[int, ...], np.ndarray]:
        """Open X (read by row ranges) and y of an HDF5 file via :mod:`mpigc.results`."""
        path = self.path

        def read(lo: int, hi: int) -> np.ndarray:
            try:
                return results.read_rows(path, "X", lo, hi)
            except InputError as exc:
                self._fail(exc.problem)

        try:
            y = results.read_matrix(path, "y")
        except InputError as exc:
            self._fail(exc.problem)
        head = read(0, 0)
        shape: tuple[int, ...] = head.shape
        if head.ndim == 2 and len(y):
            # X's row count from a two-row probe at y's end: 0, 1 or 2 rows come back.
            tail = len(read(len(y) - 1, len(y) + 1))
            if tail != 1:
                self._fail(f"X has {'fewer' if tail == 0 else 'more'} rows than y ({len(y)})")
            shape = (len(y), head.shape[1])
        return read, shape, y


def _npz_member(path: str, archive: zipfile.ZipFile, name: str) -> np.ndarray:
    """Memory-map ``name`` of an ``.npz`` if stored uncompressed, else load it."""
    info = archive.getinfo(name + ".npy")
    if info.compress_type == zipfile.ZIP_STORED:
        with open(path, "rb") as fh:
            fh.seek(info.header_offset)
            local = fh.read(30)
            if local[:4] == b"PK\x03\x04":
                name_len, extra_len = struct.unpack("<HH", local[26:30])
                fh.seek(info.header_offset + 30 + name_len + extra_len)
                version = np.lib.format.read_magic(fh)
                header = {(1, 0): np.lib.format.read_array_header_1_0,
                          (2, 0): np.lib.format.read_array_header_2_0}.get(version)
                if header is not None:
                    shape, fortran, dtype = header(fh)
                    if not dtype.hasobject and 0 not in shape and shape:
                        return np.memmap(path, dtype=dtype, mode="r", offset=fh.tell(), shape=shape,
                                         order="F" if fortran else "C")
    with archive.open(name + ".npy") as fh:
        return np.lib.format.read_array(fh, allow_pickle=False)

