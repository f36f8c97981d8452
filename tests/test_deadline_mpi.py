"""Approximate decoding at a deadline on MPI, against the simulator on the same seed (docs/protocols.md#the-round).

    mpiexec -n 5 python -m mpi4py -m pytest --with-mpi -m mpi -q -x tests/test_deadline_mpi.py

Passes at any world size ≥ 3 (m = size − 1). Chunks last ``chunk_time``, or
six times that for a worker-round drawn slow (``bimodal``, p = 1.5 / m, so
at any m some rounds decode exactly and some end at the deadline). Every
exact decode in the simulator falls at 1 or 2 chunk times, every slow
message at 6 or more, and the deadline at 3.5: the statuses of the two
backends may differ only if the runtime lags the simulator by 75 ms,
which scheduling noise on a loaded 2-core machine rarely reaches (lags of
50 ms were seen at a load average of 16). MPI rounds last at most the deadline plus a few
milliseconds, and nothing heard after it enters a decode or its counts.
"""
from __future__ import annotations

import io

import numpy as np
import pytest
from mpi4py import MPI
from mpitools import assert_all, run_mpigc, shared_path, verdict

from mpigc import results
from mpigc.config import load_config
from mpigc.sim.driver import simulate

pytestmark = pytest.mark.mpi(min_size=3)

ROUNDS = 24
FEATURES = 100_000
CHUNK_TIME = 0.05
DEADLINE = 3.5 * CHUNK_TIME
#: median overshoot of the streamed rounds ending at the deadline (the issue's bound)
MEDIAN_OVERSHOOT = 0.005
#: most of them end within this; no bound on the worst: on a 2-core machine shared with
#: other jobs (load average 26) the scheduler stalled rank 0 for up to half a second, once
#: in about 90 deadline rounds (measured overshoots: median 0.2-1 ms, p90 2-6 ms)
SPREAD_OVERSHOOT, WITHIN = 0.010, 0.8
#: the request transport's second phase is one round trip (a worker answers at its next stop check)
SECOND_PHASE = 0.025
AGREEMENT = 0.9
#: the request transport's second phase (one round trip) comes on top of the deadline, as in the simulator
SCHEMES = ('code.scheme=["partial", "crc", {scheme = "partial", parts = 2, transport = "request", '
           'name = "request-l2"}]')
STREAMED = ("partial", "crc")
NAMES = ("partial", "crc", "request-l2")


def _overrides(m: int) -> list[str]:
    return [f"run.rounds={ROUNDS}", "run.round_timeout=5.0", 'run.detail="full"', SCHEMES,
            "code.load=2", 'code.decode="approx"', f"code.deadline={DEADLINE}", f"workload.features={FEATURES}",
            f"workload.samples={2 * m}", 'delays.model="bimodal"', f"delays.p={min(0.5, 1.5 / m):.4f}",
            "delays.factor=6", f"delays.chunk_time={CHUNK_TIME}"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[float, dict, dict, dict]:
    """(deadline, MPI rounds, MPI events, simulator rounds), tables per scheme, on rank 0."""
    world = MPI.COMM_WORLD
    m = world.size - 1
    mpi_path, sim_path = shared_path(tmp_path_factory, "mpi.h5"), shared_path(tmp_path_factory, "sim.h5")
    run_mpigc(mpi_path, _overrides(m))
    mpi_rounds, mpi_events, sim_rounds = {}, {}, {}
    if world.rank == 0:
        for run in results.read_runs(mpi_path):
            mpi_rounds[run.name], mpi_events[run.name] = run.tables["rounds"], run.tables["events"]
        simulate(load_config(None, [*_overrides(m), f"code.workers={m}"], backend="sim"), sim_path,
                 log=io.StringIO())
        sim_rounds = {run.name: run.tables["rounds"] for run in results.read_runs(sim_path)}
    return DEADLINE, mpi_rounds, mpi_events, sim_rounds


def test_rounds_end_at_the_deadline(runs):
    deadline, mpi_rounds, _, _ = runs

    def check():
        if list(mpi_rounds) != list(NAMES):
            yield f"runs {list(mpi_rounds)}, expected {list(NAMES)}"
        for name, r in mpi_rounds.items():
            if not np.array_equal(r["round"], np.arange(ROUNDS)):
                yield f"{name}: rounds {r['round'].tolist()}"
            over = r["latency"] - deadline
            late = r["status"] != 0
            print(f"\n{name}: deadline {deadline * 1e3:.1f} ms, statuses {np.bincount(r['status'], minlength=3)}, "
                  f"overshoot of deadline rounds (ms): median {np.median(over[late]) * 1e3 if late.any() else 0:.2f},"
                  f" max {over.max() * 1e3:.2f}")
            if not late.any():
                continue
            if name in STREAMED:
                if np.median(over[late]) > MEDIAN_OVERSHOOT:
                    yield f"{name}: median overshoot {np.median(over[late]) * 1e3:.1f} ms of the deadline rounds"
                if np.mean(over[late] <= SPREAD_OVERSHOOT) < WITHIN:
                    yield f"{name}: overshoots (ms) {np.round(np.sort(over[late]) * 1e3, 1).tolist()}: fewer than " \
                          f"{WITHIN:.0%} within {SPREAD_OVERSHOOT * 1e3:.0f} ms"
            elif np.median(over[late]) > SECOND_PHASE:
                yield f"{name}: median second phase after the deadline {np.median(over[late]) * 1e3:.1f} ms"
            if np.min(over[late]) < 0:
                yield f"{name}: a round decoded approximately {-np.min(over[late]) * 1e3:.1f} ms before the deadline"

    assert_all(verdict(check))


def test_statuses_agree_with_the_simulator(runs):
    _, mpi_rounds, _, sim_rounds = runs

    def check():
        if list(mpi_rounds) != list(NAMES) or list(sim_rounds) != list(NAMES):
            yield f"runs {list(mpi_rounds)} (mpi) and {list(sim_rounds)} (simulator), expected {list(NAMES)}"
            return
        both = np.concatenate([mpi_rounds[n]["status"] for n in sorted(mpi_rounds)])
        sim = np.concatenate([sim_rounds[n]["status"] for n in sorted(mpi_rounds)])
        if not (np.any(sim == 0) and np.any(sim != 0)):
            yield f"the deadline does not split the rounds: simulator statuses {sim.tolist()}"
        for name in sorted(mpi_rounds):
            a, b = mpi_rounds[name]["status"], sim_rounds[name]["status"]
            agree = float(np.mean(a == b))
            if agree < AGREEMENT:
                yield f"{name}: statuses agree in {agree:.0%} of rounds\n  mpi {a.tolist()}\n  sim {b.tolist()}"
        if both.size != 3 * ROUNDS:
            yield f"{both.size} rounds"

    assert_all(verdict(check))


def test_nothing_heard_after_the_deadline_is_decoded_or_counted(runs):
    deadline, mpi_rounds, mpi_events, _ = runs

    def check():
        if list(mpi_rounds) != list(NAMES):
            yield f"runs {list(mpi_rounds)}, expected {list(NAMES)}"
        for name, r in mpi_rounds.items():
            ev = mpi_events[name]
            fresh = ev[~ev["stale"]]
            first = fresh[fresh["task"] >= 0]  # second-phase answers (task −1) come after the decode moment
            if first.size and first["t_arrive"].max() > deadline:
                yield f"{name}: a message heard {first['t_arrive'].max() * 1e3:.1f} ms into a round entered it"
            if ev["used"][ev["stale"]].any():
                yield f"{name}: a stale message was used"
            counts = np.bincount(fresh["round"], minlength=ROUNDS)
            if not np.array_equal(counts, r["messages"]):
                yield f"{name}: fresh events {counts.tolist()} != messages {r['messages'].tolist()}"
            heard = np.zeros(ROUNDS, dtype=int)
            for rnd in range(ROUNDS):
                mine = fresh[fresh["round"] == rnd]
                heard[rnd] = sum(int(mine["task"][mine["worker"] == w].max()) + 1 for w in np.unique(mine["worker"]))
            if not np.array_equal(heard, r["chunks_done"]):
                yield f"{name}: chunks heard of {heard.tolist()} != chunks_done {r['chunks_done'].tolist()}"

    assert_all(verdict(check))
