"""The command line: exit codes, one-line errors, no output on bad input."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest


def mpigc(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mpigc", *args], capture_output=True, text=True, cwd=cwd, timeout=120)


BAD = [
    (["--set", "code.parts=5", "--set", "code.load=3"], "code.parts"),
    (["--set", "code.lamda=3"], "code.lambda"),
    (["--set", "code.parts=true"], "code.parts"),
    (["--set", 'code.scheme="frc"', "--set", "code.load=3"], "code.load"),
    (["--set", 'code.ordering="optimal"', "--set", 'code.assignment="graph:random-regular"', "--set", "code.load=4",
      "--set", "code.workers=9"], "code.load"),
    (["--set", 'code.ordering="optimal"', "--set", 'code.scheme="uncoded"', "--set", "code.chunks=16"], "code.ordering"),
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
