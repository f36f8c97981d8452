"""``nested`` on the MPI runtime: ``mpiexec -n N python -m mpi4py -m pytest --with-mpi tests/test_nested_mpi.py``.

Passes at any world size ≥ 5: the ladder follows m = size − 1 (4 → [0, 1, 3],
8 → [0, 1, 3, 7], 16 → [0, 1, 3, 7, 15], 6 → [0, 1, 5]). One worker
is silent every round, so level 0 never decodes and stage messages beyond
the first are needed. Rank 0 reads the HDF5 file and every rank asserts the
verdict it broadcasts, so all ranks pass or fail together.
"""
from __future__ import annotations

import numpy as np
import pytest
from mpi4py import MPI
from mpitools import assert_all, run_mpigc, shared_path, verdict

from mpigc.results import read_runs

pytestmark = pytest.mark.mpi(min_size=5)

FEATURES = 100_000
ROUNDS = 8
TOL = 1e-9
STOP_SLACK = 0.1  # s: a stopped worker's busy time may exceed the decode by the stop's delivery


def _ladder(m: int) -> list[int]:
    """Group sizes 1, p_1, p_1·p_2, … (smallest prime factors first) up to m, as tolerances."""
    out, n = [0], 1
    while n < m:
        n *= next(p for p in range(2, m // n + 1) if (m // n) % p == 0)
        out.append(n - 1)
    return out


@pytest.fixture(scope="module")
def nested_file(tmp_path_factory) -> str:
    world = MPI.COMM_WORLD
    path = shared_path(tmp_path_factory, "nested.h5")
    m = world.size - 1
    samples = 2 * m
    run_mpigc(path, [f"run.rounds={ROUNDS}", "run.verify=true", "run.round_timeout=10.0", 'run.detail="full"',
                'code.scheme="nested"', f"code.ladder={_ladder(m)}", f"workload.features={FEATURES}",
                f"workload.samples={samples}", f"workload.step={0.5 * samples / FEATURES}",
                'delays.model="shifted-exponential"', "delays.shift=1.0", "delays.chunk_time=0.02",
                "delays.fail_count=1"])
    return path


def test_exact_gradients_and_levels(nested_file):
    m = MPI.COMM_WORLD.size - 1
    ladder = _ladder(m)

    def check():
        (run,) = read_runs(nested_file)
        r, ev = run.tables["rounds"], run.tables["events"]
        if not np.array_equal(r["round"], np.arange(ROUNDS)):
            yield f"rounds {r['round'].tolist()}"
        if not np.all(r["status"] == 0):
            yield f"statuses {r['status'].tolist()} with one silent worker and tolerance {ladder[-1]}"
        if not (np.all(np.isfinite(r["grad_error"])) and r["grad_error"].max() <= TOL):
            yield f"grad_error {r['grad_error'].tolist()}"
        if not np.all((r["level"] >= 1) & (r["level"] < len(ladder))):
            yield f"levels {r['level'].tolist()} (level 0 cannot decode with a silent worker)"
        for row in r:
            level, rnd = int(row["level"]), int(row["round"])
            used = ev[(ev["round"] == rnd) & ev["used"]]
            n = ladder[level] + 1
            if len(used) != (m // n) * (level + 1):
                yield f"round {rnd}: {len(used)} used messages at level {level}"
            if not set(used["task"].tolist()) <= set(ladder[: level + 1]):  # stage ℓ ends at position s_ℓ
                yield f"round {rnd}: used tasks {sorted(set(used['task'].tolist()))} beyond level {level}"
            if {int(w) // n for w in used["worker"]} != set(range(m // n)):
                yield f"round {rnd}: used workers {used['worker'].tolist()} miss a level-{level} group"
            if used.size and used["t_arrive"].max() > row["latency"] + 1e-9:
                yield f"round {rnd}: a used message arrived after the decode"

    assert_all(verdict(check))


def test_stale_stage_messages_are_never_used(nested_file):
    def check():
        (run,) = read_runs(nested_file)
        ev = run.tables["events"]
        if (ev["stale"] & ev["used"]).any():
            yield f"{int((ev['stale'] & ev['used']).sum())} stale messages were used"
        fresh = ev[~ev["stale"]]
        keys = list(zip(fresh["round"].tolist(), fresh["worker"].tolist(), fresh["task"].tolist()))
        if len(set(keys)) != len(keys):
            yield "a fresh (round, worker, task) message was recorded twice"

    assert_all(verdict(check))


def test_workers_stop_when_told(nested_file):
    m = MPI.COMM_WORLD.size - 1
    load = _ladder(m)[-1] + 1

    def check():
        (run,) = read_runs(nested_file)
        r, w = run.tables["rounds"], run.tables["workers"]
        if len(w) != ROUNDS * m or int(w["failed"].sum()) != ROUNDS:
            yield f"workers table: {len(w)} rows, {int(w['failed'].sum())} failed"
            return
        latency = dict(zip(r["round"].tolist(), r["latency"].tolist()))
        live = w[~w["failed"]]
        stopped_early = late = 0
        for rnd in range(ROUNDS):
            mine = live[live["round"] == rnd]
            stopped_early += bool((mine["tasks_done"] < load).any())
            late += bool((mine["busy"] > latency[rnd] + STOP_SLACK).any())
        # without STOP every live worker would finish all its chunks (~2·load·chunk_time of work)
        if stopped_early < 0.75 * ROUNDS:
            yield f"only {stopped_early} of {ROUNDS} rounds had a worker stop before its last chunk"
        if late > ROUNDS // 4:
            yield f"{late} of {ROUNDS} rounds had a worker busy > {STOP_SLACK} s after the decode"
        if (live["tasks_done"] > load).any():
            yield "a worker reports more tasks than its load"

    assert_all(verdict(check))
