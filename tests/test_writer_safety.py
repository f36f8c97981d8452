"""The result writer under a full disk, a second writer, a killed writer and readers holding its files.

Serial. Disk full is a small tmpfs where mounting is allowed (skipped
otherwise) and, everywhere, ``RLIMIT_FSIZE`` on the writing process with
SIGXFSZ ignored: writes past the limit fail with EFBIG, which HDF5 meets
exactly as it meets ENOSPC.
"""
from __future__ import annotations

import hashlib
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import child_env, own_lines

from mpigc.results import (
    ROUNDS_DTYPE,
    FileBusyError,
    ResultFile,
    holder,
    read_runs,
    running_files,
)


def _limit(nbytes: int | None):
    """A preexec_fn: writes past ``nbytes`` fail with EFBIG (SIGXFSZ ignored)."""
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        if nbytes is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))
    return apply


def simulate(out: Path, *sets: str, limit: int | None = None, wait: bool = True):
    cmd = [sys.executable, "-m", "mpigc", "simulate", "--out", str(out)]
    for item in sets:
        cmd += ["--set", item]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(),
                            cwd=out.parent, preexec_fn=_limit(limit))
    if not wait:
        return proc
    stdout, stderr = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(path: Path) -> dict:
    return {run.name: ({k: str(v) for k, v in run.attrs.items()}, {t: a.tobytes() for t, a in run.tables.items()})
            for run in read_runs(path)}


@pytest.fixture
def earlier(tmp_path) -> Path:
    """A result file holding three finished runs."""
    out = tmp_path / "r.h5"
    proc = simulate(out, "run.rounds=300")
    assert proc.returncode == 0, proc.stderr
    return out


def _assert_failed_cleanly(proc, out: Path, digest: str, before: dict) -> str:
    lines = own_lines(proc.stderr, progress=False)
    assert proc.returncode == 1, proc.stderr
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("mpigc: error: ") and str(out) in lines[0] and "File too large" in lines[0]
    assert sha256(out) == digest                       # earlier runs byte-identical ...
    assert {k: v for k, v in snapshot(out).items() if k in before} == before   # ... and readable
    assert not holder(out) and not Path(f"{out}.lock").exists()
    return lines[0]


def test_disk_full_during_the_run_exits_1_and_keeps_the_file(earlier):
    digest, before = sha256(earlier), snapshot(earlier)
    proc = simulate(earlier, 'code.scheme="crc"', 'run.detail="workers"', "run.rounds=10000",
                    limit=2_000_000)
    line = _assert_failed_cleanly(proc, earlier, digest, before)
    assert "this run is lost" in line and running_files(earlier) == []
    assert list(snapshot(earlier)) == list(before)
    again = simulate(earlier, 'code.scheme="crc"', "run.rounds=50")   # the file takes new runs
    assert again.returncode == 0 and [r.name for r in read_runs(earlier)][-1] == "crc-2"


def test_disk_full_while_committing_keeps_the_file_and_the_new_run_beside_it(earlier):
    digest, before = sha256(earlier), snapshot(earlier)
    proc = simulate(earlier, 'code.scheme="crc"', "run.rounds=300", limit=earlier.stat().st_size // 2)
    line = _assert_failed_cleanly(proc, earlier, digest, before)
    (side,) = running_files(earlier)
    assert f"kept in {side}" in line
    assert [r.name for r in read_runs(earlier)] == [*before, "crc-2"]   # readers list it after the file's
    assert read_runs(earlier)[-1].tables["rounds"].size == 300
    assert simulate(earlier, 'code.scheme="crc"', "run.rounds=50").returncode == 0   # the next writer commits it
    assert running_files(earlier) == [] and [r.name for r in read_runs(earlier)][-2:] == ["crc-2", "crc-3"]
    assert not read_runs(earlier, ["crc-2"])[0].attrs.get("interrupted")   # it was complete


def test_full_tmpfs_during_the_run(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)],
                                 capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        mounted = False
    if not mounted:
        pytest.skip("cannot mount a tmpfs here (needs privileges)")
    try:
        out = mnt / "r.h5"
        assert simulate(out, "run.rounds=300").returncode == 0
        digest, before = sha256(out), snapshot(out)
        proc = simulate(out, 'code.scheme="crc"', 'run.detail="workers"', "run.rounds=10000")
        lines = own_lines(proc.stderr, progress=False)
        assert proc.returncode == 1 and len(lines) == 1 and "No space left on device" in lines[0], proc.stderr
        assert sha256(out) == digest and snapshot(out) == before
        assert sorted(p.name for p in mnt.iterdir()) == ["r.h5"]   # no side, temporary or lock file left
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True, timeout=30)


def test_a_second_writer_is_refused_at_once_naming_the_first(tmp_path):
    out = tmp_path / "r.h5"
    first = simulate(out, 'code.scheme="crc"', "run.rounds=40000", wait=False)
    try:
        end = time.monotonic() + 60
        while not running_files(out):
            assert first.poll() is None and time.monotonic() < end, first.stderr.read() if first.stderr else ""
            time.sleep(0.05)
        start = time.monotonic()
        second = simulate(out, "run.rounds=5")
        took = time.monotonic() - start
        held = holder(out)
        stdout, stderr = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    lines = own_lines(second.stderr, progress=False)
    assert second.returncode == 2 and len(lines) == 1, second.stderr
    assert str(out) in lines[0] and f"pid {first.pid} on host" in lines[0], lines[0]
    assert took < 30 and held["pid"] == first.pid
    assert first.returncode == 0, stderr
    assert [r.name for r in read_runs(out)] == ["crc"] and read_runs(out)[0].tables["rounds"].size == 40000


def test_a_stale_lock_file_does_not_block(tmp_path):
    out = tmp_path / "r.h5"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    Path(f"{out}.lock").write_text(json.dumps({"host": os.uname().nodename, "pid": dead.pid}))
    assert holder(out) is None
    proc = simulate(out, 'code.scheme="crc"', "run.rounds=20")
    assert proc.returncode == 0, proc.stderr
    assert not Path(f"{out}.lock").exists()


KILLED = """
import os, signal, sys
import numpy as np
from mpigc.results import ROUNDS_DTYPE, ResultFile
f = ResultFile(sys.argv[1], keep_open=True)
w = f.new_run("a", {"scheme": "crc"})
w.append("rounds", np.zeros(7, ROUNDS_DTYPE))
w.flush()
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_writer_leaves_its_rows_found_by_info_and_committed_by_the_next(tmp_path):
    out = tmp_path / "r.h5"
    proc = subprocess.run([sys.executable, "-c", KILLED, str(out)], env=child_env(), timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert len(running_files(out)) == 1 and holder(out) is None        # its lock died with it
    info = subprocess.run([sys.executable, "-m", "mpigc", "info", str(out), "--csv"], capture_output=True,
                          text=True, env=child_env(), timeout=60)
    assert info.returncode == 0 and info.stdout.splitlines()[1].startswith("a,crc,7,"), info.stderr
    with ResultFile(out, keep_open=True) as file:
        file.new_run("b", {}).append("rounds", np.zeros(2, ROUNDS_DTYPE))
    assert running_files(out) == []
    runs = read_runs(out)
    assert [r.name for r in runs] == ["a", "b"] and runs[0].attrs["interrupted"] == "killed"
    assert runs[0].tables["rounds"].size == 7 and "interrupted" not in runs[1].attrs


def test_readers_holding_the_files_never_make_a_write_fail(tmp_path):
    out = tmp_path / "r.h5"
    ResultFile(out).new_run("old", {})
    digest = sha256(out)
    with ResultFile(out, keep_open=True) as file:
        file.acquire()                                                 # as `mpigc run` does before its work
        other = ResultFile(out)
        with pytest.raises(FileBusyError, match="open for writing by another process"):
            other.new_run("x", {})                                     # one writer, even in-process
        writer = file.new_run("new", {})
        with h5py.File(out, "r") as held:                             # plain h5py, HDF5's lock taken
            writer.append("rounds", np.zeros(3, ROUNDS_DTYPE))
            writer.flush()
            (side,) = running_files(out)
            with h5py.File(side, "r", swmr=True, locking=False) as live:   # in-process: as the writer
                rows = live["runs/new/rounds"]
                writer.append("rounds", np.zeros(2, ROUNDS_DTYPE))
                writer.flush()
                rows.refresh()
                assert rows.shape == (5,)
                assert [r.name for r in read_runs(out)] == ["old", "new"]
                assert sha256(out) == digest                           # never written in place
            file.close()                                               # commits while `held` is open
            assert list(held["runs"]) == ["old"]                       # the reader's snapshot
    assert [r.name for r in read_runs(out)] == ["old", "new"] and read_runs(out)[1].tables["rounds"].size == 5
