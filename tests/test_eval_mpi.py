"""Rank 0's held-out evaluation under ``mpiexec`` is on no round's clock (docs/protocols.md#time-to-accuracy).

Run as ``mpiexec -n 3 python -m mpi4py -m pytest --with-mpi tests/test_eval_mpi.py``. Every rank
makes the evaluation deliberately slow (it sleeps ``SLOW`` s, far longer than a round); only rank 0
evaluates. The rounds' latencies must stay far below ``SLOW`` while rank 0's loop time contains
every evaluation, and the evaluated rows must hold the model's held-out metrics.
"""
from __future__ import annotations

import time

import numpy as np
import pytest
from mpi4py import MPI
from mpitools import assert_all, run_mpigc, shared_path, verdict

from mpigc.results import read_runs
from mpigc.workloads import Objective

#: what it checks does not change with the world size: the two smallest default sizes (also Open MPI's in CI)
pytestmark = [pytest.mark.mpi(min_size=3), pytest.mark.world_sizes(3, 6)]

ROUNDS, EVERY, SLOW, CHUNK = 6, 2, 0.4, 0.01


def test_slow_evaluation_stays_out_of_the_latencies(tmp_path_factory, monkeypatch):
    original = Objective.eval_metrics

    def slow(self, model):
        time.sleep(SLOW)
        return original(self, model)

    monkeypatch.setattr(Objective, "eval_metrics", slow)
    path = shared_path(tmp_path_factory, "eval.h5")
    workers = MPI.COMM_WORLD.size - 1
    run_mpigc(path, [f"run.rounds={ROUNDS}", "run.verify=true", f"run.eval_every={EVERY}", "run.target_loss=10.0",
                     'code.scheme="crc"', "code.load=2", f"delays.chunk_time={CHUNK}", "delays.shift=0.0",
                     'workload.model="logistic"', "workload.features=10", f"workload.samples={40 * workers}",
                     "workload.step=1.0"])

    def check():
        (run,) = read_runs(path)
        r = run.tables["rounds"]
        evaluated = np.flatnonzero(np.isfinite(r["eval_loss"]))
        if evaluated.tolist() != list(range(EVERY - 1, ROUNDS, EVERY)):
            yield f"evaluated rounds {evaluated.tolist()}"
        if not np.isfinite(r["eval_accuracy"][evaluated]).all() or not (0 < r["eval_loss"][evaluated]).all():
            yield f"eval rows {r['eval_loss'].tolist()} {r['eval_accuracy'].tolist()}"
        if r["latency"].max() >= SLOW / 2:
            yield f"latencies {r['latency'].tolist()} contain the {SLOW} s evaluation"
        if run.attrs["master_wall_s"] < len(evaluated) * SLOW:
            yield f"rank 0's loop ({run.attrs['master_wall_s']:.2f} s) did not run {len(evaluated)} evaluations"
        # the target (above any logistic loss at the first evaluation) is reached at the first evaluated round
        want = float(np.sum(r["latency"][:EVERY]))
        if not np.isclose(run.attrs["summary_target_s"], want) or run.attrs["summary_target_rounds"] != EVERY:
            yield f"time to target {run.attrs['summary_target_s']} / {run.attrs['summary_target_rounds']}, want {want}"

    assert_all(verdict(check))
