"""A worker stopped with SIGSTOP for 15 s under ``mpiexec``: the other workers keep decoding.

Serial test (no MPI marker): it starts its own ``mpiexec -n 5 python -m
mpigc run`` (crc, s = 1, 4 workers), finds rank 2's process among
mpiexec's descendants by its environment (``PMI_RANK`` under MPICH,
``OMPI_COMM_WORLD_RANK`` under Open MPI), stops it a few seconds into
the run and resumes it 15 s later. Before control traffic was bounded, the
STARTs and STOPs queued for the stopped rank filled MPICH's shared-memory
send queue after about 32 rounds, and every round after that was
undecodable (0 messages, the round timeout) until it resumed: about 70
undecodable rounds and a sixth of the round rate. Now the rate holds, the
rounds of the freeze decode exactly (crc with s = 1 needs any 3 of 4
workers), and the resumed worker joins the current round instead of
replaying every round it missed.

The START carries the model, d = 20 000 doubles (160 KB): a rendezvous
send, which to a stopped rank stays pending until it resumes.
``benchmarks/frozen_worker.py`` runs the same job and prints the numbers.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from helpers import MPIEXEC, OWN_MPIEXEC, child_env, descendants, rank_of

from mpigc.results import read_runs

FREEZE = 15.0  # seconds rank 2 is stopped
ROUNDS = 500
#: one round is two 20 ms chunks (model "none": no random delay), so at most 25 rounds/s:
#: 500 rounds outlast a stop that starts a few seconds in, on any machine
SETTINGS = ("code.scheme=crc", "code.load=2", f"run.rounds={ROUNDS}", "run.round_timeout=0.2",
            "run.detail=workers", "delays.model=none", "delays.chunk_time=0.02",
            "workload.features=20000", "workload.samples=100", "workload.step=1e-4")
UNDECODABLE_MAX = 3  # rounds around the stop and the resume

pytestmark = [
    *OWN_MPIEXEC,
    pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds ranks through /proc"),
]


@dataclass
class Frozen:
    """What a run with one stopped rank showed, on the parent's clock (s since launch)."""

    returncode: int
    stderr: str
    stopped: float  # when SIGSTOP was sent
    resumed: float  # when SIGCONT was sent
    progress: list[tuple[float, int]] = field(default_factory=list)  # (time, rounds done) per progress line

    def done_at(self, t: float) -> float:
        """Rounds done at time ``t``, interpolated between progress lines."""
        times, done = np.array(self.progress, dtype=float).T
        return float(np.interp(t, times, done))

    def rate(self, t0: float, t1: float) -> float:
        """Rounds per second between ``t0`` and ``t1``."""
        return (self.done_at(t1) - self.done_at(t0)) / (t1 - t0)


def freeze_run(out: Path, *, rank: int = 2, freeze: float = FREEZE, after: float = 2.5,
               settings: tuple[str, ...] = SETTINGS, mpiexec: list[str] | None = None, ranks: int = 5,
               env: dict[str, str] | None = None, limit: float = 200.0) -> Frozen:
    """Run ``mpigc run`` on ``ranks`` ranks; stop ``rank`` ``after`` s past the first round for ``freeze`` s.

    The stopped process is always resumed (also when this fails), and the job
    killed if it outlives ``limit`` seconds.
    """
    # MPIEXEC is also what benchmarks/frozen_worker.py offers as its default launcher
    cmd = [*(mpiexec or [MPIEXEC]), "-n", str(ranks), sys.executable, "-m", "mpigc", "run", "--out", str(out)]
    for item in settings:
        cmd += ["--set", item]
    env = child_env(env, mpiexec_timeout=limit)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    progress: list[tuple[float, int]] = []
    lines: list[str] = []

    def read() -> None:
        for line in proc.stderr:
            got = re.search(r": (\d+)/\d+ rounds", line)
            if got:
                progress.append((time.perf_counter() - t0, int(got.group(1))))
            else:
                lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    stopped = resumed = float("nan")
    targets: list[int] = []
    ok = False
    try:
        while not progress and proc.poll() is None and time.perf_counter() - t0 < limit:
            time.sleep(0.05)
        targets = [pid for pid in descendants(proc.pid) if rank_of(pid) == rank]
        assert targets, f"no process of rank {rank} among mpiexec's descendants"
        time.sleep(after)
        stopped = time.perf_counter() - t0
        for pid in targets:
            os.kill(pid, signal.SIGSTOP)
        time.sleep(freeze)
        ok = True
    finally:
        resumed = time.perf_counter() - t0
        for pid in targets:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        if not ok:  # mpiexec forwards SIGTERM to the ranks: the job ends instead of running on
            proc.terminate()
        try:
            proc.wait(timeout=30 if not ok else max(1.0, limit + 30 - resumed))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    reader.join(timeout=5)
    proc.stderr.close()
    return Frozen(proc.returncode, "".join(lines), stopped, resumed, progress)


def test_frozen_worker_does_not_stall_the_others(tmp_path):
    out = tmp_path / "frozen.h5"
    got = freeze_run(out)
    assert got.returncode == 0, got.stderr[-3000:]
    assert got.done_at(got.resumed) < ROUNDS, "the run ended before the worker resumed: the test froze nothing"
    (run,) = read_runs(out)
    rounds, workers = run.tables["rounds"], run.tables["workers"]
    assert np.array_equal(rounds["round"], np.arange(ROUNDS)), "a round is missing"
    undecodable = np.flatnonzero(rounds["status"] == 2)
    assert undecodable.size <= UNDECODABLE_MAX, f"undecodable rounds: {undecodable.tolist()}"

    # Rounds went on at their usual rate while rank 2 was stopped (before the bound: a sixth).
    before = got.rate(got.progress[0][0], got.stopped)
    during = got.rate(got.stopped, got.resumed)
    assert during >= 0.5 * before, f"{during:.1f} rounds/s while stopped, {before:.1f} before"

    # Worker 1 (rank 2) was not started on the rounds of its stop, and did not replay them:
    # it has no workers row for most of them, and those rounds decoded exactly without it.
    frozen_rounds = got.done_at(got.resumed) - got.done_at(got.stopped)
    missed = np.setdiff1d(rounds["round"], workers["round"][workers["worker"] == 1])
    assert missed.size >= 0.5 * frozen_rounds, f"{missed.size} rounds skipped of {frozen_rounds:.0f} while stopped"
    assert np.count_nonzero(rounds["status"][missed] == 0) >= missed.size - UNDECODABLE_MAX

    # It rejoined: it reports rounds after the stop, and every later round decodes.
    assert np.any(workers["round"][workers["worker"] == 1] > missed.max()), "worker 1 never rejoined"
    assert np.all(rounds["status"][missed.max() + 1:] != 2)
