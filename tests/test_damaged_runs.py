"""A damaged or foreign run never hides the healthy ones: ``mpigc info`` and ``analysis/`` name it and go on."""
from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from analysis import common  # pytest.ini puts the repository root on sys.path
from mpigc import results
from mpigc.config import load_config
from mpigc.errors import InputError
from mpigc.sim.driver import simulate

HEALTHY = ["crc", "c2"]
DAMAGED = {                       # run -> words its reason must contain
    "partial": "no 'rounds' table",
    "badattr": "attribute 'plan' unreadable",
    "wrongdtype": "wrong shape or dtype",
    "stray": "a dataset, not a run group",
    "notes": "foreign dataset 'x'",
    "corrupt": "table 'rounds' unreadable",
}


@pytest.fixture(scope="module")
def damaged_file(tmp_path_factory) -> Path:
    """Two healthy runs and one run of every kind of damage, made from simulated runs with h5py."""
    path = tmp_path_factory.mktemp("damaged") / "r.h5"
    scheme = 'code.scheme=["crc", "partial", {scheme="crc", name="c2"}, {scheme="crc", name="badattr"}]'
    simulate(load_config(None, ["run.rounds=5", "code.workers=4", "code.load=2", scheme]), str(path),
             log=io.StringIO())
    with h5py.File(path, "a") as f:
        runs = f["runs"]
        del runs["partial/rounds"]                                   # a run that lost its table
        runs["badattr"].attrs["plan"] = "{not json"                  # a JSON attribute that does not decode
        runs.copy(runs["crc"], "wrongdtype")
        del runs["wrongdtype/rounds"]
        runs["wrongdtype"].create_dataset("rounds", data=np.arange(5.0))   # floats, not records
        runs.create_dataset("stray", data=[1, 2, 3])                 # a dataset where a run belongs
        runs.create_group("notes").create_dataset("x", data=np.ones(3))    # another tool's group
        runs.copy(runs["crc"], "corrupt")
        del runs["corrupt/rounds"]
        table = runs["crc/rounds"][()]
        ds = runs["corrupt"].create_dataset("rounds", data=table, chunks=(len(table),), compression="gzip")
        info = ds.id.get_chunk_info(0)
        offset, size = info.byte_offset, info.size
    with open(path, "r+b") as raw:                                   # a chunk whose bytes were lost
        raw.seek(offset)
        raw.write(b"\xff" * size)
    return path


def test_scan_lists_healthy_runs_and_names_each_damaged_one(damaged_file):
    scan = results.scan_runs(damaged_file, require=["rounds"])
    assert [r.name for r in scan.runs] == HEALTHY
    reasons = {d.name: d.reason for d in scan.damaged}
    assert set(reasons) == set(DAMAGED), reasons
    for name, words in DAMAGED.items():
        assert words in reasons[name], (name, reasons[name])
    assert scan.runs[0].tables["rounds"].size == 5
    with pytest.raises(InputError, match="damaged run"):
        results.read_runs(damaged_file)                               # the default still refuses
    # read_runs requires no table unless asked (a trace needs only workers): "partial" is whole otherwise
    assert [r.name for r in results.read_runs(damaged_file, on_damage="skip")] == ["crc", "partial", "c2"]
    assert [r.name for r in results.read_runs(damaged_file, on_damage="skip", require=["rounds"])] == HEALTHY


def test_info_prints_the_healthy_table_then_the_damaged_names(damaged_file):
    proc = subprocess.run([sys.executable, "-m", "mpigc", "info", str(damaged_file)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    rows = [line.split()[0] for line in proc.stdout.splitlines() if line and not line.startswith("#")]
    assert rows == ["run", *HEALTHY]
    damaged = [line for line in proc.stdout.splitlines() if line.startswith("# damaged: ")]
    # a run that lost its only table reads as a run without one (as F4's Lagrange runs): named, not damaged
    assert sorted(line.split()[2] for line in damaged) == sorted(set(DAMAGED) - {"partial"})
    assert "# no rounds table: partial" in proc.stdout.splitlines()
    csv = subprocess.run([sys.executable, "-m", "mpigc", "info", "--csv", str(damaged_file)], capture_output=True,
                         text=True, timeout=60)
    assert csv.returncode == 0 and [r.split(",")[0] for r in csv.stdout.split()[1:]] == HEALTHY
    assert csv.stderr.count("# damaged: ") == len(DAMAGED) - 1 and "# no rounds table: partial" in csv.stderr


def test_info_on_a_file_of_damaged_runs_only_is_bad_input(tmp_path):
    path = tmp_path / "r.h5"
    results.ResultFile(path).new_run("bare", {"scheme": "crc"}, tables=()).flush()
    with h5py.File(path, "a") as f:
        f["runs"].create_group("notes").create_dataset("x", data=np.ones(3))
        del f["runs/bare"]
    proc = subprocess.run([sys.executable, "-m", "mpigc", "info", str(path)], capture_output=True, text=True,
                          timeout=60)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "no readable run" in lines[0], proc.stderr
    assert "notes (foreign dataset 'x'" in lines[0]


def test_figure_loader_skips_damaged_runs_with_a_warning(damaged_file):
    warn = io.StringIO()
    runs = common.load_runs([damaged_file], warn=warn)
    # a run without tables is whole to the figures (F4's Lagrange runs hold attributes only)
    assert [r.name for r in runs] == ["crc", "partial", "c2"] and runs[0].config["run"]["rounds"] == 5
    with pytest.raises(common.FigureDataError, match="run 'partial' has no 'rounds' table"):
        runs[1].table("rounds")
    lines = warn.getvalue().splitlines()
    damaged = set(DAMAGED) - {"partial"}
    assert len(lines) == len(damaged) and all(line.startswith(f"warning: {damaged_file}: run ") for line in lines)
    assert all(any(f"'{name}'" in line for line in lines) for name in damaged)
