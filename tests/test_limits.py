"""Limits up front: endless waits, seeds past 2^64, bad names and sizes that cannot fit are bad input.

Each case runs the real command line in a child process and checks what a
user sees: exit code 2, one ``mpigc: error:`` line naming the key, no output
file, and that the child neither took long nor grew (its own peak RSS, from
``os.wait4`` in a small intermediate process): a size check that came after
the allocation would show here.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from helpers import mpirun, own_lines, own_mpiexec

from mpigc.config import load_config
from mpigc.config.limits import BUDGET_ENV, estimate, memory_budget
from mpigc.errors import InputError
from mpigc.results import read_runs

#: a child that checked its input before allocating stays near the interpreter's size (about 80 MB)
MAX_RSS_MB = 300
#: seconds a refused command may take (startup and the checks, on a loaded 2-core CI machine)
MAX_SECONDS = 15

BAD = [
    (["--set", "run.round_timeout=inf"], "run.round_timeout"),
    (["--set", "run.round_timeout=1e300"], "run.round_timeout"),
    (["--set", "run.flush_seconds=inf"], "run.flush_seconds"),
    (["--set", 'code.decode="approx"', "--set", "code.deadline=inf"], "code.deadline"),
    (["--set", 'code.decode="approx"', "--set", "code.deadline=-1"], "code.deadline"),
    (["--set", 'code.scheme=["crc", {scheme="partial", decode="approx", deadline=inf}]'], "code.scheme[1].deadline"),
    (["--set", "run.seed=18446744073709551616"], "run.seed"),
    (["--set", 'code.name="a\\u0000b"'], "code.name"),
    (["--set", 'code.scheme=["crc", {scheme="crc", name="x/y"}]'], "code.name"),
    (["--set", "code.workers=1000000000"], "code.workers"),
    (["--set", "code.workers=200000", "--set", "code.load=2"], "code.workers"),
    (["--set", "workload.features=100000000000", "--set", "run.verify=true"], "workload.features"),
    (["--set", "run.rounds=100000000000"], "run.rounds"),
]


#: Runs the command given after it and writes the command's own peak RSS (KB) to the file named in argv[1].
#: Linux keeps a process's peak RSS across exec, and a child forked from this test process starts from
#: the test process's size (hundreds of MB after the large-gradient tests in the same xdist worker), so
#: the measured command is forked from this small, freshly exec'ed interpreter instead.
_MEASURE = """
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
with open(sys.argv[1], "w") as fh:
    fh.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def _child(args: list[str], tmp: Path, env: dict[str, str] | None = None) -> tuple[int, str, str, float, float]:
    """Run ``python -m mpigc ARGS``; return exit code, stdout, stderr, wall seconds and its peak RSS (MB)."""
    import time

    out, err, peak = tmp / "stdout", tmp / "stderr", tmp / "peak-rss-kb"
    start = time.perf_counter()
    with open(out, "w") as o, open(err, "w") as e:
        proc = subprocess.Popen([sys.executable, "-c", _MEASURE, str(peak), sys.executable, "-m", "mpigc", *args],
                                stdout=o, stderr=e, env={**os.environ, **(env or {})}, start_new_session=True)
    killer = threading.Timer(60, lambda: os.killpg(proc.pid, signal.SIGKILL))
    killer.start()
    try:
        proc.wait()
    finally:
        killer.cancel()
    return (proc.returncode, out.read_text(), err.read_text(), time.perf_counter() - start,
            int(peak.read_text()) / 1024)


def _refused(result: tuple[int, str, str, float, float], key: str) -> None:
    code, _, stderr, seconds, rss = result
    lines = stderr.strip().splitlines()
    assert code == 2, stderr
    assert len(lines) == 1 and lines[0].startswith("mpigc: error: ") and key in lines[0], stderr
    assert "Traceback" not in stderr
    assert seconds < MAX_SECONDS and rss < MAX_RSS_MB, (seconds, rss)


@pytest.mark.parametrize("args,key", BAD)
def test_simulate_refuses_before_anything(tmp_path, args, key):
    out = tmp_path / "r.h5"
    result = _child(["simulate", *args, "--out", str(out)], tmp_path)
    _refused(result, key)
    assert not out.exists() and result[1] == ""


@pytest.mark.parametrize("args,key", BAD)
def test_validate_refuses_the_same(tmp_path, args, key):
    _refused(_child(["validate", *args], tmp_path), key)


def test_plan_checks_sizes_before_planning(tmp_path):
    _refused(_child(["plan", "--set", "code.workers=1000000000"], tmp_path), "code.workers")


def test_name_with_a_slash_is_refused(tmp_path):
    out = tmp_path / "r.h5"
    _refused(_child(["simulate", "--name", "/", "--set", 'code.scheme="crc"', "--out", str(out)], tmp_path), "--name")
    assert not out.exists()


def test_the_largest_seed_works_end_to_end(tmp_path):
    out = tmp_path / "r.h5"
    code, _, stderr, *_ = _child(["simulate", "--set", "run.rounds=3", "--set", 'code.scheme="crc"',
                                       "--set", f"run.seed={2**64 - 1}", "--out", str(out)], tmp_path)
    assert code == 0, stderr
    (run,) = read_runs(out)
    assert run.attrs["seed"] == 2**64 - 1 and run.tables["rounds"].size == 3
    code, stdout, stderr, *_ = _child(["info", str(out)], tmp_path)
    assert code == 0 and "crc" in stdout, stderr


def test_budget_comes_from_the_machine_or_the_environment(monkeypatch):
    monkeypatch.delenv(BUDGET_ENV, raising=False)
    budget, source = memory_budget()
    assert 0 < budget <= os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") and source
    monkeypatch.setenv(BUDGET_ENV, "1.5G")
    assert memory_budget() == (int(1.5 * 2**30), f"${BUDGET_ENV}")
    monkeypatch.setenv(BUDGET_ENV, "lots")
    with pytest.raises(InputError, match=BUDGET_ENV):
        memory_budget()


def test_estimate_grows_as_m_times_n_and_a_small_budget_refuses(monkeypatch):
    monkeypatch.delenv(BUDGET_ENV, raising=False)
    small = estimate(load_config(None, ["code.workers=100", "code.load=2"]))["simulator"]
    large = estimate(load_config(None, ["code.workers=1000", "code.load=2"]))["simulator"]
    plan = [next(size for key, _, size in terms if key == "code.workers") for terms in (small, large)]
    assert plan[1] == 100 * plan[0]                    # 3 entries x 9 bytes x m x N
    mpi = estimate(load_config(None, ["code.workers=4", "run.verify=true"], backend="mpi"))
    assert set(mpi) == {"rank 0", "worker"}
    assert any("accumulator" in what for _, what, _ in mpi["rank 0"])
    monkeypatch.setenv(BUDGET_ENV, "64K")
    with pytest.raises(InputError, match=r"^code\.workers: needs at least .* of \$MPIGC_MEMORY_BUDGET"):
        load_config(None, ["code.workers=100", "code.load=2"])


# ----------------------------------------------------------------------------- under mpiexec

MPI_BAD = [
    (["--set", "run.round_timeout=inf"], "run.round_timeout"),
    (["--set", "run.seed=18446744073709551616"], "run.seed"),
    (["--set", 'code.scheme=["crc", {scheme="crc", name="x/y"}]'], "code.name"),
    (["--set", "workload.features=100000000000"], "workload.features"),
    (["--name", "/", "--set", 'code.scheme="crc"'], "--name"),
]


@own_mpiexec
@pytest.mark.parametrize("args,key", MPI_BAD)
def test_run_under_mpiexec_refuses_on_every_rank(tmp_path, args, key):
    out = tmp_path / "r.h5"
    proc, seconds = mpirun(3, "-m", "mpigc", "run", "--set", "run.rounds=3", *args, "--out", str(out), cwd=tmp_path)
    lines = own_lines(proc.stderr)
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("mpigc: error: ") and key in lines[0], proc.stderr
    assert not out.exists() and seconds < 30


@own_mpiexec
def test_the_largest_seed_runs_under_mpiexec(tmp_path):
    out = tmp_path / "r.h5"
    proc, _ = mpirun(3, "-m", "mpigc", "run", "--set", "run.rounds=3", "--set", 'code.scheme="crc"',
                     "--set", f"run.seed={2**64 - 1}", "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (run,) = read_runs(out)
    assert run.attrs["seed"] == 2**64 - 1 and run.tables["rounds"].size == 3


def test_a_bcc_worker_is_counted_with_every_chunk():
    """bcc workers hold all N chunks' data (they draw a batch per round), not their load's."""
    def worker_data(scheme: str) -> int:
        cfg = load_config(None, [f'code.scheme="{scheme}"', "code.workers=8", "code.load=2", "run.verify=true",
                                 "workload.samples=8000"], backend="mpi", world_size=9)
        return sum(size for _, what, size in estimate(cfg)["worker"] if "chunks of" in what)

    assert worker_data("bcc") == 4 * worker_data("crc")  # 8 chunks held vs a load of 2
