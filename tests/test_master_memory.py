"""Rank 0's memory grows with m, not with the load: ``mpiexec -n N python -m mpi4py -m pytest --with-mpi``.

Passes at any world size ≥ 3 (m = size − 1). δ − 1 consecutive workers are
slow, so every fast worker sends all δ of its messages before the decode
(the case where keeping every message until the round ends held about
m·δ vectors). A recording subclass of the master, patched into
``mpigc.mpi.single``, notes after every round how many vectors it kept at
most (``Master.peak_held``), how many receive buffers were in its hands at
once (``Inbox.peak_lent``) and how many wait in the pools.
"""
from __future__ import annotations

import numpy as np
import pytest
from helpers import runs_by_name
from mpi4py import MPI
from mpitools import assert_all, run_mpigc, shared_path, verdict

from mpigc.mpi import single
from mpigc.mpi.mailbox import POOL_KEEP
from mpigc.mpi.master import Master

#: loads 2 and min(6, m): at 3 ranks only load 2, at 9 and 13 the same loads {2, 6}; 6 and 13 cover both
pytestmark = [pytest.mark.mpi(min_size=3), pytest.mark.world_sizes(6, 13)]

FEATURES = 100_000
ROUNDS = 4
ENTRIES = ['"partial"', '{scheme = "partial", parts = 2, name = "partial-l2"}', '"crc"',
           '{scheme = "partial", parts = 2, transport = "request", name = "request-l2"}']
NAMES = ("partial", "partial-l2", "crc", "request-l2")


class RecordingMaster(Master):
    """The runtime's master, noting its memory after every round."""

    seen: list[dict] = []

    def round(self, rnd: int):
        rows = super().round(rnd)
        RecordingMaster.seen.append({"scheme": self.scheme.code.name or self.scheme.code.scheme,
                                     "load": int(self.scheme.plan.max_load), "chunks": self.scheme.plan.chunks,
                                     "peak_held": self.peak_held, "held": len(self.held),
                                     "peak_lent": self.inbox.peak_lent, "pooled": self.inbox.pooled})
        return rows


def _loads(m: int) -> list[int]:
    return sorted({2, min(6, m)})


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> tuple[list[dict], dict[int, str]]:
    world = MPI.COMM_WORLD
    m = world.size - 1
    RecordingMaster.seen = []
    original = single.Master  # the single-round regime builds rank 0's Master (mpigc.mpi.single)
    single.Master = RecordingMaster
    paths = {}
    try:
        for load in _loads(m):
            paths[load] = shared_path(tmp_path_factory, f"load{load}.h5")
            slow = list(range(load - 1))
            run_mpigc(paths[load], [f"run.rounds={ROUNDS}", "run.round_timeout=10.0", 'run.detail="full"',
                                    f"code.scheme=[{', '.join(ENTRIES)}]", f"code.load={load}",
                                    f"workload.features={FEATURES}", f"workload.samples={2 * m}",
                                    # chunks of 50 ms: the fast workers stay in step (within a chunk) even
                                    # at 17 ranks on 2 cores, where 10 ms chunks drifted apart
                                    'delays.model="constant"', f"delays.slow={slow}", "delays.factor=10",
                                    "delays.chunk_time=0.05"])
    finally:
        single.Master = original
    return RecordingMaster.seen, paths


def test_rank0_keeps_vectors_per_worker_not_per_message(records):
    seen, paths = records
    m = MPI.COMM_WORLD.size - 1

    def check():
        if len(seen) != ROUNDS * len(ENTRIES) * len(_loads(m)):
            yield f"{len(seen)} rounds recorded"
        for rec in seen:
            name, load = rec["scheme"], rec["load"]
            # partial at l = 1 applies or drops every vector on arrival; at l = 2 a chunk keeps at most its first
            # message until its second; crc and the request transport's answers: one per worker
            bound = {"partial": 0, "partial-l2": rec["chunks"], "crc": m, "request-l2": m}[name]
            if rec["peak_held"] > bound:
                yield f"{name}, load {load}: {rec['peak_held']} vectors kept at once (bound {bound})"
            if rec["held"]:
                yield f"{name}, load {load}: {rec['held']} vectors still held after the round"
            if rec["peak_lent"] > bound + m:
                yield f"{name}, load {load}: {rec['peak_lent']} buffers lent at once (bound {bound} + one batch of {m})"
            if rec["pooled"] > POOL_KEEP * m:
                yield f"{name}, load {load}: {rec['pooled']} pooled buffers (bound {POOL_KEEP * m})"
        for load, path in paths.items():
            for run in runs_by_name(path, NAMES).values():
                r, ev = run.tables["rounds"], run.tables["events"]
                if not np.all(r["status"] == 0):
                    yield f"{run.name}, load {load}: statuses {r['status'].tolist()}"
                fresh = ev[~ev["stale"]]
                # every fast worker's messages; their last ones tie with the decoding one and may come after it
                everything = (m - load + 1) * (load - 1) + 1
                # (the median round: one round in four may see a fast worker descheduled for a chunk)
                if run.name == "partial" and not np.median(np.bincount(fresh["round"])) >= everything:
                    yield f"{run.name}, load {load}: fresh messages per round {np.bincount(fresh['round']).tolist()}" \
                          f" < {everything}: the fast workers did not send their messages before the decode"

    assert_all(verdict(check))
