"""The sequential worker alone on MPI: it stops between units, reports an abandoned round, idles asleep.

    mpiexec -n 3 python -m mpi4py -m pytest --with-mpi -m mpi -q -x tests/test_sgc_worker_mpi.py

World rank 0 plays the master and rank 1 worker 0 of a 4-worker code
(any further ranks wait); passes at any world size ≥ 2.
"""
from __future__ import annotations

import time

import numpy as np
import pytest
from mpi4py import MPI
from mpitools import assert_all

from mpigc.codes.sgc import build_sequential
from mpigc.config import load_config
from mpigc.core.payload import RESULT_HEADER
from mpigc.core.sgc_engine import SequentialEngine
from mpigc.delays import DelayModel
from mpigc.mpi.protocol import TAG_CONTROL, TAG_RESULT, Kind, control
from mpigc.mpi.sgc import SeqWorker, slot_payload
from mpigc.workloads import make_workload

#: what it checks does not change with the world size: the two smallest default sizes (also Open MPI's in CI)
pytestmark = [pytest.mark.mpi(min_size=2), pytest.mark.world_sizes(3, 6)]

UNIT = 0.04  # seconds one unit's gradient takes (a sleep: the core stays free)
IDLE = 0.5  # seconds the worker waits for START
STOP_AFTER = 0.1  # seconds between START and STOP: about 3 of the round's 9 units


class SlowUnits:
    """A workload whose unit gradients take ``UNIT`` s; notes whether a control message waited at each start."""

    def __init__(self, inner, comm: MPI.Comm) -> None:
        self.inner, self.comm, self.dim = inner, comm, inner.dim
        self.started: list[bool] = []  # per unit started: was the round's end already waiting?

    def initial_model(self) -> np.ndarray:
        return self.inner.initial_model()

    def chunk_data(self, unit: int):
        return self.inner.chunk_data(unit)

    def chunk_rows(self, unit: int) -> int:
        return self.inner.chunk_rows(unit)

    def chunk_gradient(self, theta: np.ndarray, unit: int) -> tuple[np.ndarray, float]:
        # probed twice, as the worker does: MPICH's first Iprobe after a sleep may only progress
        waiting = self.comm.Iprobe(source=0, tag=TAG_CONTROL) or self.comm.Iprobe(source=0, tag=TAG_CONTROL)
        self.started.append(bool(waiting))
        time.sleep(UNIT)
        return self.inner.chunk_gradient(theta, unit)

    def chunk_gradient_blocks(self, theta: np.ndarray, unit: int, block_rows, should_stop=None):
        return self.chunk_gradient(theta, unit)  # one block: the stop checks between units are under test


def setup(overrides: list[str]):
    config = load_config(None, ["code.workers=4", 'delays.compute="real"', 'delays.model="none"',
                                "delays.chunk_time=0.001", *overrides], backend="sim")
    scheme = build_sequential(config.codes[0], 4, config.run.seed)
    workload = make_workload(config.workload, scheme.units, config.run.seed)
    return config, scheme, workload


def start_payload(scheme, workload, rnd: int) -> np.ndarray:
    """START(rnd) of worker 0 when no one straggled before."""
    engine = SequentialEngine(scheme, 6, 1.0)
    for r in range(rnd + 1):
        jobs, kinds = engine.plan(r)
        engine.commit(r, np.zeros(scheme.m, dtype=bool), 0)
    payload = slot_payload(jobs[0], kinds[0], [workload.initial_model()] * scheme.slots, workload.dim)
    return control(Kind.START, rnd, payload)


def one_stopped_round(pair: MPI.Comm, start: np.ndarray, stop_after: float, size: int) -> tuple:
    """Rank 0's side: START, STOP ``stop_after`` s later, the worker's REPORT, END, FINAL; (report, final)."""
    pair.Send([start, MPI.DOUBLE], dest=1, tag=TAG_CONTROL)
    time.sleep(stop_after)
    pair.Send([control(Kind.STOP, int(start[1])), MPI.DOUBLE], dest=1, tag=TAG_CONTROL)
    report = np.empty(size)
    pair.Recv([report, MPI.DOUBLE], source=1, tag=TAG_RESULT)
    pair.Send([control(Kind.END, -1), MPI.DOUBLE], dest=1, tag=TAG_CONTROL)
    final = np.empty(RESULT_HEADER)
    pair.Recv([final, MPI.DOUBLE], source=1, tag=TAG_RESULT)
    problems = []
    if int(report[0]) != Kind.REPORT or int(report[1]) != int(start[1]) or report[6] != 0:
        problems.append(f"expected REPORT({int(start[1])}) with no task done, got header {report[:RESULT_HEADER]}")
    if int(final[0]) != Kind.FINAL:
        problems.append(f"last message kind {final[0]}")
    return report, problems


def on_pair(worker_side, master_side) -> None:
    """Run ``worker_side(pair)`` on world rank 1 and ``master_side(pair)`` (its problems) on rank 0; assert."""
    world = MPI.COMM_WORLD
    pair = world.Split(0 if world.rank < 2 else MPI.UNDEFINED, world.rank)
    problems: list[str] = []
    if pair != MPI.COMM_NULL:
        try:
            if pair.rank == 1:
                worker_side(pair)
            else:
                problems = master_side(pair)
        except Exception as error:  # every rank must reach the verdict below
            problems = [f"rank {pair.rank}: {type(error).__name__}: {error}"]
        pair.Free()
    assert_all(world.bcast(problems, root=0))


def test_worker_stops_between_units_reports_and_sleeps_while_idle():
    """m-sgc round 2: 9 units of 40 ms, STOP after 0.1 s; the worker waited 0.5 s for START before."""
    config, scheme, workload = setup(['code.scheme="m-sgc"', "code.B=1", "code.W=3", "code.lambda=2",
                                      "workload.features=1000", "workload.samples=280"])

    def worker_side(pair):
        slow = SlowUnits(workload, pair)
        worker = SeqWorker(pair, scheme, DelayModel(config.delays, config.run.seed, scheme.m), slow, "real")
        worker.prepare()
        slow.started.clear()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        worker.run()
        pair.send((slow.started, time.process_time() - cpu0, time.perf_counter() - wall0), dest=0)

    def master_side(pair):
        start = start_payload(scheme, workload, 2)
        time.sleep(IDLE)
        report, problems = one_stopped_round(pair, start, STOP_AFTER, RESULT_HEADER)
        started, cpu, wall = pair.recv(source=1)
        if not 1 <= len(started) < 9 or any(started):
            problems.append(f"units started (True: after STOP had reached the worker): {started}")
        if not STOP_AFTER - 0.01 <= report[4] < 9 * UNIT:
            problems.append(f"busy {report[4]:.3f} s")
        if cpu > 0.3 * wall:  # a worker spinning in Recv would use about all of it
            problems.append(f"worker used {cpu:.2f} s of CPU in {wall:.2f} s, mostly waiting")
        return problems

    on_pair(worker_side, master_side)


def test_worker_stops_inside_a_long_unit():
    """gc-seq, one unit of 8000 MLP rows (0.1-0.5 s): STOP after 50 ms ends it between gradient blocks."""
    config, scheme, workload = setup(['code.scheme="gc-seq"', "code.load=1", 'workload.model="mlp"',
                                      "workload.features=200", "workload.hidden=500", "workload.samples=32000"])

    def worker_side(pair):
        worker = SeqWorker(pair, scheme, DelayModel(config.delays, config.run.seed, scheme.m), workload, "real")
        unit = int(scheme.plan.orders[0][0])
        workload.chunk_data(unit)
        tic = time.perf_counter()
        workload.chunk_gradient(workload.initial_model(), unit)
        unit_time = time.perf_counter() - tic
        worker.prepare()
        worker.run()
        pair.send((unit_time, worker.block_rows, workload.chunk_rows(unit)), dest=0)

    def master_side(pair):
        start = start_payload(scheme, workload, 0)
        report, problems = one_stopped_round(pair, start, 0.05, RESULT_HEADER)
        unit_time, block_rows, rows = pair.recv(source=1)
        if unit_time < 0.1 or block_rows is None or block_rows >= rows:
            problems.append(f"the unit is too fast to test blocks: {unit_time:.3f} s, {block_rows} of {rows} rows")
        elif report[4] > 0.5 * unit_time:
            problems.append(f"busy {report[4]:.3f} s for a unit of {unit_time:.3f} s stopped after 0.05 s")
        return problems

    on_pair(worker_side, master_side)
