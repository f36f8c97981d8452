"""Readers of a running ``mpiexec … mpigc run`` job's file never make it fail, and see its rows grow.

Serial tests that start their own ``mpiexec`` (skipped without one, and
inside an MPI job), as tests/test_mpi_launch.py.
"""
from __future__ import annotations

import csv
import io
import subprocess
import sys
import time
from pathlib import Path

import h5py
from helpers import OWN_MPIEXEC, child_env, mpiexec_command, own_lines

from mpigc.results import ResultFile, read_runs, running_files

pytestmark = OWN_MPIEXEC

ROUNDS = 300


def _job(out: Path, *extra: str) -> subprocess.Popen:
    cmd = [*mpiexec_command(4), "-m", "mpigc", "run", "--set", 'code.scheme="crc"',
           "--set", f"run.rounds={ROUNDS}", "--set", "delays.chunk_time=0.005", "--set", "run.flush_seconds=0.3",
           "--out", str(out), *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=out.parent,
                            env=child_env())


def _info_rounds(path: Path) -> int | None:
    """Rounds ``mpigc info --csv`` reports for the file's run (None before the run shows)."""
    proc = subprocess.run([sys.executable, "-m", "mpigc", "info", str(path), "--csv"], capture_output=True,
                          text=True, env=child_env(), timeout=60)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    return int(rows[0]["rounds"]) if rows else None


def _wait_for(predicate, job: subprocess.Popen, limit: float = 60.0) -> None:
    end = time.monotonic() + limit
    while not predicate():
        assert job.poll() is None, "the job ended before readers could start"
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def test_readers_holding_the_file_and_info_in_a_loop_never_stop_the_run(tmp_path):
    out = tmp_path / "r.h5"
    job = _job(out)
    try:
        _wait_for(lambda: running_files(out) and out.exists(), job)
        side = running_files(out)[0]
        seen_swmr: list[int] = []
        # A notebook holding both files open with plain h5py (the result file) and in SWMR mode
        # (the running run) for 2.5 s: the writer never opens the result file, so nothing to collide.
        with h5py.File(out, "r") as held, h5py.File(side, "r", swmr=True) as running:
            assert "runs" in held
            ds = running["runs/crc/rounds"]
            end = time.monotonic() + 2.5
            while time.monotonic() < end:
                ds.refresh()
                seen_swmr.append(ds.shape[0])
                time.sleep(0.1)
        seen_info: list[int] = []
        while job.poll() is None:  # mpigc info in a loop until the job ends
            rounds = _info_rounds(out)
            if rounds is not None and job.poll() is None:
                seen_info.append(rounds)
        stdout, stderr = job.communicate(timeout=90)
    finally:
        if job.poll() is None:
            job.kill()
            job.communicate()
    assert job.returncode == 0, stderr
    assert "Traceback" not in stderr and f"wrote 1 run(s) to {out}" in stdout
    (run,) = read_runs(out)
    assert run.tables["rounds"].size == ROUNDS and sorted(run.tables["rounds"]["round"]) == list(range(ROUNDS))
    assert running_files(out) == [] and not Path(f"{out}.lock").exists()
    # the readers saw the rows grow while the job ran, never shrink
    assert seen_swmr == sorted(seen_swmr) and seen_swmr[-1] > seen_swmr[0], seen_swmr
    assert seen_info == sorted(seen_info) and len(set(seen_info)) >= 2, seen_info
    assert 0 < seen_info[0] and seen_info[-1] <= ROUNDS


def test_a_second_job_on_the_same_file_is_refused_before_work(tmp_path):
    out = tmp_path / "r.h5"
    first = _job(out)
    try:
        _wait_for(lambda: Path(f"{out}.lock").exists() and running_files(out), first)
        second = subprocess.run([*mpiexec_command(3), "-m", "mpigc", "run", "--set",
                                 "run.rounds=5", "--out", str(out)], capture_output=True, text=True,
                                env=child_env(), timeout=90)
        simulate = subprocess.run([sys.executable, "-m", "mpigc", "simulate", "--set", "run.rounds=5",
                                   "--out", str(out)], capture_output=True, text=True, env=child_env(), timeout=60)
        stdout, stderr = first.communicate(timeout=90)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    assert first.returncode == 0, stderr
    for proc in (second, simulate):
        lines = own_lines(proc.stderr)
        assert proc.returncode == 2 and len(lines) == 1, proc.stderr
        assert str(out) in lines[0] and f"pid {first.pid}" not in lines[0]  # names rank 0, not mpiexec
        assert "open for writing by another process (pid " in lines[0] and "on host" in lines[0], lines[0]
    assert [run.name for run in read_runs(out)] == ["crc"]        # the refused jobs wrote nothing
    assert read_runs(out)[0].tables["rounds"].size == ROUNDS


def test_a_run_job_is_refused_while_simulate_writes_the_file(tmp_path):
    out = tmp_path / "r.h5"
    first = subprocess.Popen([sys.executable, "-m", "mpigc", "simulate", "--set", 'code.scheme="crc"',
                              "--set", "run.rounds=40000", "--out", str(out)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=child_env())
    try:
        _wait_for(lambda: running_files(out), first)
        start = time.monotonic()
        second = subprocess.run([*mpiexec_command(3), "-m", "mpigc", "run", "--set",
                                 "run.rounds=5", "--out", str(out)], capture_output=True, text=True,
                                env=child_env(), timeout=90)
        took = time.monotonic() - start
        stdout, stderr = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    lines = own_lines(second.stderr)
    assert second.returncode == 2 and len(lines) == 1 and f"pid {first.pid} on host" in lines[0], second.stderr
    assert str(out) in lines[0] and took < 60
    assert first.returncode == 0, stderr
    assert [run.name for run in read_runs(out)] == ["crc"] and read_runs(out)[0].tables["rounds"].size == 40000


FULL_DISK = """
import resource, signal, sys
from mpi4py import MPI          # MPI's shared memory is set up before the limit
if MPI.COMM_WORLD.rank == 0:    # rank 0 writes the file: its writes past the limit fail with EFBIG
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
from mpigc.cli import main
sys.exit(main(sys.argv[2:]))
"""


def test_disk_full_during_a_run_ends_the_job_with_one_line_and_keeps_earlier_runs(tmp_path):
    out = tmp_path / "r.h5"
    first = subprocess.run([sys.executable, "-m", "mpigc", "simulate", "--set", 'code.scheme="crc"',
                            "--set", "run.rounds=50", "--out", str(out)], capture_output=True, text=True,
                           env=child_env(), timeout=60)
    assert first.returncode == 0, first.stderr
    digest = out.read_bytes()
    script = tmp_path / "full.py"
    script.write_text(FULL_DISK)
    start = time.monotonic()
    proc = subprocess.run([*mpiexec_command(4), str(script), "400000", "run",
                           "--set", 'code.scheme="crc"', "--set", "run.rounds=2000", "--set", 'run.detail="full"',
                           "--set", "delays.chunk_time=0.001", "--set", "run.flush_seconds=0.2", "--out", str(out)],
                          capture_output=True, text=True, cwd=tmp_path, env=child_env(), timeout=120)
    seconds = time.monotonic() - start
    # without MPICH's note on MPI_Abort and Open MPI's stray NUL
    lines = [line for line in own_lines(proc.stderr, progress=False) if "MPI_Abort" not in line and line.strip("\x00 ")]
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert lines[0].startswith("mpigc: error: cannot write run crc-2") and "File too large" in lines[0]
    assert f"{out} is unchanged" in lines[0] and seconds < 60
    assert out.read_bytes() == digest and [run.name for run in read_runs(out)] == ["crc"]
    assert running_files(out) == [] and not Path(f"{out}.lock").exists()


def test_a_side_file_is_listed_only_once_readers_can_open_it(tmp_path, monkeypatch):
    """A reader that lists a side file opens it with swmr=True: it appears only after SWMR mode is on."""
    from mpigc.results import runwriter as writer_module

    out = tmp_path / "r.h5"
    seen_before_swmr: list[list] = []
    start = writer_module._start_swmr

    def spying(f):
        seen_before_swmr.append(running_files(out))
        start(f)

    monkeypatch.setattr(writer_module, "_start_swmr", spying)
    file = ResultFile(out, keep_open=True)
    try:
        file.new_run("a", {"scheme": "x"})
        assert seen_before_swmr == [[]]  # not listed while being built
        (side,) = running_files(out)
        # another process, as a reader is (one process cannot reopen a file it writes)
        probe = "import h5py, sys; print('a' in h5py.File(sys.argv[1], 'r', swmr=True)['runs'])"
        opened = subprocess.run([sys.executable, "-c", probe, str(side)], capture_output=True, text=True)
        assert opened.stdout.strip() == "True", opened.stderr
        assert not [p for p in tmp_path.iterdir() if p.name.endswith(".new")]
    finally:
        file.close()
