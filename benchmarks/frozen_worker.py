"""One worker stopped (SIGSTOP) for a while: do the others keep decoding?

Runs the job of ``tests/test_frozen_worker.py`` (crc, s = 1, 4 workers,
d = 20 000 so every START is a rendezvous send, round timeout 0.2 s), stops
rank 2 a few seconds in and resumes it ``--freeze`` seconds later, and
prints per run: rounds per second before, during and after the stop,
undecodable rounds, and how many rounds the stopped worker was never
started on (it joined the current round on waking instead of replaying
them). ``--mpiexec`` picks the MPI library, e.g. Open MPI's::

    python benchmarks/frozen_worker.py --repeat 2
    PRTE_MCA_rmaps_default_mapping_policy=:oversubscribe OMPI_ALLOW_RUN_AS_ROOT=1 \\
        OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 /path/to/openmpi-venv/bin/python benchmarks/frozen_worker.py \\
        --mpiexec /path/to/openmpi-venv/bin/mpiexec
"""
from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from test_frozen_worker import MPIEXEC, SETTINGS, freeze_run  # noqa: E402  (the tests' helpers, on the path above)

from mpigc.results import read_runs  # noqa: E402


def main() -> None:
    """Parse the options, run the jobs, print one row per run."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mpiexec", default=MPIEXEC, help="launcher command (default: the one next to python)")
    ap.add_argument("--freeze", type=float, default=15.0, help="seconds rank 2 is stopped")
    ap.add_argument("--repeat", type=int, default=1, help="runs")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="extra config override")
    args = ap.parse_args()
    print(f"# mpiexec: {args.mpiexec}; freeze {args.freeze:.0f} s; settings: {' '.join(SETTINGS + tuple(args.sets))}")
    print("# library                      exit  before/s  during/s  after/s  undecodable  not-started  workers-rows")
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "frozen.h5"
            got = freeze_run(out, freeze=args.freeze, settings=SETTINGS + tuple(args.sets),
                             mpiexec=shlex.split(args.mpiexec))
            if got.returncode != 0:
                print(f"# exit {got.returncode}: {got.stderr[-2000:]}")
                continue
            (run,) = read_runs(out)
            rounds, workers = run.tables["rounds"], run.tables["workers"]
            end = got.progress[-1][0]
            mine = workers["round"][workers["worker"] == 1]
            missed = np.setdiff1d(rounds["round"], mine).size
            library = " ".join(str(run.attrs.get("mpi_library", "?")).split()[:3])
            print(f"{library[:30]:30} {got.returncode:5} {got.rate(got.progress[0][0], got.stopped):9.1f} "
                  f"{got.rate(got.stopped, got.resumed):9.1f} {got.rate(got.resumed + 1.0, end):8.1f} "
                  f"{np.count_nonzero(rounds['status'] == 2):12} {missed:12} {mine.size:13}", flush=True)


if __name__ == "__main__":
    main()
