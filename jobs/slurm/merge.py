"""Copy every run of several result files into one file (names get -2, -3... if taken); safe to retry.

    python jobs/slurm/merge.py MERGED.h5 DIR/*.h5

Reads and writes through ``mpigc.results`` only; each copied run keeps its
attributes and tables and gains ``source_file``. Input files are not changed.

Idempotent: a run is identified by its content (:func:`run_identity`, a
SHA-256 of its attributes but ``source_file`` and of its tables' fields and
bytes), not by its name, which merging changes. A run already in MERGED.h5,
or met earlier in this merge, is not copied again, so a retried job that
merges the same parts, or the same part named twice, adds nothing; two runs
that differ in any attribute (``created``, ``host``, ``seed``...) or any row
are both kept. Damaged runs of an input are skipped with a warning line.
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from mpigc import results
from mpigc.errors import InputError

#: attributes merge adds or that name a copy rather than a run
NOT_IDENTITY = ("source_file",)


def _plain(value: Any) -> Any:
    """JSON-encodable stand-ins for numpy values inside attributes."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return repr(value)


def run_identity(run: results.RunData) -> str:
    """SHA-256 (hex) of a run's content: its attributes but ``source_file``, and every table's fields and bytes."""
    h = hashlib.sha256()
    attrs = {k: v for k, v in run.attrs.items() if k not in NOT_IDENTITY}
    h.update(json.dumps(attrs, sort_keys=True, default=_plain).encode())
    for name in sorted(run.tables):
        table = run.tables[name]
        h.update(f"\0table {name} {table.size}".encode())
        for field in sorted(table.dtype.names or ()):
            column = np.ascontiguousarray(table[field])
            h.update(f"\0{field} {column.dtype.str}".encode())
            h.update(column.tobytes())
    return h.hexdigest()


def _warn(text: str) -> None:
    print(f"merge: warning: {text}", file=sys.stderr)


def merge(out: str, inputs: list[str]) -> tuple[int, int]:
    """Append every run of ``inputs`` not yet in ``out`` to ``out``.

    Returns
    -------
    (copied, already there)
        Runs copied, and runs skipped because ``out`` (or an earlier input) holds the same run.
    """
    seen: set[str] = set()
    if Path(out).exists():
        scan = results.scan_runs(out, require=())
        seen = {run_identity(run) for run in scan.runs}
    target = results.ResultFile(out)
    copied = skipped = 0
    for path in inputs:
        if Path(path).resolve() == Path(out).resolve():
            continue
        scan = results.scan_runs(path, require=())
        for damaged in scan.damaged:
            _warn(f"{path}: run {damaged.name!r} is damaged ({damaged.reason}); skipped")
        for run in scan.runs:
            identity = run_identity(run)
            if identity in seen:
                skipped += 1
                continue
            writer = target.new_run(run.name, {**run.attrs, "source_file": str(path)}, tables=list(run.tables))
            for table, rows in run.tables.items():
                writer.append(table, rows)
            writer.flush()
            seen.add(identity)
            copied += 1
    return copied, skipped


def main(argv: list[str]) -> int:
    """Command line: MERGED.h5 INPUT.h5..."""
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    try:
        copied, skipped = merge(argv[0], argv[1:])
    except InputError as error:
        print(f"merge: error: {error}", file=sys.stderr)
        return 2
    except results.ResultWriteError as error:
        print(f"merge: error: {error}", file=sys.stderr)
        return 1
    note = f" ({skipped} already there)" if skipped else ""
    print(f"merged {copied} run(s) from {len(argv) - 1} file(s) into {argv[0]}{note}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
