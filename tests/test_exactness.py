"""Exact means exact: a round counts as exact (status 0) only if its decode is numerically sound (issue 22).

Both backends decide through ``mpigc.core.policy.Soundness``: an exact
decode whose condition number is above ``cond_limit(dtype)``, or whose
verified error is above ``grad_tolerance(dtype)``, is status 3 (unsound); a
decode with NaN or infinity is status 4 (non-finite), warned once. Plug-ins
that raise or return a gradient of the wrong shape end the run with one line
naming them (exit 1). The MPI side is tests/test_plugin_failures_mpi.py.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import mpigc
from mpigc.core.policy import (
    APPROXIMATE,
    EXACT,
    NONFINITE,
    UNDECODABLE,
    UNSOUND,
    Soundness,
    cond_limit,
    grad_tolerance,
)
from mpigc.results import read_runs

ROOT = os.path.dirname(os.path.dirname(mpigc.__file__))
POLY_F4 = os.path.join(ROOT, "jobs", "configs", "f4-poly.toml")


def _simulate(tmp_path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "mpigc", "simulate", *args, "--out", "r.h5"], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=600)


def _own(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith(("simulating ", "  "))]


def test_the_thresholds_follow_the_dtype():
    assert grad_tolerance(np.float64) == 1e-6 and grad_tolerance(np.float32) == 1e-3
    assert cond_limit(np.float64) == pytest.approx(1e-6 / np.finfo(np.float64).eps)   # 4.5e9
    assert cond_limit(np.float32) == pytest.approx(1e-3 / np.finfo(np.float32).eps)   # 8.4e3
    with pytest.raises(ValueError, match="float16"):
        grad_tolerance(np.float16)


@pytest.mark.parametrize("status, cond, error, finite, expected", [
    (EXACT, 10.0, 1e-15, True, EXACT),
    (EXACT, np.nan, np.nan, True, EXACT),            # nothing solved, not verified
    (EXACT, 1e10, np.nan, True, UNSOUND),            # ill-conditioned
    (EXACT, 10.0, 2e-6, True, UNSOUND),              # verified error above the tolerance
    (EXACT, 10.0, 1e-15, False, NONFINITE),
    (APPROXIMATE, 1e12, 0.5, True, APPROXIMATE),     # approximate stays approximate
    (APPROXIMATE, 10.0, 0.5, False, NONFINITE),
    (UNDECODABLE, np.nan, np.nan, False, UNDECODABLE),
])
def test_soundness_judges_each_case(status, cond, error, finite, expected, capsys):
    assert Soundness(np.float64).judge(status, cond, error, finite) == expected


def test_float32_gradients_have_a_looser_limit():
    assert Soundness(np.float32).judge(EXACT, 10.0, 1e-4) == EXACT
    assert Soundness(np.float32).judge(EXACT, 1e4, np.nan) == UNSOUND


def test_poly_at_60_workers_never_calls_a_wrong_round_exact(tmp_path):
    proc = _simulate(tmp_path, POLY_F4, "--set", "code.workers=60", "--set", "workload.samples=600",
                     "--set", 'code.scheme="poly"', "--set", "run.rounds=20")
    assert proc.returncode == 0, proc.stderr
    (run,) = read_runs(tmp_path / "r.h5")
    rounds = run.tables["rounds"]
    assert rounds.size == 20 and np.all(np.isfinite(rounds["grad_error"]))
    exact = rounds["status"] == EXACT
    assert not np.any(rounds["grad_error"][exact] > grad_tolerance(np.float64))
    assert np.count_nonzero(rounds["status"] == UNSOUND) == 20       # cond ~1e21: none of them is sound
    assert "# poly: not exact: 20 unsound" in proc.stdout


def test_poly_at_small_m_stays_exact_and_within_the_tolerance(tmp_path):
    proc = _simulate(tmp_path, POLY_F4, "--set", "code.workers=8", "--set", "workload.samples=80",
                     "--set", 'code.scheme="poly"', "--set", "run.rounds=10")
    assert proc.returncode == 0, proc.stderr
    rounds = read_runs(tmp_path / "r.h5")[0].tables["rounds"]
    assert rounds.size == 10 and np.all(rounds["status"] == EXACT)
    assert np.all(rounds["grad_error"] <= grad_tolerance(np.float64)) and "not exact" not in proc.stdout


def test_poly_refuses_more_workers_than_it_can_plan(tmp_path):
    proc = _simulate(tmp_path, "--set", 'code.scheme="poly"', "--set", "code.workers=2000", "--set", "code.load=4",
                     "--set", "code.parts=2")
    lines = _own(proc.stderr)
    assert proc.returncode == 2 and len(lines) == 1 and "at most 100 workers" in lines[0], proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_nan_from_a_plugin_makes_rounds_non_finite_counted_and_warned_once(tmp_path):
    proc = _simulate(tmp_path, "--set", 'workload.model="tests.plugin_faulty:NanChunk"', "--set", 'code.scheme="crc"',
                     "--set", "run.rounds=12", "--set", "run.verify=true")
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in _own(proc.stderr) if "not finite" in line]
    assert len(warnings) == 1 and "status 4" in warnings[0]
    rounds = read_runs(tmp_path / "r.h5")[0].tables["rounds"]
    assert rounds.size == 12 and np.all(rounds["status"] == NONFINITE)   # chunk 1 is in every decode
    assert "12 with non-finite values" in proc.stdout and " 0.0 " in proc.stdout.splitlines()[1]


@pytest.mark.parametrize("plugin, words", [("Raising", ["failed computing chunk 1", "ZeroDivisionError"]),
                                           ("WrongShape", ["shape (1001,)", "expected (1000,)"])])
def test_a_failing_plugin_is_named_in_one_line_and_its_run_marked_failed(tmp_path, plugin, words):
    proc = _simulate(tmp_path, "--set", f'workload.model="tests.plugin_faulty:{plugin}"', "--set", 'code.scheme="crc"',
                     "--set", "run.rounds=5", "--set", "run.verify=true")   # the simulator computes only to verify
    lines = _own(proc.stderr)
    assert proc.returncode == 1 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert f"tests.plugin_faulty:{plugin}" in lines[0] and all(w in lines[0] for w in words), lines[0]
    (run,) = read_runs(tmp_path / "r.h5")
    assert run.attrs["interrupted"] == "failed"
