"""Copy every run of several result files into one file (names get -2, -3... if taken).

    python jobs/slurm/merge.py MERGED.h5 DIR/*.h5

Reads and writes through ``mpigc.results`` only; each copied run keeps its
attributes and tables and gains ``source_file``. Input files are not changed.
"""
from __future__ import annotations

import sys
from pathlib import Path

from mpigc import results
from mpigc.errors import InputError


def merge(out: str, inputs: list[str]) -> int:
    """Append every run of ``inputs`` to ``out``; return the number of runs copied."""
    target = results.ResultFile(out)
    count = 0
    for path in inputs:
        if Path(path).resolve() == Path(out).resolve():
            continue
        for run in results.read_runs(path):
            writer = target.new_run(run.name, {**run.attrs, "source_file": str(path)}, tables=list(run.tables))
            for table, rows in run.tables.items():
                writer.append(table, rows)
            writer.flush()
            count += 1
    return count


def main(argv: list[str]) -> int:
    """Command line: MERGED.h5 INPUT.h5..."""
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    try:
        n = merge(argv[0], argv[1:])
    except InputError as error:
        print(f"merge: error: {error}", file=sys.stderr)
        return 2
    print(f"merged {n} run(s) from {len(argv) - 1} file(s) into {argv[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
