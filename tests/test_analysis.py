"""analysis/: shared helpers, figure scripts on small simulated files, clear failures, info --rounds."""
from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import ROOT

from analysis import common, sweeps  # pytest.ini puts the repository root on sys.path
from mpigc import report, results
from mpigc.config import load_config
from mpigc.sim.driver import simulate

ANALYSIS = ROOT / "analysis"
CONFIGS = ROOT / "jobs" / "configs"


def sim(path: Path, config: str, *overrides: str) -> Path:
    simulate(load_config(str(CONFIGS / config), list(overrides)), str(path), log=io.StringIO())
    return path


def script(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ANALYSIS / name), *args], capture_output=True, text=True, timeout=120)


# ----------------------------------------------------------------------------- helpers

def test_mean_std_ignores_nan_and_handles_empty():
    assert common.mean_std([1.0, 3.0, np.nan]) == (2.0, 1.0, 2)
    mean, std, n = common.mean_std([])
    assert np.isnan(mean) and np.isnan(std) and n == 0


def test_zeros_are_floored_on_log_axes():
    assert list(common.floor_zeros(np.array([0.0, 1e-30, 1e-3]), 1e-8)) == [1e-8, 1e-8, 1e-3]
    lo, hi = common.log_band(1e-3, 5e-3, floor=1e-8)      # std > mean: lower bar stops at the floor
    assert lo == pytest.approx(1e-3 - 1e-8) and hi == pytest.approx(5e-3)


def test_entry_code_merges_inline_overrides():
    config = {"code": {"load": 4, "ordering": "optimal",
                       "scheme": ["partial", {"scheme": "partial", "use_partial": False, "name": "ablation"}]}}
    assert common.entry_code(config, "ablation") == {"load": 4, "ordering": "optimal", "scheme": "partial",
                                                     "use_partial": False, "name": "ablation"}
    assert common.entry_code(config, "partial")["scheme"] == "partial"


def test_load_group_caption_and_missing_table(tmp_path):
    path = sim(tmp_path / "a.h5", "f1-exact.toml", "run.rounds=20")
    runs = common.load_runs([path])
    assert [common.role(r) for r in runs] == ["partial", "ablation", "crc", "poly"]
    groups = common.group_by(runs, "code.assignment", "code.parts")
    assert list(groups) == [("cyclic", 1)] and len(groups[("cyclic", 1)]) == 4
    text = common.caption(runs)
    assert "backend: sim" in text and "rounds per run: 20" in text and "shifted-exponential" in text
    assert "failures 0.05" in text
    with pytest.raises(common.FigureDataError, match="no 'jobs' table"):
        runs[0].table("jobs")
    with pytest.raises(common.FigureDataError, match="not an mpigc result file|no such file|does not exist"):
        common.load_runs([tmp_path / "missing.h5"])


# ----------------------------------------------------------------------------- figures

@pytest.fixture(scope="module")
def small_results(tmp_path_factory):
    d = tmp_path_factory.mktemp("res")
    pts = ['code.scheme=["partial", {scheme="partial", use_partial=false, name="ablation"}, "crc"]', "run.rounds=60"]
    sim(d / "f1.h5", "f1-exact.toml", *pts)
    sim(d / "f1.h5", "f1-exact.toml", "code.parts=2", 'code.scheme=["partial", "poly"]', "run.rounds=60")
    for t in (2.0, 4.0):
        sim(d / "f2.h5", "f2-approx.toml", f"code.deadline={t}", "run.rounds=40")
    for l in (1, 4):
        sim(d / "f3.h5", "f3-ordering.toml", f"code.parts={l}", "run.rounds=40")
    sim(d / "f3.h5", "f3-ordering.toml", 'code.decode="approx"', "code.deadline=3.0", "run.rounds=40")
    return d


def test_figures_write_png_and_pdf(small_results, tmp_path):
    pytest.importorskip("matplotlib")
    from analysis import fig1_exact_latency, fig2_approx_error, fig3_ordering

    d = small_results
    out = tmp_path / "figs"
    r1 = fig1_exact_latency.main([str(d / "f1.h5")], str(out))
    assert r1["numbers"]["cyclic l=1 ablation / partial"] > 1.0
    r2 = fig2_approx_error.main([str(d / "f2.h5")], str(out))
    assert r2["numbers"]["l=1 T=4 crc / partial"] > 1.0
    r3 = fig3_ordering.main([str(d / "f3.h5")], str(out))
    assert r3["numbers"]["graph:circulant l=1 Qmax optimal"] == 1 + 20 * 4 - 4 * 5 // 2
    for stem in ("f1_exact_latency", "f2_approx_error", "f3_ordering"):
        for ext in ("png", "pdf"):
            assert (out / f"{stem}.{ext}").stat().st_size > 1000


def test_figure_cli_output_and_exit_code(small_results, tmp_path):
    pytest.importorskip("matplotlib")
    proc = script("fig1_exact_latency.py", str(small_results / "f1.h5"), "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "claim" in proc.stdout and (tmp_path / "f1_exact_latency.png").exists()


def test_file_lacking_what_a_figure_needs_fails_clearly(small_results, tmp_path):
    pytest.importorskip("matplotlib")
    # F2 on an exact-only file: no approximate runs
    proc = script("fig2_approx_error.py", str(small_results / "f1.h5"), "--out", str(tmp_path))
    assert proc.returncode == 2 and "error:" in proc.stderr and "F2" in proc.stderr
    assert "Traceback" not in proc.stderr
    # F6 needs a jobs table that single-round runs lack
    proc = script("fig6_sequential.py", str(small_results / "f1.h5"), "--out", str(tmp_path))
    assert proc.returncode == 2 and "error:" in proc.stderr and "Traceback" not in proc.stderr
    # a run with no rounds table at all, and a file that is not a result file
    empty = tmp_path / "empty.h5"
    results.ResultFile(empty).new_run("bare", {"scheme": "partial", "backend": "sim"}, tables=()).flush()
    proc = script("fig7_fidelity.py", str(empty), "--out", str(tmp_path))
    assert proc.returncode == 2 and "F7 needs" in proc.stderr
    bogus = tmp_path / "bogus.h5"
    bogus.write_bytes(b"not hdf5")
    proc = script("fig1_exact_latency.py", str(bogus), "--out", str(tmp_path))
    assert proc.returncode == 2 and str(bogus) in proc.stderr
    assert not (tmp_path / "f2_approx_error.png").exists()


def test_make_figures_runs_as_a_module_and_by_path(tmp_path):
    commands = [subprocess.run([sys.executable, *how, "--out", str(tmp_path), "--only", "F1", "--print-commands"],
                               cwd=ROOT, capture_output=True, text=True, timeout=120)
                for how in (["-m", "analysis.make_figures"], [str(ANALYSIS / "make_figures.py")])]
    assert [p.returncode for p in commands] == [0, 0], [p.stderr for p in commands]
    assert commands[0].stdout == commands[1].stdout and "python -m mpigc simulate" in commands[0].stdout


def test_make_figures_fails_loudly_on_a_bad_result_file(tmp_path):
    pytest.importorskip("matplotlib")
    res = tmp_path / "res"
    res.mkdir()
    bad = sim(res / "f1-exact.h5", "f2-approx.toml", "run.rounds=5")      # approx runs where F1 needs exact ones
    sweeps.stamp(bad, sweeps.sweep_settings(sweeps.SWEEPS["F1"], False, 5))  # ... recorded as F1's own settings
    proc = make_figures(tmp_path / "o", res, "--only", "F1", "--rounds", "5")
    assert proc.returncode != 0 and "reusing" in proc.stdout
    assert "make_figures: error: F1:" in proc.stderr and "Traceback" not in proc.stderr


def make_figures(out: Path, res: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ANALYSIS / "make_figures.py"), "--out", str(out), "--results", str(res),
                           *args], capture_output=True, text=True, timeout=120)


def test_make_figures_never_reuses_results_made_with_other_settings(tmp_path):
    pytest.importorskip("matplotlib")
    res, out = tmp_path / "res", tmp_path / "o"
    first = make_figures(out, res, "--only", "F1", "--rounds", "3")   # a smoke test's files...
    assert first.returncode == 0, first.stderr
    stored = results.file_attr(res / "f1-exact.h5", sweeps.SETTINGS_ATTR)
    assert stored["rounds"] == 3 and stored["quick"] is False and stored["figure"] == "F1"
    second = make_figures(out, res, "--only", "F1", "--rounds", "4")  # ... never stand in for another campaign's
    assert second.returncode == 0, second.stderr
    assert "made with other settings (rounds)" in second.stdout and "reusing" not in second.stdout
    assert {r.tables["rounds"].size for r in results.read_runs(res / "f1-exact.h5")} == {4}
    assert {r.tables["rounds"].size for r in results.read_runs(res / "f1-exact.h5.old")} == {3}
    third = make_figures(out, res, "--only", "F1", "--rounds", "4")   # same settings: reused
    assert third.returncode == 0 and "reusing" in third.stdout and "other settings" not in third.stdout


# ----------------------------------------------------------------------------- info --rounds

def test_round_rows_one_row_per_round():
    table = np.zeros(3, dtype=results.ROUNDS_DTYPE)
    table["latency"] = [0.5, 0.25, 1.0]
    rows = report.round_rows([("a", "partial", "sim", table), ("b", "crc", "mpi", table[:2])])
    assert rows[0][:5] == ["run", "scheme", "backend", "round", "latency"]
    assert len(rows) == 1 + 3 + 2 and rows[2][4] == "0.25" and rows[-1][:3] == ["b", "crc", "mpi"]


def test_info_csv_rounds_cli(tmp_path):
    path = sim(tmp_path / "r.h5", "f1-exact.toml", "run.rounds=7", 'code.scheme=["partial", "crc"]')
    proc = subprocess.run([sys.executable, "-m", "mpigc", "info", str(path), "--csv", "--rounds"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 + 2 * 7 and lines[0].startswith("run,scheme,backend,round,latency,status")


# ----------------------------------------------------------------------------- F9

def _as_backend(src: Path, dst: Path, backend: str) -> Path:
    """Copy every run of ``src`` into ``dst`` marked ``backend`` (a stand-in for an MPI job's file)."""
    out = results.ResultFile(str(dst))
    for run in results.read_runs(str(src)):
        writer = out.new_run(run.name, {**run.attrs, "backend": backend}, tables=("rounds",))
        writer.append("rounds", run.tables["rounds"])
        writer.flush()
    out.close()
    return dst


def test_f9_crossover_is_where_l2_stays_faster():
    from analysis import fig9_network as f9

    curve = {"partial-l1": {1: 1.0, 10: 1.0, 100: 1.0, 1000: 1.0},
             "partial-l2": {1: 0.9, 10: 1.2, 100: 0.8, 1000: 0.7}}
    assert f9.crossover(curve) == 100.0
    curve["partial-l2"][1000] = 1.1
    assert np.isnan(f9.crossover(curve))
    curve["crc"] = {1: 0.5, 10: 0.5, 100: 2.0, 1000: 2.0}
    assert f9.crossover(curve, "partial-l2", "crc") == 100.0


def test_f9_draws_mpi_and_simulator_from_the_sweep_files(tmp_path):
    pytest.importorskip("matplotlib")
    from analysis import fig9_network as f9

    table = tmp_path / "f9-network.toml"
    table.write_text("# as probe --network writes it\n[network]\nlatency = 0.0005\nbandwidth = 2e8\ngap = 0.001\n"
                     "shared_ingest = true\n")
    network = f9.network_overrides(table)
    assert network == ["network.latency=0.0005", "network.bandwidth=200000000.0", "network.gap=0.001",
                       "network.shared_ingest=true"]
    dims = (1000, 1000000)
    for d in dims:
        sim(tmp_path / "plain.h5", "f9-network.toml", f"workload.features={d}", "run.rounds=6")
        sim(tmp_path / "f9-sim.h5", "f9-network.toml", f"workload.features={d}", "run.rounds=6", *network)
    mpi = _as_backend(tmp_path / "plain.h5", tmp_path / "f9-mpi.h5", "mpi")  # no network plays the MPI side
    with pytest.raises(common.FigureDataError, match="F9 needs"):
        f9.main([str(tmp_path / "f9-sim.h5")], str(tmp_path / "figs"))
    result = f9.main([str(mpi), str(tmp_path / "f9-sim.h5")], str(tmp_path / "figs"))
    numbers = result["numbers"]
    assert len([k for k in numbers if k.endswith("mean ms")]) == 2 * len(f9.ENTRIES) * len(dims)
    for entry in f9.ENTRIES:
        small, large = (numbers[f"{b} {entry} d=1e+06 mean ms"] for b in ("mpi", "sim"))
        # every arrival is later by at least latency + gap + bytes / bandwidth, so is every decode:
        # float32 messages of d/l + 1 values and a 9-value header on a 200 MB/s link
        parts = 2 if entry.endswith("l2") else 1
        one_message = 0.5 + 1.0 + 1e3 * 4 * (-(-10**6 // parts) + 1 + 9) / 2e8
        assert large >= small + one_message - 1e-6, entry
        assert numbers[f"sim {entry} d=1e+03 mean ms"] == pytest.approx(numbers[f"mpi {entry} d=1e+03 mean ms"],
                                                                         rel=0.05), entry
    assert len([k for k in numbers if "crossover" in k]) == 2 * len(f9.PAIRS)
    assert (tmp_path / "figs" / "f9_network.png").stat().st_size > 1000
