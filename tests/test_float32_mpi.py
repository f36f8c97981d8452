"""float32 under ``mpiexec``: exact rounds to the float32 tolerance, half the bytes, the automatic timeout.

Run as ``mpiexec -n N python -m mpi4py -m pytest --with-mpi tests/test_float32_mpi.py``
at any N ≥ 3. The same config runs in float32 and float64 with real
compute, no injected delay and no ``run.round_timeout`` (the automatic one
must let every round decode); rank 0 reads both files.
"""
from __future__ import annotations

import numpy as np
import pytest
from mpi4py import MPI
from mpitools import assert_all, run_mpigc, shared_path, verdict

from mpigc.core.metrics import EXACT_RTOL
from mpigc.results import read_runs

pytestmark = pytest.mark.mpi(min_size=3)

ROUNDS = 6
FEATURES = 20_000
ENTRIES = ("crc", "uncoded", "p2")
SCHEMES = 'code.scheme=["crc", "uncoded", {scheme = "partial", parts = 2, name = "p2"}]'


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict:
    m = MPI.COMM_WORLD.size - 1
    out = {}
    for dtype in ("float32", "float64"):
        path = shared_path(tmp_path_factory, f"{dtype}.h5")
        run_mpigc(path, [f"run.rounds={ROUNDS}", "run.verify=true", 'run.detail="full"', SCHEMES,
                         f"code.load={min(m, 2)}", f"workload.features={FEATURES}", f"workload.samples={8 * m}",
                         f'workload.dtype="{dtype}"', 'delays.model="none"', 'delays.compute="real"'])
        out[dtype] = path
    return out


def test_float32_exact_rounds_within_tolerance(files):
    def check():
        runs = {r.name: r for r in read_runs(files["float32"])}
        if list(runs) != list(ENTRIES):
            yield f"runs {list(runs)} != {list(ENTRIES)}"
        for name, run in runs.items():
            rounds = run.tables["rounds"]
            if not np.array_equal(rounds["round"], np.arange(ROUNDS)):
                yield f"{name}: rounds {rounds['round'].tolist()}"
                continue
            if not np.all(rounds["status"] == 0):  # no injected delay, no timeout set: every round decodes
                yield f"{name}: statuses {rounds['status'].tolist()}"
            err = rounds["grad_error"]
            if not (np.all(np.isfinite(err)) and err.max() <= EXACT_RTOL["float32"]):
                yield f"{name}: grad_error {err.tolist()} above {EXACT_RTOL['float32']:g}"
            if not np.all(np.isfinite(rounds["loss"])) or rounds["loss"][-1] >= rounds["loss"][0]:
                yield f"{name}: the loss did not fall: {rounds['loss'].tolist()}"

    assert_all(verdict(check))


def test_float32_messages_carry_half_the_bytes(files):
    def check():
        runs32 = {r.name: r for r in read_runs(files["float32"])}
        runs64 = {r.name: r for r in read_runs(files["float64"])}
        for name in ENTRIES:
            e32, e64 = runs32[name].tables["events"], runs64[name].tables["events"]
            fresh32, fresh64 = e32[~e32["stale"]], e64[~e64["stale"]]
            if len(fresh32) == 0 or len(fresh64) == 0:
                yield f"{name}: no events"
                continue
            if set(fresh32["nbytes"].tolist()) != {int(b) // 2 for b in set(fresh64["nbytes"].tolist())}:
                yield f"{name}: nbytes {set(fresh32['nbytes'].tolist())} vs {set(fresh64['nbytes'].tolist())}"

    assert_all(verdict(check))


def test_automatic_timeout_recorded(files):
    def check():
        for run in read_runs(files["float32"]):
            attrs = run.attrs
            if attrs.get("round_timeout_auto") is not True:
                yield f"{run.name}: round_timeout_auto = {attrs.get('round_timeout_auto')}"
            compute, messages, timeout = (float(attrs.get(k, np.nan)) for k in
                                          ("chunk_compute_s", "round_message_s", "round_timeout_s"))
            if not (compute > 0 and messages > 0):  # real compute was timed; messages assumed at 100 MB/s
                yield f"{run.name}: chunk_compute_s {compute}, round_message_s {messages}"
            if not timeout >= 10 * (messages + compute):
                yield f"{run.name}: round_timeout_s {timeout} below 10 x (compute + messages)"

    assert_all(verdict(check))
