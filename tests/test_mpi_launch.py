"""``mpiexec … python -m mpigc run`` as a user runs it: exit codes, errors, aborts, killed jobs.

Serial tests (no MPI marker): each starts its own ``mpiexec`` in a
subprocess, with ``MPIEXEC_TIMEOUT`` and a subprocess timeout as the outer
limits. Skipped when no ``mpiexec`` is found, and inside an MPI job (a
nested ``mpiexec`` under ``--with-mpi`` would inherit the job's PMI).
"""
from __future__ import annotations

import os
import signal
import subprocess
import textwrap
import time

import numpy as np
import pytest
from helpers import MPIEXEC_TIMEOUT, OWN_MPIEXEC, TIMEOUT, child_env, mpiexec_command, mpirun, own_lines

from mpigc.results import read_runs

pytestmark = OWN_MPIEXEC


@pytest.mark.parametrize("extra,key", [
    (["--set", "code.workers=4"], "code.workers"),       # 3 ranks cannot serve 4 workers
    (["--set", "code.lamda=1"], "code.lamda"),           # unknown key (did you mean code.lambda?)
    (["--set", "run.rounds=0"], "run.rounds"),           # value out of range
])
def test_bad_input_exits_2_with_one_line_and_no_file(tmp_path, extra, key):
    out = tmp_path / "r.h5"
    proc, _ = mpirun(3, "-m", "mpigc", "run", *extra, "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = own_lines(proc.stderr)
    assert len(lines) == 1 and key in lines[0], proc.stderr
    assert lines[0].startswith("mpigc: error:"), proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert not out.exists()


ABORT_SCRIPT = textwrap.dedent("""
    import argparse
    import sys

    from mpi4py import MPI

    from mpigc.mpi import launch, worker

    if MPI.COMM_WORLD.rank == 2:
        original = worker.Worker._work

        def _work(self, rnd, *args):
            if rnd == 3:
                raise RuntimeError("injected failure on rank 2")
            return original(self, rnd, *args)

        worker.Worker._work = _work
    sys.exit(launch.main(argparse.Namespace(config=None, overrides=sys.argv[1:], out=None, name=None)))
""")


def test_exception_on_a_worker_aborts_the_job(tmp_path):
    script = tmp_path / "fail_on_rank_2.py"
    script.write_text(ABORT_SCRIPT)
    # d = 100 000: results are rendezvous sends, so a rank left waiting would hang the job
    overrides = ["run.rounds=200", 'code.scheme="partial"', "code.load=2", "workload.features=100000",
                 "workload.samples=12", "delays.chunk_time=0.02"]
    proc, seconds = mpirun(4, str(script), *overrides, cwd=tmp_path)
    assert proc.returncode != 0, proc.stderr[-2000:]
    assert "injected failure on rank 2" in proc.stderr and "RuntimeError" in proc.stderr, proc.stderr[-2000:]
    assert "rank 2 failed; aborting the job" in proc.stderr, proc.stderr[-2000:]
    assert "running partial" in proc.stderr  # it failed mid-run, not at start-up
    assert seconds < MPIEXEC_TIMEOUT / 2, f"the abort took {seconds:.1f} s (a hang ended by MPIEXEC_TIMEOUT?)"


AFTER_MAIN_SCRIPT = textwrap.dedent("""
    import argparse
    import sys

    from mpi4py import MPI

    from mpigc.mpi import launch

    world = MPI.COMM_WORLD
    comm = world.Dup()
    code = launch.main(argparse.Namespace(config=None, overrides=sys.argv[1:], out=None, name=None), comm=comm)
    comm.Free()
    assert code == 0
    if world.rank == 1:
        raise RuntimeError("failure after the run on rank 1")
    world.Barrier()  # the other ranks wait here: only an abort ends them
""")


def test_abort_handler_outlives_a_freed_communicator(tmp_path):
    """``main(args, comm)``'s handler must not call ``Abort`` on the caller's communicator, freed by then."""
    script = tmp_path / "fail_after_main.py"
    script.write_text(AFTER_MAIN_SCRIPT)
    proc, seconds = mpirun(3, str(script), "run.rounds=2", 'code.scheme="crc"', "code.load=2", cwd=tmp_path)
    assert proc.returncode != 0
    assert "failure after the run on rank 1" in proc.stderr and "rank 1 failed; aborting the job" in proc.stderr, \
        proc.stderr[-2000:]
    assert "Error in sys.excepthook" not in proc.stderr, proc.stderr[-2000:]
    assert seconds < MPIEXEC_TIMEOUT / 2, f"the abort took {seconds:.1f} s (a hang ended by MPIEXEC_TIMEOUT?)"


def test_killed_job_leaves_a_readable_file(tmp_path):
    out = tmp_path / "killed.h5"
    err_path = tmp_path / "stderr.txt"
    cmd = mpiexec_command(3, "-m", "mpigc", "run", "--set", "run.rounds=10000", "--set", "run.flush_every=1",
                   "--set", 'code.scheme="partial"', "--set", "code.load=2", "--set", "delays.chunk_time=0.1",
                   "--out", str(out))
    with open(err_path, "w") as err, open(tmp_path / "stdout.txt", "w") as stdout:
        proc = subprocess.Popen(cmd, stdout=stdout, stderr=err, cwd=tmp_path, env=child_env(), start_new_session=True)
        try:
            deadline = time.monotonic() + 60
            while "running partial" not in err_path.read_text() and time.monotonic() < deadline:
                assert proc.poll() is None, err_path.read_text()
                time.sleep(0.1)
            assert "running partial" in err_path.read_text(), "the run did not start within 60 s"
            time.sleep(2.0)  # a few rounds of ~0.2-0.4 s, each flushed
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=TIMEOUT)
    assert proc.returncode == -signal.SIGKILL
    # every rank is gone with mpiexec: the file stops changing
    time.sleep(1.0)
    before = out.stat()
    time.sleep(1.0)
    after = out.stat()
    assert (before.st_size, before.st_mtime_ns) == (after.st_size, after.st_mtime_ns), "a rank is still writing"

    (run,) = read_runs(out)
    assert run.attrs["scheme"] == "partial" and run.attrs["backend"] == "mpi"
    rounds = run.tables["rounds"]
    k = rounds.size
    assert k >= 1, "no round was flushed"
    assert k < 10000
    assert np.array_equal(rounds["round"], np.arange(k))
    assert np.all(np.isfinite(rounds["latency"]) & (rounds["latency"] > 0))
    assert np.all(np.isin(rounds["status"], (0, 1, 2)))
    assert np.all(rounds["messages"] >= 1) and np.all(np.isfinite(rounds["loss"]))
    events, workers = run.tables["events"], run.tables["workers"]
    assert events.size >= k and np.all(events["round"] < k + 1)
    fresh = events[~events["stale"]]
    assert np.all(fresh["round"] < k) and np.all(np.isfinite(fresh["t_arrive"]))
    assert np.array_equal(np.bincount(fresh["round"], minlength=k), rounds["messages"])
    # reports of round t reach rank 0 during round t + 1: at most one round behind
    assert workers.size >= 2 * (k - 1) and np.all(workers["round"] < k)


def test_default_config_runs_and_prints_the_summary(tmp_path):
    proc, _ = mpirun(5, "-m", "mpigc", "run", "--set", "run.rounds=5", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [line for line in proc.stdout.strip().splitlines() if not line.startswith("#")]
    header = lines[0].split()
    assert header[:3] == ["run", "scheme", "rounds"] and "speedup" in header, proc.stdout
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(rows) == {"partial", "ablation", "crc"}, proc.stdout
    assert all(row[2] == "5" for row in rows.values()), proc.stdout
    assert rows["partial"][-1] == "1.00", proc.stdout  # speed-up against the first entry
    assert "4 workers" in proc.stderr
    # without --out the runs go to ./mpigc-results.h5
    assert "# wrote 3 run(s) to mpigc-results.h5" in proc.stdout
    runs = read_runs(tmp_path / "mpigc-results.h5")
    assert [r.name for r in runs] == ["partial", "ablation", "crc"]
    assert all(r.tables["rounds"].size == 5 and r.attrs["workers"] == 4 for r in runs)
