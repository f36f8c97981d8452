"""Under ``mpiexec``: NaN from a plug-in makes rounds non-finite (status 4), a wrong-shaped gradient is named.

Serial tests that start their own ``mpiexec -n 4`` (skipped without one,
and inside an MPI job). The simulator's side is tests/test_exactness.py.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import mpigc
from mpigc.core.policy import NONFINITE
from mpigc.results import read_runs

ROOT = os.path.dirname(os.path.dirname(mpigc.__file__))
MPIEXEC = shutil.which("mpiexec", path=os.pathsep.join([os.path.dirname(sys.executable), os.environ["PATH"]]))
IN_MPI_JOB = any(k in os.environ for k in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK"))

pytestmark = [
    pytest.mark.skipif(MPIEXEC is None, reason="mpiexec not found next to python or on PATH"),
    pytest.mark.skipif(IN_MPI_JOB, reason="launches its own mpiexec: run serially, not under mpiexec"),
]


def _run(tmp_path, plugin: str, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])}
    cmd = [MPIEXEC, "-n", "4", sys.executable, "-m", "mpigc", "run", "--set",
           f'workload.model="tests.plugin_faulty:{plugin}"', "--set", 'code.scheme="crc"', "--set", "run.rounds=6",
           *extra, "--out", "r.h5"]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)


def test_nan_from_one_worker_makes_every_affected_round_non_finite_and_warns_once(tmp_path):
    proc = _run(tmp_path, "NanChunk", "--set", "run.verify=true")
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "not finite" in line]
    assert len(warnings) == 1
    rounds = read_runs(tmp_path / "r.h5")[0].tables["rounds"]
    assert rounds.size == 6 and np.all(rounds["status"] == NONFINITE)
    assert np.all(np.isnan(rounds["grad_error"]))            # no error against a true gradient that is NaN
    assert "6 with non-finite values" in proc.stdout


def test_a_gradient_of_the_wrong_shape_is_named_not_an_mpi_truncation(tmp_path):
    proc = _run(tmp_path, "WrongShape")
    lines = [line for line in proc.stderr.splitlines() if line.startswith("mpigc:")]
    assert proc.returncode == 1 and lines, proc.stderr
    assert all("tests.plugin_faulty:WrongShape" in line and "shape (1001,)" in line and "expected (1000,)" in line
               for line in lines), lines
    assert "Traceback" not in proc.stderr and "truncat" not in proc.stderr.lower()
