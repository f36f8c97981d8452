"""bcc under ``mpiexec``: exact decodes, and the same per-round draws as the simulator.

Run as ``mpiexec -n N python -m mpi4py -m pytest --with-mpi tests/test_bcc_mpi.py``
(N ≥ 3). A deterministic straggler model registered here on every rank
(``bcc-staircase``: worker w takes (1 + w) chunk times per chunk) orders the
messages by worker, so which message of each batch comes first, how many are
heard before the exact decode and which rounds never cover every batch are
functions of the draws alone; the MPI run must match the simulator's run of
the same config round by round, and the prediction made here from
``stream(seed, "bcc", round)``.
"""
from __future__ import annotations

import io

import numpy as np
import pytest
from mpi4py import MPI
from mpitools import assert_all, run_mpigc, shared_path, verdict

from mpigc.codes.bcc import batch_draws
from mpigc.config import load_config
from mpigc.delays import MODELS, DelayModel, StragglerModel
from mpigc.results import read_runs
from mpigc.sim.driver import simulate

pytestmark = pytest.mark.mpi(min_size=3)

STAIRCASE = "bcc-staircase"
FEATURES = 100_000
CHUNK = 0.05  # s: workers finish 50 ms apart, far beyond MPI's jitter
TIMEOUT = 0.6  # s: a round whose draws miss a batch ends here, approximate
ROUNDS = 8
BATCHES = 2
TOL = 1e-9


@MODELS.register(STAIRCASE)
class Staircase(StragglerModel):
    """Worker w takes (1 + w) chunk times per chunk, in every round: arrivals ordered by worker."""

    def slowdown(self, rnd: int, positions: int) -> np.ndarray:
        """Return 1 + w for worker w at every position."""
        return np.broadcast_to(1.0 + np.arange(self.workers), (positions, self.workers)).copy()


def _overrides(m: int) -> list[str]:
    samples = 4 * BATCHES
    return [f"run.rounds={ROUNDS}", "run.verify=true", f"run.round_timeout={TIMEOUT}", 'run.detail="full"',
            'code.scheme="bcc"', f"code.chunks={BATCHES}", f"code.batches={BATCHES}", f"code.workers={m}",
            f'delays.model="{STAIRCASE}"', f"delays.chunk_time={CHUNK}", "delays.failures=0.1",
            f"workload.features={FEATURES}", f"workload.samples={samples}", f"workload.step={0.5 * samples / FEATURES}"]


def _predicted(config, m: int) -> list[tuple[int, int, list[int]]]:
    """Per round from the draws alone: (status, messages heard, workers whose message is used)."""
    failed = DelayModel(config.delays, config.run.seed, m).failed
    out = []
    for rnd in range(ROUNDS):
        draws = batch_draws(config.run.seed, rnd, m, BATCHES)
        alive = [w for w in range(m) if not failed(rnd)[w]]
        first = {}
        for w in alive:  # fastest first: lower index
            first.setdefault(int(draws[w]), w)
        if len(first) == BATCHES:
            last = max(first.values())
            out.append((0, sum(1 for w in alive if w <= last), sorted(first.values())))
        else:
            out.append((1 if first else 2, len(alive), sorted(first.values())))
    return out


def test_bcc_decodes_exactly_with_the_simulators_draws(tmp_path_factory):
    m = MPI.COMM_WORLD.size - 1
    path = shared_path(tmp_path_factory, "bcc.h5")
    run_mpigc(path, _overrides(m))

    def check():
        (run,) = read_runs(path)
        r, ev = run.tables["rounds"], run.tables["events"]
        config = load_config(None, _overrides(m), backend="sim")
        sim_path = str(tmp_path_factory.mktemp("bccsim") / "sim.h5")
        simulate(config, sim_path, log=io.StringIO())
        (sim,) = read_runs(sim_path)
        s, sev = sim.tables["rounds"], sim.tables["events"]
        if run.attrs.get("backend") != "mpi" or len(r) != ROUNDS or len(s) != ROUNDS:
            yield f"backend {run.attrs.get('backend')}, {len(r)} MPI rounds, {len(s)} simulated"
            return
        exact = r["status"] == 0
        if not exact.any() or np.nanmax(r["grad_error"][exact]) > TOL:
            yield f"statuses {r['status'].tolist()}, grad_error {r['grad_error'].tolist()}"
        for rnd, (status, messages, used) in enumerate(_predicted(config, m)):
            got = []
            for rows, events in ((r, ev), (s, sev)):
                mine = events[(events["round"] == rnd) & ~events["stale"]]
                got.append((int(rows["status"][rnd]), int(rows["messages"][rnd]),
                            sorted(int(w) for w in mine["worker"][mine["used"]])))
            if got[0] != (status, messages, used) or got[1] != (status, messages, used):
                yield f"round {rnd}: predicted {(status, messages, used)}, MPI {got[0]}, simulator {got[1]}"
        # approximate rounds decode the same sum of covered batches in both backends
        if not np.allclose(r["grad_error"], s["grad_error"], rtol=1e-6, atol=1e-12, equal_nan=True):
            yield f"grad_error MPI {r['grad_error'].tolist()} vs simulator {s['grad_error'].tolist()}"
        late = r["status"] != 0
        if np.any(r["latency"][late] < TIMEOUT):
            yield f"approximate rounds ended before the timeout: {r['latency'][late].tolist()}"

    assert_all(verdict(check))
