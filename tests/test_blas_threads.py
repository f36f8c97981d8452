"""BLAS threads pinned to one under run, simulate and tune unless the user set a count (issue 11)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from mpigc.blas_threads import THREAD_COUNT_VARIABLES

PROBE = ("from mpigc.blas_threads import pin_blas, thread_counts\n"
         "import numpy\n"  # BLAS loaded before the pin, as in a command that imported numpy first
         "print(pin_blas(), thread_counts(), [__import__('os').environ.get(v) for v in "
         "('OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS', 'MKL_NUM_THREADS')])")


def probe(**env) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in THREAD_COUNT_VARIABLES}
    out = subprocess.run([sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True,
                         check=True, timeout=60)
    return out.stdout.strip()


def test_pinned_to_one_thread_by_default():
    out = probe()
    assert out.startswith("True [") and "2" not in out.split("]")[0] and "['1', '1', '1']" in out


def test_user_choice_is_kept():
    out = probe(OPENBLAS_NUM_THREADS="2")
    assert out.startswith("False") and "['2', None, None]" in out


@pytest.mark.parametrize("command", ["simulate", "tune"])
def test_commands_pin(monkeypatch, tmp_path, command):
    import mpigc.blas_threads
    from mpigc.cli import main

    calls = []
    monkeypatch.setattr(mpigc.blas_threads, "pin_blas", lambda: calls.append(1) or True)
    trace = tmp_path / "t.csv"
    trace.write_text("\n".join(",".join(["1.0"] * 4) for _ in range(3)) + "\n")
    args = (["simulate", "--out", str(tmp_path / "s.h5"), "--set", "run.rounds=2"] if command == "simulate"
            else ["tune", str(trace), "--jobs", "2", "--workers", "4", "--lambda-max", "3"])
    assert main(args) == 0
    assert calls == [1]
