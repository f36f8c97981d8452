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

User data (``workload.dataset``) is either a directory holding ``X.npy``
and ``y.npy`` (``np.save``; X memory-mapped with ``np.load(mmap_mode="r")``,
so a chunk reads only its rows) or an ``.h5``/``.hdf5`` file with datasets
``X`` and ``y``, read by row ranges through the reader the caller passes in
(:class:`ArrayReader`; ``mpigc.core.inputs`` passes :mod:`mpigc.results`, so
this module never loads h5py). ``y`` is always read whole (one number per
row). An ``.npz`` (docs/data.md) is read whole by ``np.load`` on
every rank that builds chunks: numpy cannot memory-map a member of a ZIP
archive, and parsing its headers by hand is what this module no longer does;
for data larger than memory convert it to the ``.npy`` directory
(:data:`NPZ_TO_NPY` is the one-line command).
Every problem is an :class:`InputError` keyed ``workload.dataset``.

Held-out rows (time to accuracy, ``run.eval_every``): synthetic data draws
⌈samples/4⌉ fresh rows of the same distribution from ``stream(seed, "eval")``
(:meth:`SyntheticData.held_out`); a user dataset holds them beside X and y
as ``X_eval``/``y_eval`` (``X_eval.npy`` and ``y_eval.npy`` in the
directory, members of the ``.npz``, datasets of the ``.h5``), read whole by
:meth:`FileData.held_out`; without them it returns None and the caller
evaluates on the training rows.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from typing import NoReturn, Protocol

import numpy as np

from mpigc.errors import InputError
from mpigc.seeding import stream

KEY = "workload.dataset"
Targets = Callable[[np.ndarray, np.ndarray], np.ndarray]
_SCAN_BYTES = 1 << 26  # rows read at a time by the finiteness scan: about 64 MB
#: the command that turns ``{path}`` (a .npz) into the memory-mapped directory ``{dir}``
NPZ_TO_NPY = ("python -c \"import numpy as np, os; "
            "d = np.load('{path}'); os.makedirs('{dir}', exist_ok=True); "
            "[np.save(os.path.join('{dir}', k + '.npy'), d[k]) for k in 'Xy']\" "
            "and set workload.dataset = \"{dir}\"")
Opened = tuple[Callable[[int, int], np.ndarray], tuple[int, ...], np.ndarray]


class ArrayReader(Protocol):
    """What reads datasets of an HDF5 file (:mod:`mpigc.results` has this shape)."""

    def read_matrix(self, path: str, dataset: str) -> np.ndarray:
        """Return the whole dataset ``dataset`` of ``path``."""

    def read_rows(self, path: str, dataset: str, start: int, stop: int) -> np.ndarray:
        """Return rows ``start:stop`` of ``dataset`` (fewer past its end)."""


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
        return self._draw(stream(self.seed, "data", chunk), count)

    def held_out(self) -> tuple[np.ndarray, np.ndarray]:
        """Draw ⌈samples/4⌉ fresh rows from ``stream(seed, "eval")``: a held-out set of the same distribution."""
        return self._draw(stream(self.seed, "eval"), -(-self.samples // 4))

    def _draw(self, rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``count`` rows: features, then one noise value per row, turned into targets."""
        z = rng.standard_normal((count, self.features + 1))
        x = np.ascontiguousarray(z[:, :-1])
        return x, np.asarray(self.targets(x, z[:, -1]), dtype=float)


class FileData:
    """Rows of user data (a directory of ``X.npy`` and ``y.npy``, or ``.h5``), read one chunk at a time.

    Parameters
    ----------
    path
        The directory or file, with arrays/datasets ``X`` (samples × features) and ``y``.
    chunks
        Number of chunks N; the data needs at least N rows.
    check
        Scan all of ``X`` for non-finite values now, a block at a time (never
        holding more than about 64 MB). Without it only the structure and
        ``y`` are checked here, and each chunk's rows when they are read.
    reader
        Reads ``.h5`` files (:class:`ArrayReader`); a directory of ``.npy`` needs none.
    """

    def __init__(self, path: str, chunks: int, check: bool = True, reader: ArrayReader | None = None) -> None:
        self.path = os.fspath(path)
        self._reader = reader
        self._x, shape, y = self._open(reader)
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

    def held_out(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Return the held-out ``X_eval``, ``y_eval`` stored beside X and y (whole, float64), or None if absent.

        Raises
        ------
        InputError
            Only one of the two is present, or they do not fit X (columns, rows, finite values).
        """
        got = {name: self._eval_array(name) for name in ("X_eval", "y_eval")}
        if got["X_eval"] is None and got["y_eval"] is None:
            return None
        absent = [name for name, a in got.items() if a is None]
        if absent:
            self._fail(f"has {'y_eval' if absent[0] == 'X_eval' else 'X_eval'} but no {absent[0]}")
        x = np.array(self._numeric("X_eval", got["X_eval"]), dtype=float)
        y = np.array(self._numeric("y_eval", got["y_eval"]), dtype=float)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if x.ndim != 2 or x.shape[1] != self.features or y.shape != (len(x),) or len(x) == 0:
            self._fail(f"X_eval {x.shape} and y_eval {y.shape} must be rows × {self.features} "
                       "features and one target per row (at least one row)")
        if not (np.isfinite(x).all() and np.isfinite(y).all()):
            self._fail("X_eval or y_eval has non-finite values")
        return np.ascontiguousarray(x), y

    def training_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """Return every row of X (float64, in memory) and y: the evaluation set of a dataset without X_eval."""
        return self._read(0, self.samples), self.labels.copy()

    def _eval_array(self, name: str) -> np.ndarray | None:
        """Read array ``name`` (X_eval or y_eval) of the dataset whole, or None if the dataset has none."""
        if os.path.isdir(self.path):
            file = os.path.join(self.path, name + ".npy")
            if not os.path.isfile(file):
                return None
            try:
                return np.load(file, allow_pickle=False)
            except (OSError, ValueError, EOFError) as exc:
                self._fail(f"{name}.npy cannot be read ({exc})")
        if self.path.lower().endswith(".npz"):
            with np.load(self.path, allow_pickle=False) as archive:
                return np.asarray(archive[name]) if name in archive.files else None
        try:
            return np.asarray(self._reader.read_matrix(self.path, name))
        except InputError as exc:
            if "does not exist" in exc.problem:  # the reader's words for a dataset the file lacks
                return None
            self._fail(exc.problem)

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

    def _open(self, reader: ArrayReader | None) -> Opened:
        """Open X and y by the kind of ``path``; fail with one line naming what to use instead."""
        ext = os.path.splitext(self.path.rstrip("/" + os.sep))[1].lower()
        if os.path.isdir(self.path):
            return self._open_npy()
        if not os.path.exists(self.path):
            self._fail("no such file or directory")
        if ext == ".npz":
            return self._open_npz()
        if ext not in (".h5", ".hdf5"):
            self._fail(f"unsupported extension {ext or '(none)'!r}; use a directory of X.npy and y.npy, "
                       "a .npz or an .h5 with arrays X and y")
        if not os.path.isfile(self.path):
            self._fail("not a file")
        if reader is None:
            self._fail("HDF5 datasets are read through mpigc.results; this caller passed no reader")
        return self._open_h5(reader)

    def _open_npz(self) -> Opened:
        """Load X and y of a ``.npz`` whole (numpy maps no archive member; the .npy directory is mapped)."""
        try:
            with np.load(self.path, allow_pickle=False) as archive:
                missing = [name for name in ("X", "y") if name not in archive.files]
                if missing:
                    held = ", ".join(archive.files) or "nothing"
                    self._fail(f"no {' or '.join(missing)} in the archive (it holds: {held})")
                x, y = np.asarray(archive["X"]), np.asarray(archive["y"])
        except (OSError, ValueError, EOFError) as exc:
            self._fail(f"cannot be read as a .npz ({exc})")
        return (lambda lo, hi: x[lo:hi]), x.shape, y

    def _open_npy(self) -> Opened:
        """Memory-map X and load y from ``X.npy`` and ``y.npy`` in the directory ``path``."""
        arrays = {}
        for name in ("X", "y"):
            file = os.path.join(self.path, name + ".npy")
            if not os.path.isfile(file):
                have = sorted(f for f in os.listdir(self.path) if f.endswith(".npy"))
                self._fail(f"no {name}.npy in the directory (.npy files: {', '.join(have) or 'none'})")
            try:
                arrays[name] = np.load(file, mmap_mode="r" if name == "X" else None, allow_pickle=False)
            except (OSError, ValueError, EOFError) as exc:
                self._fail(f"{name}.npy cannot be read ({exc})")
        x = arrays["X"]
        return (lambda lo, hi: x[lo:hi]), x.shape, np.asarray(arrays["y"])

    def _open_h5(self, reader: ArrayReader) -> Opened:
        """Open X (read by row ranges) and y of an HDF5 file through ``reader``."""
        path = self.path

        def read(lo: int, hi: int) -> np.ndarray:
            try:
                return reader.read_rows(path, "X", lo, hi)
            except InputError as exc:
                self._fail(exc.problem)

        try:
            y = reader.read_matrix(path, "y")
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

