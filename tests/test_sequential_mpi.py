"""Sequential schemes end to end on MPI (PROTOCOLS §4.2): jobs table and exact job gradients.

    mpiexec -n 5 python -m mpi4py -m pytest --with-mpi -m mpi -q -x tests/test_sequential_mpi.py

Passes at any world size ≥ 5 (m = size − 1 workers); checked at 5, 9 and 17.
"""
from __future__ import annotations

import numpy as np
import pytest
from mpi4py import MPI

from mpigc import results
from mpitools import assert_all, run_mpigc, shared_path, verdict

pytestmark = pytest.mark.mpi(min_size=5)


def overrides(m: int) -> list[str]:
    # d = 20 000: a worker's round message holds W − 1 + B slots of d + 1 floats (480 KB for m-sgc),
    # far above the 64 KiB rendezvous threshold, while 600 samples keep verification's data in memory.
    return [
        'code.scheme=["sr-sgc", "m-sgc"]', "code.B=1", "code.W=3", "code.lambda=2", "code.mu=1",
        'delays.model="bursty"', "delays.B=1", "delays.W=3", "delays.lambda=2", "delays.factor=4",
        "delays.chunk_time=0.05", "run.rounds=6", "run.verify=true", "workload.samples=600",
        "workload.features=20000", 'run.detail="full"',
    ]


def test_sequential_schemes_on_mpi(tmp_path_factory):
    m = MPI.COMM_WORLD.size - 1
    path = shared_path(tmp_path_factory, "seq.h5")
    run_mpigc(path, overrides(m))

    def check():
        runs = results.read_runs(path)
        if [r.name for r in runs] != ["sr-sgc", "m-sgc"]:
            yield f"runs {[r.name for r in runs]}"
        for run in runs:
            rounds, jobs = run.tables["rounds"], run.tables["jobs"]
            if len(rounds) != 6 + run.attrs["T_seq"]:
                yield f"{run.name}: {len(rounds)} rounds"
            if sorted(jobs["job"]) != list(range(6)) or np.any(jobs["round_done"] < 0):
                yield f"{run.name}: jobs {jobs}"
            if np.any(jobs["round_done"] > jobs["job"] + run.attrs["T_seq"]):
                yield f"{run.name}: a job decoded after its deadline"
            err = rounds["grad_error"][~np.isnan(rounds["grad_error"])]
            if err.size < 1 or np.max(err) > 1e-9:
                yield f"{run.name}: grad_error {err}"
            if not np.all(np.isfinite(jobs["loss"])):
                yield f"{run.name}: loss {jobs['loss']}"
            if run.attrs["backend"] != "mpi" or run.attrs["workers"] != m:
                yield f"{run.name}: attrs {run.attrs['backend']}, {run.attrs['workers']}"
            if "events" not in run.tables or run.tables["events"].size == 0:
                yield f"{run.name}: no events"

    assert_all(verdict(check))
