"""The command line: exit codes, one-line errors, no output on bad input."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers import mpirun, own_lines, own_mpiexec


def mpigc(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mpigc", *args], capture_output=True, text=True, cwd=cwd, timeout=120)


BAD = [
    (["--set", "code.parts=5", "--set", "code.load=3"], "code.parts"),
    (["--set", "code.lamda=3"], "code.lambda"),
    (["--set", "code.parts=true"], "code.parts"),
    (["--set", 'code.scheme="frc"', "--set", "code.load=3"], "code.load"),
    (["--set", 'code.ordering="optimal"', "--set", 'code.assignment="graph:random-regular"', "--set", "code.load=4",
      "--set", "code.workers=9"], "code.load"),
    (["--set", 'code.ordering="optimal"', "--set", 'code.scheme="uncoded"', "--set", "code.chunks=16"],
     "code.ordering"),
    (["--set", "run.rounds=0"], "run.rounds"),
    (["--set", 'code.decode="approx"', "--set", "code.deadline=-1.0"], "code.deadline"),
    (["--set", 'code.decode="approx"'], "code.deadline"),
    (["--set", "delays.failures=1.5"], "delays.failures"),
    (["--set", 'code.scheme="nonsense"'], "code.scheme"),
    (["--set", 'code.assignment="cylic"'], "code.assignment"),
]


@pytest.mark.parametrize("args,key", BAD)
@pytest.mark.parametrize("command", ["simulate", "validate"])
def test_bad_input_is_one_line_exit_2_and_no_file(tmp_path, args, key, command):
    out = tmp_path / "r.h5"
    extra = ["--out", str(out)] if command == "simulate" else []
    proc = mpigc(command, *args, *extra)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and key in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()


def test_malformed_toml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[run\nrounds = 3\n")
    for path in (bad, tmp_path / "missing.toml"):
        proc = mpigc("simulate", str(path), "--out", str(tmp_path / "o.h5"))
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
        assert str(path) in proc.stderr
    assert not (tmp_path / "o.h5").exists()


def test_simulate_then_info(tmp_path):
    out = tmp_path / "r.h5"
    proc = mpigc("simulate", "--set", "run.rounds=20", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "speedup" in proc.stdout and "ablation" in proc.stdout
    info = mpigc("info", str(out))
    assert info.returncode == 0 and "crc" in info.stdout
    csv = mpigc("info", str(out), "--csv")
    assert csv.returncode == 0 and len(csv.stdout.strip().splitlines()) == 4
    again = mpigc("simulate", "--set", 'code.scheme="crc"', "--set", "run.rounds=5", "--out", str(out))
    assert again.returncode == 0
    assert "crc-2" in mpigc("info", str(out)).stdout


def test_plan_json_reports_qmax_against_the_bound():
    proc = mpigc("plan", "--json", "--set", 'code.scheme="partial"', "--set", 'code.ordering="optimal"',
                 "--set", "code.workers=10", "--set", "code.load=4", "--set", 'code.assignment="graph:circulant"')
    assert proc.returncode == 0, proc.stderr
    (plan,) = json.loads(proc.stdout)
    assert plan["qmax"] == plan["qmax_lower_bound_l1"] == 1 + 10 * 4 - 4 * 5 // 2
    assert len(plan["orders"]) == 10


def test_validate_prints_a_reloadable_config(tmp_path):
    proc = mpigc("validate", "--set", "code.load=4")
    assert proc.returncode == 0
    path = tmp_path / "resolved.toml"
    path.write_text(proc.stdout)
    again = mpigc("validate", str(path))
    assert again.returncode == 0 and again.stdout == proc.stdout


def test_schemes_lists_every_scheme():
    proc = mpigc("schemes")
    assert proc.returncode == 0
    for name in ("uncoded", "frc", "crc", "partial"):
        assert name in proc.stdout


def test_help_explains_commands():
    proc = mpigc("--help")
    assert proc.returncode == 0 and "simulate" in proc.stdout and "exit codes" in proc.stdout


# Bad input that only shows in a later entry of a scheme list, or in a name: found before anything runs.
LATE = [
    # the second entry's chunks need more samples than the first entry's (verify builds the workload in the sim)
    (["--set", 'code.scheme=["crc", {scheme="uncoded", chunks=4, load=2, name="u4"}]', "--set", "workload.samples=3",
      "--set", "run.verify=true"], "workload.samples"),
    # a sequential scheme's units are its workload chunks
    (["--set", 'code.scheme="gc-seq"', "--set", "workload.samples=1", "--set", "run.verify=true"], "workload.samples"),
    (["--set", 'code.scheme=["crc", {scheme="crc", name="x/y"}]'], "code.name"),
    (["--set", 'code.scheme=["crc", {scheme="partial", name="a\\u0000b"}]'], "code.name"),
    (["--name", "a/b"], "--name"),
    (["--name", "."], "--name"),
]


@pytest.mark.parametrize("args,key", LATE)
def test_simulate_checks_every_entry_and_name_before_running(tmp_path, args, key):
    out = tmp_path / "r.h5"
    proc = mpigc("simulate", "--set", "code.workers=2", "--set", "code.load=2", "--set", "run.rounds=3", *args,
                 "--out", str(out))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mpigc: error:") and key in lines[0], proc.stderr
    assert not out.exists() and proc.stdout == ""


def test_validate_checks_entry_names():
    proc = mpigc("validate", "--set", 'code.scheme=["crc", {scheme="crc", name="x/y"}]')
    assert proc.returncode == 2 and "code.name" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_run_summary_and_info_show_loop_time_and_interruption(tmp_path):
    """``mpigc info`` shows loop_ms from master_wall_s and marks an interrupted run (written here by hand)."""
    import numpy as np

    from mpigc.results import ROUNDS_DTYPE, ResultFile

    with ResultFile(tmp_path / "r.h5", keep_open=True, min_interval=100.0) as file:
        done = file.new_run("done", {"scheme": "crc", "backend": "mpi"})
        rows = np.zeros(4, ROUNDS_DTYPE)
        rows["latency"] = 0.002
        done.append("rounds", rows)
        done.set_attrs(master_wall_s=0.02)
        cut = file.new_run("cut", {"scheme": "crc", "backend": "mpi"})
        cut.append("rounds", rows[:2])
        cut.set_attrs(master_wall_s=0.01, interrupted="SIGTERM")
        cut.flush()  # min_interval not over: nothing written until close
        assert cut.pending() == 2
    info = mpigc("info", str(tmp_path / "r.h5"))
    assert info.returncode == 0, info.stderr
    lines = [line.split() for line in info.stdout.splitlines() if not line.startswith("#")]
    loop = lines[0].index("loop_ms")
    assert lines[1][0] == "done" and lines[1][loop] == "5.000" and lines[2][loop] == "5.000"
    assert "# cut: interrupted by SIGTERM after 2 round(s)" in info.stdout
    csv = mpigc("info", str(tmp_path / "r.h5"), "--csv")
    assert csv.stdout.splitlines()[2].endswith(",0.005,SIGTERM")


SIGNALLED = """
import os, signal, sys, threading
from mpigc.sim import driver
original = driver.Simulator.batches
def batches(self, rounds):
    driver.Simulator.calls = getattr(driver.Simulator, "calls", 0) + 1
    for k, batch in enumerate(original(self, rounds)):
        yield batch
        if driver.Simulator.calls == 2 and k == 0:  # the second entry, once its first batch is stored
            os.kill(os.getpid(), signal.SIGTERM)
driver.Simulator.batches = batches
from mpigc.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_simulate_sigterm_marks_the_running_run(tmp_path):
    out = tmp_path / "r.h5"
    proc = subprocess.run([sys.executable, "-c", SIGNALLED, "simulate", "--set", "run.rounds=3000",
                           "--set", 'code.scheme=["crc", "partial"]', "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 143, proc.stderr[-2000:]
    assert "interrupted by SIGTERM" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    from mpigc.results import read_runs

    first, second = read_runs(out)
    assert "interrupted" not in first.attrs and first.tables["rounds"].size == 3000
    assert second.attrs["interrupted"] == "SIGTERM" and 0 < second.tables["rounds"].size < 3000


RUN_LATE = [
    (["--set", 'code.scheme=["crc", {scheme="uncoded", chunks=4, load=2, name="u4"}]', "--set", "workload.samples=3"],
     "workload.samples"),
    (["--set", 'code.scheme="gc-seq"', "--set", "workload.samples=1"], "workload.samples"),
    (["--set", 'code.scheme=["crc", {scheme="crc", name="x/y"}]'], "code.name"),
    (["--name", "a/b"], "--name"),
]


@own_mpiexec
@pytest.mark.parametrize("args,key", RUN_LATE)
def test_run_checks_every_entry_and_name_before_the_verdict(tmp_path, args, key):
    """Under ``mpiexec -n 3``: exit 2 on every rank, one line, no file, for input only a later entry shows."""
    out = tmp_path / "r.h5"
    proc, _ = mpirun(3, "-m", "mpigc", "run", "--set", "code.load=2", "--set", "run.rounds=3", *args,
                     "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = own_lines(proc.stderr)
    assert len(lines) == 1 and lines[0].startswith("mpigc: error:") and key in lines[0], proc.stderr[-2000:]
    assert proc.stdout == "" and not out.exists()
