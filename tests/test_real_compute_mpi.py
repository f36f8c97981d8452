"""Real compute that stops: ``delays.compute = "real"`` under ``mpiexec`` with injected slow workers.

Run as ``mpiexec -n N python -m mpi4py -m pytest --with-mpi tests/test_real_compute_mpi.py``;
every test passes at any world size ≥ 3 (workers m = size − 1). Worker 0
is slow: ``delays.factor`` times ``delays.chunk_time`` per chunk, i.e. an
injected extra of (factor − 1)·chunk_time on top of its real compute, far
longer than the others' real chunks. Partial (l = 1, cyclic, natural order,
load min(m, 4)) then decodes once the fast workers have each done about two
chunks, so a worker that notices STOP (or, on the request transport, its
INSTRUCT) does fewer chunks than its load; one that never checks does them all.
"""
from __future__ import annotations

import numpy as np
import pytest
from helpers import runs_by_name
from mpi4py import MPI
from mpitools import assert_all, run_mpigc, shared_path, verdict

#: real compute of every worker on few cores: among the costliest MPI tests; the smallest and the largest
#: default world (2 and 12 workers) bound what it checks
pytestmark = [pytest.mark.mpi(min_size=3), pytest.mark.world_sizes(3, 13)]

FEATURES = 100_000
ROWS = 32  # rows per chunk: a few ms of real compute at d = 100 000, several gradient blocks when contended
ROUNDS = 8
TOL = 1e-9
SLOW = 0
ENTRIES = {"stream": "{scheme = \"partial\", name = \"stream\"}",
           "request": "{scheme = \"partial\", transport = \"request\", name = \"request\"}"}


def _workers() -> int:
    return MPI.COMM_WORLD.size - 1


def _load(m: int) -> int:
    return min(m, 4)


@pytest.fixture(scope="module")
def real_file(tmp_path_factory) -> str:
    path = shared_path(tmp_path_factory, "real.h5")
    m = _workers()
    samples = ROWS * m  # cyclic: N = m chunks
    run_mpigc(path, [
        f"run.rounds={ROUNDS}", "run.verify=true", "run.round_timeout=10.0", 'run.detail="full"',
        f"workload.features={FEATURES}", f"workload.samples={samples}",
        f"workload.step={0.5 * samples / FEATURES}",  # half the least-squares stability limit
        f"code.load={_load(m)}", "code.parts=1", 'code.ordering="natural"',
        "code.scheme=[" + ", ".join(ENTRIES.values()) + "]",
        'delays.compute="real"', 'delays.model="constant"', f"delays.slow=[{SLOW}]", "delays.factor=51",
        # the slow worker sleeps 1 s after each chunk: far beyond the fast workers' real chunks even on an
        # oversubscribed node (measured up to 0.2 s per chunk at 9 ranks on a loaded 2-core VM); it is
        # stopped in that sleep, so the rounds stay as short as the fast workers make them
        "delays.chunk_time=0.02",
    ])
    return path


def test_every_round_decodes_exactly(real_file):
    def check():
        for name, run in runs_by_name(real_file, ENTRIES).items():
            r = run.tables["rounds"]
            if not np.array_equal(r["round"], np.arange(ROUNDS)):
                yield f"{name}: rounds {r['round'].tolist()}"
            if not np.all(r["status"] == 0):
                yield f"{name}: statuses {r['status'].tolist()}"
            err = r["grad_error"]
            if not (np.all(np.isfinite(err)) and err.max() <= TOL):
                yield f"{name}: grad_error {err.tolist()}"
            if run.attrs.get("workers") != _workers():
                yield f"{name}: {run.attrs.get('workers')} workers"

    assert_all(verdict(check))


def test_workers_stop_before_their_load(real_file):
    """Pre-fix, every live worker did its whole load every round under real compute."""
    m = _workers()
    load = _load(m)

    def check():
        for name, run in runs_by_name(real_file, ENTRIES).items():
            w = run.tables["workers"]
            if len(w) != ROUNDS * m:
                yield f"{name}: {len(w)} worker reports != {ROUNDS} x {m}"
                continue
            if w["failed"].any() or (w["tasks_done"] > load).any():
                yield f"{name}: failed rows or tasks_done above the load {load}: {w['tasks_done'].tolist()}"
            slow = w["worker"] == SLOW
            # the slow worker is stopped in its injected sleep (its first chunk is never needed)
            if not w["tasks_done"][slow].mean() < 1:
                yield f"{name}: slow worker's tasks_done {w['tasks_done'][slow].tolist()}"
            if not w["tasks_done"].mean() <= load - 0.5:
                yield f"{name}: workers did {w['tasks_done'].mean():.2f} of {load} chunks per round on average"
            # with m = 2 the one fast worker holds the only other copy of chunk 0: it needs its whole load
            if m >= 3:
                fast = w["tasks_done"][~slow]
                if not fast.mean() <= load - 0.5:
                    yield f"{name}: fast workers did {fast.mean():.2f} of {load} chunks per round on average " \
                          f"({np.bincount(fast, minlength=load + 1).tolist()} rounds with 0..{load} chunks)"

    assert_all(verdict(check))

