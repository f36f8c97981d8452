"""Rank 0's bound on control messages per worker (``Courier``): ``mpiexec -n N python -m mpi4py -m pytest --with-mpi``.

Passes at any world size ≥ 2. Rank 0 plays 40 rounds of START and STOP
to every worker while no worker acknowledges anything (its ``acked``
entries stay at -1, as for a stopped rank): each worker gets at most
``MAX_UNACKED`` rounds of them. Then the workers "catch up" (rank 0 marks
them acknowledged) and get the current round's START, the latest one
only; a START deferred in the middle of a round goes out through
``retry`` as soon as they catch up again. The workers receive every
control message up to END and send back what they got, in order.
"""
from __future__ import annotations

import time

import numpy as np
import pytest
from mpi4py import MPI
from mpitools import assert_all

from mpigc.mpi.mailbox import MAX_UNACKED, Courier
from mpigc.mpi.protocol import TAG_CONTROL, Kind, control

pytestmark = pytest.mark.mpi(min_size=2)

ROUNDS = 40


def _until_sent(courier: Courier, w: int, rnd: int, buf: np.ndarray) -> bool:
    """START(rnd) to ``w``, retried until its previous START has completed (the worker is receiving)."""
    if courier.start(w, rnd, buf):
        return True
    limit = time.monotonic() + 10.0
    while time.monotonic() < limit:
        if w in courier.retry():
            return True
        time.sleep(1e-3)
    return False


def _rank0(comm: MPI.Comm) -> list[str]:
    m = comm.size - 1
    acked = [-1] * m
    courier = Courier(comm, acked)
    problems = []
    for r in range(ROUNDS):
        buf = control(Kind.START, r, np.full(4, float(r)))
        for w in range(m):
            courier.start(w, r, buf)
        for w in range(m):
            courier.stop(w, r)
    for w in range(m):
        if not 0 <= courier.started[w] < MAX_UNACKED:
            problems.append(f"worker {w} was started on round {courier.started[w]} without acknowledging any")
        if courier.sent[w] > 2 * MAX_UNACKED:
            problems.append(f"{courier.sent[w]} control messages to silent worker {w}")
    if courier.deferred:
        problems.append(f"STARTs of closed rounds still deferred: {sorted(courier.deferred)}")
    # the workers catch up: the current round's START goes out at once (once the last one completed)
    now = control(Kind.START, ROUNDS, np.zeros(4))
    for w in range(m):
        acked[w] = courier.started[w]
        if not _until_sent(courier, w, ROUNDS, now):
            problems.append(f"worker {w} got no START after catching up")
        acked[w] = ROUNDS
    # silent again for MAX_UNACKED rounds: the next START waits, and goes out mid-round when they answer
    for r in range(ROUNDS + 1, ROUNDS + 1 + MAX_UNACKED):
        later = control(Kind.START, r, np.zeros(4))
        for w in range(m):
            _until_sent(courier, w, r, later)
    last = ROUNDS + 1 + MAX_UNACKED
    held = control(Kind.START, last, np.zeros(4))
    for w in range(m):
        if courier.start(w, last, held):
            problems.append(f"worker {w} got START({last}) with {MAX_UNACKED} rounds unacknowledged")
        acked[w] = last - 1
    if not all(_until_sent(courier, w, last, held) for w in range(m)) or courier.deferred:
        problems.append("a deferred START did not go out when its worker caught up")
    for w in range(m):
        courier.send(w, control(Kind.END, -1))
    got = comm.gather(None, root=0)
    courier.wait()
    tail = list(range(ROUNDS, last + 1))
    for w in range(m):
        seen = got[w + 1]
        starts = [r for k, r in seen if k == Kind.START]
        first = len(starts) - len(tail)  # the rounds started before the workers caught up
        if not 1 <= first <= MAX_UNACKED or starts != list(range(first)) + tail:
            problems.append(f"worker {w} got STARTs of rounds {starts}")
        stops = [r for k, r in seen if k == Kind.STOP]
        if stops != list(range(first)) or len(seen) != courier.sent[w] or seen[-1] != (Kind.END, -1):
            problems.append(f"worker {w} got {seen} ({courier.sent[w]} sent)")
    return problems


def _worker(comm: MPI.Comm) -> None:
    seen = []
    status = MPI.Status()
    while True:
        comm.Probe(source=0, tag=TAG_CONTROL, status=status)
        buf = np.empty(status.Get_count(MPI.DOUBLE))
        comm.Recv([buf, MPI.DOUBLE], source=0, tag=TAG_CONTROL)
        seen.append((int(buf[0]), int(buf[1])))
        if int(buf[0]) == Kind.END:
            break
    comm.gather(seen, root=0)


def test_control_messages_to_a_silent_worker_are_bounded():
    comm = MPI.COMM_WORLD.Dup()
    try:
        problems = _rank0(comm) if comm.rank == 0 else _worker(comm) or []
        problems = comm.bcast(problems, root=0)
    finally:
        comm.Free()
    assert_all(problems)
