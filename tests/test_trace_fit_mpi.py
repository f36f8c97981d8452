"""The fitted straggler model drives an emulated ``mpigc run`` under ``mpiexec``, exactly as it drives ``simulate``.

Run as ``mpiexec -n N python -m mpi4py -m pytest --with-mpi tests/test_trace_fit_mpi.py`` (N ≥ 3).
Every worker sleeps at least the duration the model gives it (the simulator's
duration for the same seed, round, worker and position), and every round decodes.
"""
from __future__ import annotations

import numpy as np
import pytest
from mpi4py import MPI
from mpitools import assert_all, run_mpigc, shared_path, verdict

from mpigc.config import DelaysConfig
from mpigc.delays import DelayModel
from mpigc.results import read_runs

pytestmark = pytest.mark.mpi(min_size=3)

ROUNDS = 6
CHUNK = 0.01
PARAMS = dict(speed_sigma=0.2, p_bad=0.2, p_good=0.4, floor=0.5, fast_mu=-0.5, fast_sigma=0.1, slow_mu=1.0,
              slow_sigma=0.2)


def test_fitted_model_under_mpiexec(tmp_path_factory):
    workers = MPI.COMM_WORLD.size - 1
    path = shared_path(tmp_path_factory, "fitted.h5")
    run_mpigc(path, [f"run.rounds={ROUNDS}", "run.verify=true", "run.round_timeout=5.0", 'code.scheme="uncoded"',
                     'delays.model="fitted"', f"delays.chunk_time={CHUNK}", "workload.features=20",
                     f"workload.samples={4 * workers}", "run.seed=11",
                     *(f"delays.{k}={v!r}" for k, v in PARAMS.items())])

    def check():
        (run,) = read_runs(path)
        r, w = run.tables["rounds"], run.tables["workers"]
        if len(r) != ROUNDS or len(w) != ROUNDS * workers:
            yield f"{len(r)} rounds, {len(w)} worker rows"
            return
        if not np.all(r["status"] == 0) or r["grad_error"].max() > 1e-9:
            yield f"statuses {r['status'].tolist()}, grad_error {r['grad_error'].tolist()}"
        model = DelayModel(DelaysConfig(model="fitted", chunk_time=CHUNK, **PARAMS), 11, workers)
        for row in w:
            due = float(model.durations(int(row["round"]), 1)[int(row["worker"]), 0])
            if row["busy"] < 0.99 * due:
                yield f"round {row['round']} worker {row['worker']}: busy {row['busy']:.4f} s < modelled {due:.4f} s"

    assert_all(verdict(check))
