"""The result writer as ``mpigc run`` uses it: file kept open, written by time, signals never tear a write."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from helpers import child_env

from mpigc import interrupts
from mpigc.results import ROUNDS_DTYPE, ResultFile, read_runs, run_names


def rounds(n: int, start: int = 0) -> np.ndarray:
    rows = np.zeros(n, ROUNDS_DTYPE)
    rows["round"] = np.arange(start, start + n)
    rows["latency"] = 1e-3
    return rows


def test_min_interval_holds_rows_until_due_or_forced(tmp_path) -> None:
    path = tmp_path / "r.h5"
    with ResultFile(path, keep_open=True, min_interval=0.3) as file:
        writer = file.new_run("a", {"scheme": "crc"})
        writer.append("rounds", rounds(3))
        writer.flush()                      # within min_interval of the run's creation: held
        assert writer.pending() == 3 and writer.written == {}
        time.sleep(0.35)
        writer.append("rounds", rounds(2, 3))
        writer.flush()                      # due: everything goes
        assert writer.pending() == 0 and writer.written["rounds"] == 5
        writer.append("rounds", rounds(1, 5))
        writer.flush(force=True)
        assert writer.written["rounds"] == 6
        writer.append("rounds", rounds(1, 6))
        writer.set_attrs(done=True)
    (run,) = read_runs(path)                # close() wrote the rest
    assert np.array_equal(run.tables["rounds"]["round"], np.arange(7)) and run.attrs["done"] is True


READER = """
import sys
from mpigc.results import read_runs
print(read_runs(sys.argv[1])[0].tables["rounds"].size)
"""


def test_another_process_reads_the_file_while_the_writer_holds_it(tmp_path) -> None:
    path = tmp_path / "r.h5"
    with ResultFile(path, keep_open=True) as file:
        writer = file.new_run("a", {})
        writer.append("rounds", rounds(4))
        writer.flush()
        proc = subprocess.run([sys.executable, "-c", READER, str(path)], capture_output=True, text=True,
                              env=child_env(), timeout=60)
        assert proc.returncode == 0 and proc.stdout.strip() == "4", proc.stderr
        second = file.new_run("b", {})      # more runs through the same open file
        second.append("rounds", rounds(1))
    assert run_names(path) == ["a", "b"]


KILLED_OPEN = """
import os, signal, sys
import numpy as np
from mpigc.results import ROUNDS_DTYPE, ResultFile
f = ResultFile(sys.argv[1], keep_open=True, min_interval=1000.0)
w = f.new_run("a", {})
w.append("rounds", np.zeros(5, ROUNDS_DTYPE))
w.flush(force=True)
w.append("rounds", np.zeros(3, ROUNDS_DTYPE))
w.flush()     # not due: held
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_killed_while_open_leaves_the_written_rows_and_an_appendable_file(tmp_path) -> None:
    path = tmp_path / "r.h5"
    proc = subprocess.run([sys.executable, "-c", KILLED_OPEN, str(path)], env=child_env(), timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert read_runs(path)[0].tables["rounds"].size == 5
    ResultFile(path).new_run("b", {})       # a later job can add its runs
    assert run_names(path) == ["a", "b"]


def test_mark_interrupted_marks_the_run_once_open_or_committed(tmp_path) -> None:
    path = tmp_path / "r.h5"
    file = ResultFile(path)
    file.new_run("old", {})
    new = file.new_run("new", {})
    file.mark_interrupted(new, "SIGINT")                  # a file without side files: committed at once
    attrs = {run.name: run.attrs for run in read_runs(path)}
    assert attrs["new"]["interrupted"] == "SIGINT" and "interrupted" not in attrs["old"]
    kept = ResultFile(path, keep_open=True)
    running = kept.new_run("running", {})
    kept.mark_interrupted(running, "SIGTERM")              # open: goes with the merge
    kept.close()
    kept.mark_interrupted(running, "SIGTERM")              # merged and marked: no second commit
    assert {run.name: run.attrs.get("interrupted") for run in read_runs(path)} == {
        "old": None, "new": "SIGINT", "running": "SIGTERM"}


def test_signal_inside_deferred_is_raised_after_it_and_only_once() -> None:
    previous = interrupts.install()
    try:
        reached = False
        with pytest.raises(interrupts.Interrupted) as caught:
            with interrupts.deferred():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.01)            # the handler has run: nothing raised inside
                os.kill(os.getpid(), signal.SIGINT)  # a second signal is ignored
                time.sleep(0.01)
                reached = True
        assert reached and caught.value.name == "SIGTERM" and caught.value.exit_code == 143
        assert interrupts.received().name == "SIGTERM"
        time.sleep(0.01)                    # no second exception is pending
    finally:
        interrupts.restore(previous)
    assert signal.getsignal(signal.SIGINT) is previous[signal.SIGINT]


SECOND = """
import sys
from mpigc.results import check_writable
check_writable(sys.argv[1])
"""


def test_a_second_writer_is_refused_while_the_first_holds_the_file(tmp_path) -> None:
    path = tmp_path / "r.h5"
    with ResultFile(path, keep_open=True) as file:
        file.new_run("a", {})
        proc = subprocess.run([sys.executable, "-c", SECOND, str(path)], capture_output=True, text=True,
                              env=child_env(), timeout=60)
        assert proc.returncode != 0 and "is open for writing by another process" in proc.stderr, proc.stderr
    check_writable_after = subprocess.run([sys.executable, "-c", SECOND, str(path)], env=child_env(), timeout=60)
    assert check_writable_after.returncode == 0


@pytest.mark.parametrize("keep_open", [True, False])
def test_a_signal_during_a_flush_never_writes_its_rows_twice(tmp_path, keep_open):
    """A signal held while rows are written is raised after the buffer is emptied: the interrupt path's
    close() has nothing left to write again (it once duplicated a flush of a sequential run under mpiexec)."""
    path = tmp_path / "r.h5"
    previous = interrupts.install()
    try:
        file = ResultFile(path, keep_open=keep_open)
        writer = file.new_run("run", {})
        rows = np.zeros(10, ROUNDS_DTYPE)
        rows["round"] = np.arange(10)
        writer.append("rounds", rows)
        writer.flush(force=True)
        rows["round"] += 10
        writer.append("rounds", rows)
        real = file._commit if not keep_open else writer._ledger.write

        def signalled(*args, **kwargs):
            out = real(*args, **kwargs)
            os.kill(os.getpid(), signal.SIGTERM)   # arrives while the write is deferred
            return out

        if keep_open:
            writer._ledger.write = signalled
        else:
            file._commit = signalled
        with pytest.raises(interrupts.Interrupted):
            writer.flush(force=True)
        if not keep_open:
            file._commit = real
        file.mark_interrupted(writer, "SIGTERM")
        file.close()
    finally:
        interrupts.restore(previous)
    (run,) = read_runs(path)
    assert run.tables["rounds"]["round"].tolist() == list(range(20))
    assert run.attrs["interrupted"] == "SIGTERM"
