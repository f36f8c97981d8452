"""SIGTERM mid-run, as SLURM sends it at a time limit or on ``scancel``.

Serial tests: each starts ``mpiexec -n 4 python -m mpigc run`` in its own
session (``MPIEXEC_TIMEOUT`` and a subprocess timeout as outer limits),
waits until rounds are running, sends SIGTERM either to ``mpiexec`` (which
forwards it to every rank) or straight to every rank, and checks: the job
ends within 10 s with a non-zero code, every round finished before the
signal is in the file, and the run carries ``interrupted = "SIGTERM"``,
which ``mpigc info`` shows. Skipped without ``mpiexec`` or inside an MPI job.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import OWN_MPIEXEC, child_env, job_ranks, mpiexec_command

from mpigc.results import read_runs

pytestmark = OWN_MPIEXEC

# d = 100 000: results are rendezvous sends, so pending sends are in flight when the signal comes
RUN = ["-m", "mpigc", "run", "--set", "run.rounds=100000", "--set", "code.load=2",
       "--set", "workload.features=100000", "--set", "workload.samples=60", "--set", "delays.chunk_time=0.01"]
PROGRESS = re.compile(r": (\d+)/100000 rounds")


def _interrupt(tmp_path: Path, target: str, extra: list[str],
               scheme: str = "crc", sig: int = signal.SIGTERM) -> tuple[subprocess.Popen, float, int, str]:
    """Start the job, wait for progress, SIGTERM ``target``; return (proc, seconds to exit, rounds seen, stderr)."""
    out = tmp_path / "r.h5"
    err_path = tmp_path / "stderr.txt"
    with open(err_path, "w") as err, open(tmp_path / "stdout.txt", "w") as stdout:
        proc = subprocess.Popen(mpiexec_command(4, *RUN, "--set", f'code.scheme="{scheme}"', *extra, "--out", str(out)),
                                stdout=stdout, stderr=err,
                                cwd=tmp_path, env=child_env(), start_new_session=True)
        try:
            deadline = time.monotonic() + 60
            seen = 0
            while seen < 20 and time.monotonic() < deadline:  # progress lines come about once a second
                assert proc.poll() is None, err_path.read_text()[-2000:]
                seen = max([int(k) for k in PROGRESS.findall(err_path.read_text())] or [0])
                time.sleep(0.05)
            assert seen >= 20, "the run did not get going within 60 s: " + err_path.read_text()[-2000:]
            if target == "mpiexec":
                os.kill(proc.pid, sig)
            else:
                ranks = job_ranks(proc.pid)
                assert sorted(ranks) == [0, 1, 2, 3], ranks
                for pid in ranks.values():
                    os.kill(pid, signal.SIGTERM)
            start = time.monotonic()
            try:
                proc.wait(timeout=30)
            finally:
                seconds = time.monotonic() - start
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return proc, seconds, seen, err_path.read_text()


def _check_file(out: Path, seen: int, name: str = "crc", sig: str = "SIGTERM") -> np.ndarray:
    (run,) = read_runs(out)
    assert run.name == name
    assert run.attrs["interrupted"] == sig
    rounds = run.tables["rounds"]
    assert rounds.size >= seen, f"{rounds.size} rounds written, {seen} were done before the signal"
    assert np.array_equal(rounds["round"], np.arange(rounds.size))
    assert np.all(np.isfinite(rounds["latency"]) & (rounds["latency"] > 0))
    if name == "crc":  # the sequential runtime keeps its own summary
        assert run.attrs["summary_rounds"] == rounds.size and run.attrs["master_wall_s"] > 0
    info = subprocess.run([sys.executable, "-m", "mpigc", "info", str(out)], capture_output=True, text=True,
                          timeout=60)
    assert info.returncode == 0, info.stderr
    assert f"# {name}: interrupted by {sig} after {rounds.size} round(s)" in info.stdout, info.stdout
    return rounds


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_to_mpiexec_writes_every_finished_round(tmp_path, sig):
    # nothing reaches the file by time before the signal: every round in it was written on the signal
    proc, seconds, seen, err = _interrupt(tmp_path, "mpiexec", ["--set", "run.flush_seconds=1000"], sig=sig)
    assert proc.returncode != 0 and seconds < 10, (proc.returncode, seconds, err[-2000:])
    name = signal.Signals(sig).name
    _check_file(tmp_path / "r.h5", seen, sig=name)
    # rank 0's own line about the interruption is not asserted here: a signalled mpiexec
    # stops forwarding the ranks' output as it goes down, and drops it about one time in four
    assert "Traceback" not in err, err[-2000:]


def test_sigterm_to_every_rank(tmp_path):
    proc, seconds, seen, err = _interrupt(tmp_path, "ranks", [])
    assert proc.returncode == 128 + signal.SIGTERM and seconds < 10, (proc.returncode, seconds, err[-2000:])
    # the file is rank 0's account (marked, every finished round): its stderr line "... marked
    # interrupted" is not asserted, since MPI_Abort can end the launcher before it forwards that
    # line (seen once in a CI run and once in three local runs, with the file marked every time)
    assert "Traceback" not in err, err[-2000:]
    _check_file(tmp_path / "r.h5", seen)


def test_sigterm_to_a_sequential_run(tmp_path):
    """The sequential runtime writes through the same file: its running run is marked too."""
    proc, seconds, seen, err = _interrupt(tmp_path, "mpiexec", [], scheme="gc-seq")
    assert proc.returncode != 0 and seconds < 10, (proc.returncode, seconds, err[-2000:])
    assert "Traceback" not in err, err[-2000:]
    _check_file(tmp_path / "r.h5", seen, "gc-seq")


def test_rounds_reach_the_file_by_time_during_the_run(tmp_path):
    """With the file held open by rank 0, a reader sees rounds written within about a second."""
    out = tmp_path / "r.h5"
    proc = subprocess.Popen(mpiexec_command(4, *RUN, "--set", 'code.scheme="crc"', "--out", str(out)),
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, cwd=tmp_path, env=child_env(), start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        counts = []
        while len(counts) < 3 and time.monotonic() < deadline:
            assert proc.poll() is None
            try:
                runs = read_runs(out)
            except Exception:  # noqa: BLE001 - not created yet, or caught mid-write
                runs = []
            if runs and runs[0].tables["rounds"].size and (not counts or runs[0].tables["rounds"].size > counts[-1]):
                counts.append(runs[0].tables["rounds"].size)
            time.sleep(0.2)
        assert len(counts) == 3, f"the file did not grow three times within 60 s: {counts}"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
