"""Writer of one run: buffered rows and attributes, written to a side file or by a commit.

:class:`RunWriter` objects are made by :meth:`mpigc.results.ResultFile.new_run`.
With ``keep_open`` a run lives in its own side file (SWMR mode), which this
module keeps provably whole and provably its own: each flush appends the
rows, then records their count and CRC-32 in the side file's ledger
(:mod:`mpigc.results.sides`), and first checks that the side file is still
the one this job created (nobody removed or replaced it).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from mpigc import interrupts
from mpigc.results import sides, store
from mpigc.results.schema import CHUNK_ROWS, TABLES, _encode_attrs, _write_attrs, as_rows
from mpigc.results.store import ResultWriteError


def _create_table(group: h5py.Group, table: str) -> h5py.Dataset:
    """Create an empty, chunked, resizable table dataset in a run group."""
    return group.create_dataset(table, shape=(0,), maxshape=(None,), dtype=TABLES[table], chunks=(CHUNK_ROWS,))


def _write_rows(group: h5py.Group, rows: dict[str, list[np.ndarray]], written: dict[str, int],
                ledger: sides.Ledger | None = None) -> None:
    """Append buffered rows to a run group's tables (creating tables not declared), counting them in ``ledger``."""
    for table, chunks in rows.items():
        data = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
        ds = group[table] if table in group else _create_table(group, table)
        n = ds.shape[0]
        ds.resize((n + data.size,))
        ds[n:] = data
        # Written now, while ``ds`` is alive: a failure raises here. Left to the dataset's close
        # when ``ds`` goes away, it would be printed and ignored by h5py's deallocator.
        ds.flush()
        written[table] = n + data.size
        if ledger is not None:
            ledger.add(table, data)


def _start_swmr(f: h5py.File) -> None:
    f.flush()
    f.swmr_mode = True


@dataclass
class RunWriter:
    """Buffered writer of one run's tables and attributes (made by ``ResultFile.new_run``)."""

    file: Any          # the mpigc.results.ResultFile that made it (not imported: writer imports this module)
    name: str
    tables: list[str]
    written: dict[str, int] = field(default_factory=dict)
    _rows: dict[str, list[np.ndarray]] = field(default_factory=dict, repr=False)
    _attrs: dict[str, Any] = field(default_factory=dict, repr=False)
    _last: float = field(default_factory=time.monotonic, repr=False)
    _side: Path | None = field(default=None, repr=False)      # keep_open: this run's side file
    _h5: h5py.File | None = field(default=None, repr=False)   # ... open in SWMR mode until close
    _fd: int | None = field(default=None, repr=False)         # ... and flock-ed through this descriptor
    _ledger: sides.Ledger | None = field(default=None, repr=False)
    _merged: str | None = field(default=None, repr=False)     # its name in the result file, once committed

    def append(self, table: str, rows: np.ndarray) -> None:
        """Buffer ``rows`` (a structured array of ``TABLES[table]`` dtype, or convertible)."""
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}; known: {sorted(TABLES)}")
        arr = as_rows(table, rows, copy=True)  # the caller may reuse its buffers
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
        """Append every buffered row and attribute to the run.

        With the file's ``min_interval`` > 0 this writes only if that many
        seconds have passed since this writer's last write (or ``force``).
        The write is never torn by SIGTERM/SIGINT (see ``mpigc.interrupts``).

        Raises
        ------
        ResultWriteError
            If the write fails (full disk, quota): the result file is
            unchanged, this run's rows are lost, and the file writes no more.
        """
        if not self._rows and not self._attrs:
            return
        now = time.monotonic()
        if not force and now - self._last < self.file.min_interval:
            return
        encoded, json_keys = _encode_attrs(self._attrs)

        def write(group: h5py.Group) -> None:
            _write_rows(group, self._rows, self.written, self._ledger)
            if encoded:
                _write_attrs(group, encoded, json_keys)

        if self._h5 is None and (self._side is not None or self.file._failed):
            raise ResultWriteError(f"{self.file.path}: run {self.name} can no longer be written (its file is closed)")
        if self._h5 is not None:
            self.check_side()
        # The buffer is emptied inside the same deferred block as the write: a signal held during the
        # write is raised only after it, so the interrupt path never writes these rows a second time.
        with interrupts.deferred():
            if self._h5 is not None:
                # rows first, then the ledger that confirms them: a kill in between leaves rows the
                # ledger does not count (dropped by the merge), never a count without its rows
                self._guard(lambda: (write(self._h5["runs"][self.name]), self._h5.flush(),
                                     self._ledger.write(), self._h5.flush()))
            else:
                self.file._commit(lambda f: write(f["runs"][self.name]))
            self._rows.clear()
            self._attrs.clear()
            self._last = now

    def start_side(self, create, fresh: Path, side: Path) -> None:
        """Make the new side file ``fresh`` provable (identity, ledger, flock), switch it to SWMR, name it ``side``."""
        def start() -> None:
            f = self._h5
            self._ledger = sides.Ledger(sides.stamp(f, sides.identity(self.file.path)))
            create(store.init_file(f).create_group(self.name))
            self._fd = sides.claim(fresh)
            _start_swmr(f)
            os.replace(fresh, side)
        self._guard(lambda: start())
        self._side = side

    def check_side(self) -> None:
        """Raise ResultWriteError if this run's side file was removed or replaced since it was made.

        Only a user (or a writer that ignored the lock) can do that; the run's
        rows since then would be lost, so the job stops and says so (exit 1).
        """
        if self._side is None or self._fd is None or sides.same_file(self._side, self._fd):
            return
        side, self._side = self._side, None
        self.release_side()
        self.file._failed = True
        raise ResultWriteError(f"run {self.name}: its side file {side} was removed or replaced by another "
                               f"process while this job ran; the run is not in {self.file.path}")

    def release_side(self) -> None:
        """Close this run's side file and drop its flock (after its rows are committed or lost)."""
        if self._h5 is not None:
            store.discard(self._h5)
            self._h5 = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _guard(self, action) -> None:
        """Run a write to the side file; on failure drop the side file and raise ResultWriteError."""
        try:
            action()
        except (OSError, RuntimeError, ValueError, KeyError) as exc:
            side, self._side = self._side, None
            if side is not None:
                store._unlink(side)   # its rows are incomplete, and the disk is full
            self.release_side()
            self.file._failed = True
            others = [str(w._side) for w in self.file._writers if w is not self and w._side is not None]
            kept = f"; earlier runs of this job are kept in {', '.join(others)}" if others else ""
            raise ResultWriteError(f"cannot write run {self.name} to {side}: {store.reason(exc)}; "
                                   f"{self.file.path} is unchanged, this run is lost{kept}") from exc


