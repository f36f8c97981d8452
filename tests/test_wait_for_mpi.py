"""``code.wait_for`` under mpiexec: rank 0 waits for the same workers as the simulator (docs/protocols.md#wait_for).

Run as ``mpiexec -n N python -m mpi4py -m pytest --with-mpi tests/test_wait_for_mpi.py`` (N = 3 and 5).
The ``constant`` model makes worker 0 twenty times slower than the others in
every round, so with ``wait_for = m − 1`` both backends must end every round
on the other workers' last messages, never hear worker 0 in time, and decode
the same messages (same status, messages and coef_error; grad_error equal to
float precision), at a gradient length of 100 000.
"""
from __future__ import annotations

import io

import numpy as np
import pytest
from mpi4py import MPI
from mpitools import assert_all, run_mpigc, shared_path, verdict

from mpigc.config import load_config
from mpigc.results import read_runs
from mpigc.sim.driver import simulate

pytestmark = pytest.mark.mpi(min_size=3)

ROUNDS = 3
CHUNK = 0.02


def _heard(run) -> list[set[tuple[int, int]]]:
    """Per round, the (worker, task) of every message heard in time."""
    ev = run.tables["events"]
    fresh = ev[~ev["stale"]]
    return [{(int(w), int(t)) for w, t in zip(fresh["worker"][fresh["round"] == r], fresh["task"][fresh["round"] == r])}
            for r in range(ROUNDS)]


@pytest.mark.parametrize("scheme, features", [('["uncoded"]', 100_000), ('["stochastic"]', 50)])
def test_mpi_waits_for_the_workers_the_simulator_waits_for(tmp_path_factory, scheme, features):
    m = MPI.COMM_WORLD.size - 1
    overrides = [f"run.rounds={ROUNDS}", "run.verify=true", 'run.detail="full"', "run.round_timeout=5.0",
                 f"code.scheme={scheme}", "code.rescale=true", "code.load=2", f"code.wait_for={m - 1}",
                 'delays.model="constant"', "delays.slow=[0]", "delays.factor=20", f"delays.chunk_time={CHUNK}",
                 f"workload.features={features}", f"workload.samples={4 * m}"]
    path = shared_path(tmp_path_factory, "wait.h5")
    run_mpigc(path, overrides)

    def check():
        sim_path = path.replace(".h5", "-sim.h5")
        simulate(load_config(None, [*overrides, f"code.workers={m}"], backend="sim"), sim_path, log=io.StringIO())
        (mpi,), (sim,) = read_runs(path), read_runs(sim_path)
        a, b = mpi.tables["rounds"], sim.tables["rounds"]
        if len(a) != ROUNDS or len(b) != ROUNDS:
            yield f"{len(a)} MPI rounds, {len(b)} simulated"
            return
        for field in ("status", "messages", "chunks_done"):
            if not np.array_equal(a[field], b[field]):
                yield f"{field}: MPI {a[field].tolist()}, simulator {b[field].tolist()}"
        if not np.allclose(a["coef_error"], b["coef_error"], rtol=1e-12, atol=1e-15):
            yield f"coef_error: MPI {a['coef_error'].tolist()}, simulator {b['coef_error'].tolist()}"
        if not np.allclose(a["grad_error"], b["grad_error"], rtol=1e-6, atol=1e-12):
            yield f"grad_error: MPI {a['grad_error'].tolist()}, simulator {b['grad_error'].tolist()}"
        waited, simulated = _heard(mpi), _heard(sim)
        if waited != simulated:
            yield f"messages heard in time: MPI {waited}, simulator {simulated}"
        if any(w == 0 for heard in waited for w, _ in heard):
            yield "a round heard the 20x slower worker 0 in time"
        if len({w for w, _ in waited[0]}) != m - 1:
            yield f"round 0 heard workers {sorted(waited[0])}, not the m - 1 = {m - 1} fast ones"
        # the fast workers finish in (their chunks) x CHUNK; worker 0 would need 20 times as long
        if a["latency"].max() > 0.5 * 20 * CHUNK:
            yield f"latencies {a['latency'].tolist()} waited for worker 0"

    assert_all(verdict(check))
