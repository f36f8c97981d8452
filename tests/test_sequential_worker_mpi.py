"""The sequential worker alone on MPI: it stops between units, reports an abandoned round, idles asleep.

    mpiexec -n 3 python -m mpi4py -m pytest --with-mpi -m mpi -q -x tests/test_sequential_worker_mpi.py

World rank 0 plays the master and rank 1 one worker of a 4-worker m-sgc
code (any further ranks wait); passes at any world size ≥ 2.
"""
from __future__ import annotations

import time

import numpy as np
import pytest
from mpi4py import MPI

from mpigc.codes.sequential import build_sequential
from mpigc.config import load_config
from mpigc.delays import DelayModel
from mpigc.mpi.protocol import RESULT_HEADER, TAG_CONTROL, TAG_RESULT, Kind, control
from mpigc.mpi.sequential import SeqWorker, slot_payload
from mpigc.sequential_engine import SequentialEngine
from mpigc.workloads import make_workload
from mpitools import assert_all

pytestmark = pytest.mark.mpi(min_size=2)

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

    def chunk_gradient(self, theta: np.ndarray, unit: int) -> tuple[np.ndarray, float]:
        self.started.append(bool(self.comm.Iprobe(source=0, tag=TAG_CONTROL)))
        time.sleep(UNIT)
        return self.inner.chunk_gradient(theta, unit)


def setup():
    config = load_config(None, ['code.scheme="m-sgc"', "code.workers=4", "code.B=1", "code.W=3", "code.lambda=2",
                                'delays.compute="real"', 'delays.model="none"', "delays.chunk_time=0.001",
                                "workload.features=1000", "workload.samples=280"], backend="sim")
    code = config.codes[0]
    scheme = build_sequential(code, 4, config.run.seed)
    workload = make_workload(config.workload, scheme.units, config.run.seed)
    return config, scheme, workload


def master_side(pair: MPI.Comm, scheme, workload) -> list[str]:
    engine = SequentialEngine(scheme, 6, 1.0)
    for r in range(3):  # round 2: all three slots of worker 0 busy, 9 units
        jobs, kinds = engine.plan(r)
        engine.commit(r, np.zeros(scheme.m, dtype=bool), 0)
    payload = slot_payload(jobs[0], kinds[0], [workload.initial_model()] * scheme.slots, workload.dim)
    time.sleep(IDLE)
    pair.Send([control(Kind.START, 2, payload), MPI.DOUBLE], dest=1, tag=TAG_CONTROL)
    time.sleep(STOP_AFTER)
    pair.Send([control(Kind.STOP, 2), MPI.DOUBLE], dest=1, tag=TAG_CONTROL)
    report = np.empty(RESULT_HEADER + scheme.slots * (workload.dim + 1))
    pair.Recv([report, MPI.DOUBLE], source=1, tag=TAG_RESULT)
    pair.Send([control(Kind.END, -1), MPI.DOUBLE], dest=1, tag=TAG_CONTROL)
    final = np.empty(RESULT_HEADER)
    pair.Recv([final, MPI.DOUBLE], source=1, tag=TAG_RESULT)
    started, cpu, wall = pair.recv(source=1)
    problems = []
    if int(report[0]) != Kind.REPORT or int(report[1]) != 2 or report[6] != 0:
        problems.append(f"expected REPORT(2) with no task done, got header {report[:RESULT_HEADER]}")
    if not 1 <= len(started) < 9 or any(started):
        problems.append(f"units started (True: after STOP had reached the worker): {started}")
    if not STOP_AFTER - 0.01 <= report[4] < 9 * UNIT:
        problems.append(f"busy {report[4]:.3f} s")
    if int(final[0]) != Kind.FINAL:
        problems.append(f"last message kind {final[0]}")
    if cpu > 0.3 * wall:  # a worker spinning in Recv would use about all of it
        problems.append(f"worker used {cpu:.2f} s of CPU in {wall:.2f} s, mostly waiting")
    return problems


def test_worker_stops_between_units_reports_and_sleeps_while_idle():
    world = MPI.COMM_WORLD
    pair = world.Split(0 if world.rank < 2 else MPI.UNDEFINED, world.rank)
    problems: list[str] = []
    if pair != MPI.COMM_NULL:
        config, scheme, workload = setup()
        if pair.rank == 1:
            slow = SlowUnits(workload, pair)
            worker = SeqWorker(pair, scheme, DelayModel(config.delays, config.run.seed, scheme.m), slow, "real")
            worker.prepare()
            slow.started.clear()
            cpu0, wall0 = time.process_time(), time.perf_counter()
            worker.run()
            pair.send((slow.started, time.process_time() - cpu0, time.perf_counter() - wall0), dest=0)
        else:
            try:
                problems = master_side(pair, scheme, workload)
            except Exception as error:  # every rank must reach the verdict below
                problems = [f"{type(error).__name__}: {error}"]
        pair.Free()
    assert_all(world.bcast(problems, root=0))
