"""Side files that prove their writer is alive and their rows are whole (issue 22).

Serial. A "job" here is a small Python process driving ``ResultFile`` the
way ``mpigc simulate`` does (side file, SWMR, flushes); it pauses at a gate
file so that the test can remove the lock file or the side file, or start a
second writer, at a known moment, and it can SIGKILL itself. Then the next
writer's merge and ``mpigc info`` are checked: no live run is taken, no
damaged run is merged as healthy, nothing mpigc did not make is touched.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

import mpigc
from mpigc.errors import InputError
from mpigc.results import ROUNDS_DTYPE, ResultFile, ResultWriteError, check_writable, read_runs, running_files
from mpigc.results.sides import LEDGER, verify

ROOT = os.path.dirname(os.path.dirname(mpigc.__file__))

JOB = """
import signal, os, sys, time
from pathlib import Path
import numpy as np
from mpigc.results import ROUNDS_DTYPE, ResultFile, ResultWriteError
out, name, batches, end = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
file = ResultFile(out, keep_open=True)
w = file.new_run(name, {"scheme": "crc"})
def batch(k):
    rows = np.zeros(1000, ROUNDS_DTYPE)
    rows["round"] = np.arange(1000 * k, 1000 * (k + 1))
    rows["latency"] = 0.01 + rows["round"] * 1e-6
    w.append("rounds", rows)
    w.flush()
try:
    for k in range(batches):
        batch(k)
    Path(str(out) + ".paused").touch()
    while not Path(str(out) + ".go").exists():
        time.sleep(0.02)
    if end == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    for k in range(batches, 2 * batches):
        batch(k)
    file.close()
except ResultWriteError as exc:
    print(f"mpigc: error: {exc}", file=sys.stderr)
    sys.exit(1)
print("done")
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])}


def _start(out: Path, name: str, batches: int, end: str = "finish") -> subprocess.Popen:
    """A job that writes ``batches`` x 1000 rounds, pauses until ``<out>.go`` exists, then ends so."""
    proc = subprocess.Popen([sys.executable, "-c", JOB, str(out), name, str(batches), end], env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not Path(f"{out}.paused").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the job did not reach its pause"
        time.sleep(0.02)
    return proc


def _resume(out: Path, proc: subprocess.Popen) -> subprocess.CompletedProcess:
    Path(f"{out}.go").touch()
    stdout, stderr = proc.communicate(timeout=120)
    os.unlink(f"{out}.go")
    os.unlink(f"{out}.paused")
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def _killed_side(out: Path, batches: int = 30) -> Path:
    """A side file a SIGKILLed job left, holding ``batches`` x 1000 rounds."""
    proc = _start(out, "killed", batches, end="kill")
    assert _resume(out, proc).returncode == -signal.SIGKILL
    (side,) = running_files(out)
    return side


def _second_writer(out: Path, name: str = "b") -> None:
    with ResultFile(out, keep_open=True) as file:
        rows = np.zeros(3, ROUNDS_DTYPE)
        rows["round"] = np.arange(3)
        file.new_run(name, {"scheme": "crc"}).append("rounds", rows)


def _info(out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mpigc", "info", str(out)], capture_output=True, text=True,
                          env=_env(), timeout=120)


def _assert_rounds_whole(out: Path) -> list:
    """Every healthy run's ``round`` counts up from 0 in steps of 1: no row that was never written."""
    runs = read_runs(out)
    assert len(runs) >= 1
    for run in runs:
        rounds = run.tables["rounds"]["round"]
        assert np.array_equal(rounds, np.arange(rounds.size)), (run.name, rounds[:10])
    return runs


@pytest.fixture
def out(tmp_path) -> Path:
    """A result file holding one finished run."""
    path = tmp_path / "r.h5"
    _second_writer(path, "first")
    return path


@pytest.mark.parametrize("damage", ["truncate", "random"])
def test_a_damaged_side_file_is_named_kept_aside_and_never_merged(out, damage):
    side = _killed_side(out)
    assert verify(side).healthy
    size = side.stat().st_size
    if damage == "truncate":
        os.truncate(side, size // 2)
    else:
        assert size > 600_000
        with open(side, "r+b") as f:
            f.seek(size // 2 - 100_000)
            f.write(np.random.default_rng(1).bytes(200_000))
    info = _info(out)
    assert info.returncode == 0, info.stderr
    (line,) = [line for line in info.stdout.splitlines() if line.startswith("# damaged:")]
    assert side.name in line
    _second_writer(out)
    runs = _assert_rounds_whole(out)
    assert [run.name for run in runs] == ["first", "b"]            # the damaged run is not merged
    assert running_files(out) == []
    aside = side.with_name(side.name.replace(".running", ".damaged"))
    assert not side.exists() and aside.exists()          # kept for the user, not deleted
    assert "set aside" in _info(out).stdout


def test_a_killed_jobs_whole_side_file_is_merged_with_every_row(out):
    _killed_side(out, batches=5)
    _second_writer(out)
    runs = _assert_rounds_whole(out)
    assert [run.name for run in runs] == ["first", "killed", "b"]
    assert runs[1].tables["rounds"].size == 5000 and runs[1].attrs["interrupted"] == "killed"


def test_a_live_side_file_is_never_taken_even_without_the_lock_file(out):
    job = _start(out, "live", 3)
    lock = Path(f"{out}.lock")
    assert lock.exists()
    lock.unlink()                                    # what a user on a file system without flock may do
    _second_writer(out)                              # gets in: the lock is gone
    assert [run.name for run in read_runs(out)] == ["first", "b", "live"]   # live is still a side file
    assert len(running_files(out)) == 1
    done = _resume(out, job)
    assert done.returncode == 0, done.stderr
    runs = _assert_rounds_whole(out)
    assert [run.name for run in runs] == ["first", "b", "live"]
    assert runs[2].tables["rounds"].size == 6000 and "interrupted" not in runs[2].attrs   # whole, unmarked
    assert running_files(out) == [] and not lock.exists()


def test_a_job_whose_side_file_vanished_fails_loudly(out):
    job = _start(out, "gone", 2)
    (side,) = running_files(out)
    side.unlink()
    done = _resume(out, job)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 1 and len(lines) == 1 and "done" not in done.stdout, done.stderr
    assert "gone" in lines[0] and "removed or replaced" in lines[0]
    assert [run.name for run in read_runs(out)] == ["first"]


def test_files_mpigc_did_not_make_are_left_alone(out):
    foreign = out.with_name("r.running1.h5")
    with h5py.File(foreign, "w") as f:
        f["precious"] = np.arange(5)
    other = out.with_name("r.running2.h5")
    with h5py.File(other, "w") as f:                 # claims to be a side file of another schema version
        f.attrs["mpigc_schema"] = 99
        f.attrs["mpigc_side"] = '{"token": "x", "host": "h", "pid": 1}'
        f.create_dataset(LEDGER, data=np.zeros((4, 2), np.uint64))
        f.create_group("runs").create_group("future")
    digests = {p: p.read_bytes() for p in (foreign, other)}
    _second_writer(out)
    assert [run.name for run in read_runs(out)] == ["first", "b"]
    assert {p: p.read_bytes() for p in (foreign, other)} == digests          # untouched
    ignored = [line for line in _info(out).stdout.splitlines() if line.startswith("# ignored:")]
    assert len(ignored) == 2 and "schema version 99" in ignored[1], ignored


def test_a_killed_commits_temporary_files_are_cleaned_by_the_next_writer(out):
    leftovers = [out.with_name(f".{out.name}.4242.tmp"), out.with_name(".r.running7.h5.new")]
    for p in leftovers:
        p.write_bytes(b"half a copy")
    _second_writer(out)
    assert not any(p.exists() for p in leftovers)
    assert [run.name for run in read_runs(out)] == ["first", "b"]


def test_out_through_a_symlink_writes_and_locks_the_target(tmp_path):
    real = tmp_path / "real.h5"
    link = tmp_path / "link.h5"
    _second_writer(real, "a")
    link.symlink_to(real.name)
    file = ResultFile(link, keep_open=True)
    file.new_run("through-link", {}).append("rounds", np.zeros(2, ROUNDS_DTYPE))
    with pytest.raises(InputError, match="open for writing"):
        check_writable(real)                          # one lock for the link and its target
    file.close()
    assert link.is_symlink() and os.readlink(link) == real.name
    assert [run.name for run in read_runs(real)] == ["a", "through-link"]
    assert not list(tmp_path.glob("link*running*")) and not Path(f"{link}.lock").exists()


def test_out_through_a_symlink_from_the_command_line(tmp_path):
    real = tmp_path / "real.h5"
    (tmp_path / "link.h5").symlink_to(real)
    proc = subprocess.run([sys.executable, "-m", "mpigc", "simulate", "--set", 'code.scheme="crc"', "--set",
                           "run.rounds=5", "--out", "link.h5"], capture_output=True, text=True, env=_env(),
                          cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "link.h5").is_symlink()
    assert [run.name for run in read_runs(real)] == ["crc"]


@pytest.mark.parametrize("length", [244, 255])
def test_a_name_too_long_for_the_lock_or_side_file_is_refused_up_front(tmp_path, length):
    name = "r" * (length - 3) + ".h5"
    proc = subprocess.run([sys.executable, "-m", "mpigc", "simulate", "--set", "run.rounds=2", "--out", name],
                          capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=300)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "--out" in lines[0] and "too long" in lines[0]
    assert list(tmp_path.iterdir()) == []             # no file created


@pytest.mark.parametrize("name", ["a\nb", "tab\there", "bell\x07", "del\x7f"])
def test_run_names_with_control_characters_are_refused(tmp_path, name):
    proc = subprocess.run([sys.executable, "-m", "mpigc", "simulate", "--set", "run.rounds=2", "--name", name,
                           "--out", "r.h5"], capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=300)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "control character" in lines[0], proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_unconfirmed_rows_past_the_ledger_are_not_merged(out):
    """A job killed between writing rows and its ledger: the merge keeps only the rows the ledger confirms."""
    file = ResultFile(out, keep_open=True)
    writer = file.new_run("killed", {})
    rows = np.zeros(2000, ROUNDS_DTYPE)
    rows["round"] = np.arange(2000)
    writer.append("rounds", rows)
    writer.flush()
    (side,) = running_files(out)
    writer._h5.close()                               # the job ends here without its commit ...
    writer._h5 = None
    writer.release_side()
    file._lock.release()
    with h5py.File(side, "r+", locking=False) as f:   # ... its next rows written, the ledger not yet updated
        ds = f["runs/killed/rounds"]
        ds.resize((2500,))
        ds[2000:] = np.zeros(500, ROUNDS_DTYPE)
    assert verify(side).healthy and verify(side).rows["rounds"] == 2000
    _second_writer(out)
    runs = _assert_rounds_whole(out)
    assert runs[1].name == "killed" and runs[1].tables["rounds"].size == 2000 and running_files(out) == []


def test_a_writer_refuses_to_report_success_for_a_side_file_replaced_under_it(tmp_path):
    out = tmp_path / "r.h5"
    file = ResultFile(out, keep_open=True)
    writer = file.new_run("a", {})
    writer.append("rounds", np.zeros(1, ROUNDS_DTYPE))
    (side,) = running_files(out)
    side.unlink()
    side.write_bytes(b"someone else's file")
    with pytest.raises(ResultWriteError, match="removed or replaced"):
        file.close()
    assert side.read_bytes() == b"someone else's file"


def test_merge_gathers_one_file_per_job_into_one(tmp_path):
    jobs = [tmp_path / f"job-{k}.h5" for k in range(3)]
    for path in jobs:
        _second_writer(path, "crc")
    out = tmp_path / "campaign.h5"
    _second_writer(out, "crc")
    proc = subprocess.run([sys.executable, "-m", "mpigc", "merge", str(out), *map(str, jobs)], capture_output=True,
                          text=True, env=_env(), timeout=120)
    assert proc.returncode == 0 and "merged 3 run(s) from 3 file(s)" in proc.stdout, proc.stderr
    runs = read_runs(out)
    assert [run.name for run in runs] == ["crc", "crc-2", "crc-3", "crc-4"]
    source = read_runs(jobs[0])[0]
    assert runs[1].tables["rounds"].tobytes() == source.tables["rounds"].tobytes() and runs[1].attrs == source.attrs


def test_merge_takes_a_killed_jobs_run_and_refuses_a_running_job(out, tmp_path):
    _killed_side(out, batches=1)
    campaign = tmp_path / "c.h5"
    merge = [sys.executable, "-m", "mpigc", "merge", str(campaign), str(out)]
    proc = subprocess.run(merge, capture_output=True, text=True, env=_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    runs = read_runs(campaign)
    assert [run.name for run in runs] == ["first", "killed"] and runs[1].attrs["interrupted"] == "killed"
    assert runs[1].tables["rounds"].size == 1000
    job = _start(out, "live", 1)
    try:
        proc = subprocess.run(merge, capture_output=True, text=True, env=_env(), timeout=120)
    finally:
        done = _resume(out, job)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "open for writing" in lines[0], proc.stderr
    assert done.returncode == 0 and [run.name for run in read_runs(campaign)] == ["first", "killed"]
