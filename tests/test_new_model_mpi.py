"""A straggler model from the test suite under ``mpiexec``: registered on every rank, it drives the run.

Run as ``mpiexec -n N python -m mpi4py -m pytest --with-mpi tests/test_new_model_mpi.py``
(N ≥ 3). Every rank imports :mod:`slow_first_worker`, which registers
``slow-first-worker`` (worker 0 fifty times slower); ``crc`` tolerates one
straggler, so no round may use worker 0 and every round decodes exactly.
"""
from __future__ import annotations

import numpy as np
import pytest
import slow_first_worker
from mpi4py import MPI
from mpitools import assert_all, run_mpigc, shared_path, verdict

from mpigc.delays import MODELS
from mpigc.results import read_runs

#: what it checks does not change with the world size: the two smallest default sizes (also Open MPI's in CI)
pytestmark = [pytest.mark.mpi(min_size=3), pytest.mark.world_sizes(3, 6)]

ROUNDS = 5
CHUNK = 0.02


def test_registered_model_runs_under_mpiexec(tmp_path_factory):
    registered = MPI.COMM_WORLD.allgather(slow_first_worker.NAME in MODELS.names())
    assert all(registered), registered
    path = shared_path(tmp_path_factory, "model.h5")
    run_mpigc(path, [f"run.rounds={ROUNDS}", "run.verify=true", "run.round_timeout=5.0", "code.load=2",
                     'code.scheme="crc"', f'delays.model="{slow_first_worker.NAME}"', f"delays.chunk_time={CHUNK}",
                     "workload.features=50", f"workload.samples={4 * (MPI.COMM_WORLD.size - 1)}"])

    def check():
        (run,) = read_runs(path)
        r, ev = run.tables["rounds"], run.tables["events"]
        if run.attrs.get("backend") != "mpi" or len(r) != ROUNDS:
            yield f"backend {run.attrs.get('backend')}, {len(r)} rounds"
        if not np.all(r["status"] == 0) or r["grad_error"].max() > 1e-9:
            yield f"statuses {r['status'].tolist()}, grad_error {r['grad_error'].tolist()}"
        if ev["used"][ev["worker"] == 0].any():
            yield "a round used the 50x slower worker 0"
        if not ev["used"][ev["worker"] != 0].any():
            yield "no message of the other workers was used"
        # everyone else finishes in 2 chunk times; worker 0 would need 100 of them
        if r["latency"].max() > 0.5 * slow_first_worker.SLOWDOWN * 2 * CHUNK:
            yield f"latencies {r['latency'].tolist()} wait for worker 0"

    assert_all(verdict(check))
