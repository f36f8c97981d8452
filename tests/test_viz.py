"""``mpigc plot`` and ``mpigc timeline`` on simulated runs: figures, index.html, trace-event JSON, refusals.

MPI runs (and an MPI run beside its simulation) are in ``test_viz_mpi.py``.
"""
from __future__ import annotations

import builtins
import gzip
import io
import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from mpigc import cli, results
from mpigc.config import load_config
from mpigc.sim.driver import simulate

pytest.importorskip("matplotlib")

SINGLE = ['code.scheme=["partial", "crc"]', "code.workers=6", "code.load=2", "run.rounds=30",
          'run.detail="full"', "delays.failures=0.1", "run.verify=true", "run.eval_every=10"]
SEQUENTIAL = ['code.scheme="m-sgc"', "code.workers=6", "code.B=1", "code.W=3", "code.lambda=2", "code.load=2",
              'delays.model="bursty"', "delays.B=1", "delays.W=3", "delays.lambda=2", "delays.factor=4",
              "delays.violate=0.3", "run.rounds=12", 'run.detail="workers"']


def _simulate(path: Path, overrides: list[str], name: str | None = None) -> None:
    simulate(load_config(None, overrides, backend="sim"), str(path), name, log=io.StringIO())


@pytest.fixture(scope="module")
def sim_file(tmp_path_factory) -> Path:
    """Two single-round runs at detail "full", a sequential run at "workers", and a damaged run."""
    path = tmp_path_factory.mktemp("viz") / "r.h5"
    _simulate(path, SINGLE)
    _simulate(path, SEQUENTIAL, name="seq run 1")
    _simulate(path, ["run.rounds=5", "code.workers=4", "code.scheme=\"crc\""], name="broken")
    with h5py.File(path, "a") as f:
        del f["runs/broken/rounds"]                       # a run that lost its rounds table: damaged here
    return path


def _main(*argv: str, capsys) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_plot_draws_every_healthy_run_and_names_the_damaged_one(sim_file, tmp_path, capsys):
    out = tmp_path / "plots"
    code, stdout, stderr = _main("plot", str(sim_file), "--out", str(out), "--format", "png,pdf", capsys=capsys)
    assert code == 0, stderr
    warnings = [line for line in stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "'broken'" in warnings[0] and "rounds" in warnings[0], stderr
    expected = {f"{stem}-{kind}" for stem in ("partial", "crc") for kind in ("latency", "rounds", "workers",
                                                                              "messages")}
    expected |= {f"seq_run_1-{kind}" for kind in ("latency", "rounds", "workers", "jobs")}
    pngs = {p.stem for p in out.glob("*.png")}
    assert pngs == expected
    assert {p.stem for p in out.glob("*.pdf")} == expected
    for png in out.glob("*.png"):
        data = png.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, png
    page = (out / "index.html").read_text()
    for stem in expected:
        assert f'src="{stem}.png"' in page and f'href="{stem}.pdf"' in page
    for run in ("partial", "crc", "seq run 1"):
        assert f'id="{run}"' in page
    assert "broken" in page and "damaged" in page.lower()
    assert "http" not in page.replace("http-equiv", "")        # offline: no external asset
    for key in ("scheme", "workers", "load", "backend", "seed", "mpigc version"):
        assert f"<th>{key}</th>" in page
    assert stdout.strip().splitlines()[-1].startswith("# 12 figure(s) of 3 run(s)")


def test_plot_runs_option_draws_only_those(sim_file, tmp_path, capsys):
    out = tmp_path / "one"
    code, _, stderr = _main("plot", str(sim_file), "--runs", "crc", "--out", str(out), capsys=capsys)
    assert code == 0 and "warning" not in stderr, stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["index.html", *(f"crc-{k}.png" for k in ("latency", "rounds", "workers", "messages"))])


@pytest.mark.parametrize(("argv", "words"), [
    (["--runs", "nope"], "no run named 'nope'"),
    (["--format", "svg"], "--format"),
])
def test_plot_bad_input_is_one_line_and_exit_2(sim_file, tmp_path, capsys, argv, words):
    code, _, stderr = _main("plot", str(sim_file), "--out", str(tmp_path / "x"), *argv, capsys=capsys)
    assert code == 2 and words in stderr and len(stderr.strip().splitlines()) == 1, stderr


def test_plot_without_matplotlib_says_how_to_install_it(sim_file, tmp_path, capsys, monkeypatch):
    real = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError(f"No module named {name!r}")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    code, stdout, stderr = _main("plot", str(sim_file), "--out", str(tmp_path / "p"), capsys=capsys)
    assert code == 2 and stdout == ""
    assert stderr.strip().splitlines() == ["mpigc: error: plot: matplotlib is not installed; install the analysis "
                                           "extra: pip install 'mpigc[analysis]'"]
    assert not (tmp_path / "p").exists()


def test_importing_mpigc_and_its_cli_loads_no_matplotlib():
    code = "import sys, mpigc, mpigc.cli, mpigc.viz.plot, mpigc.viz.timeline; mpigc.cli.build_parser(); " \
           "print([m for m in sys.modules if m.startswith('matplotlib')])"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr


@pytest.mark.parametrize(("run", "rounds", "suffix"), [("partial", None, ".json"), ("crc", "10:20", ".json.gz")])
def test_timeline_is_trace_event_json_with_a_slice_per_message(sim_file, tmp_path, capsys, check_trace,
                                                               run, rounds, suffix):
    out = tmp_path / f"{run}{suffix}"
    code, stdout, stderr = _main("timeline", str(sim_file), "--run", run, "--out", str(out),
                                 *(["--rounds", rounds] if rounds else []), capsys=capsys)
    assert code == 0, stderr
    with gzip.open(out) if suffix.endswith(".gz") else open(out, "rb") as f:
        trace = json.loads(f.read())
    events = results.read_runs(sim_file, [run])[0].tables["events"]
    lo, hi = (0, 30) if rounds is None else map(int, rounds.split(":"))
    assert events.size > 0 and np.any(events["used"])
    assert check_trace(trace, events, lo, hi, workers=6) == []
    assert trace["otherData"]["clock"] == "simulator, virtual time"
    assert f"rounds {lo}:{hi}" in stdout


def test_timeline_refuses_a_slice_above_the_limit_naming_rounds(sim_file, tmp_path, capsys, monkeypatch):
    from mpigc.viz import timeline

    monkeypatch.setattr(timeline, "EVENT_LIMIT", 40)
    out = tmp_path / "big.json"
    code, _, stderr = _main("timeline", str(sim_file), "--run", "partial", "--out", str(out), capsys=capsys)
    assert code == 2 and "--rounds" in stderr and "more than the 40" in stderr, stderr
    assert not out.exists()
    fit = stderr.rsplit("--rounds ", 1)[1].split()[0]        # the slice it suggests fits
    code, _, stderr = _main("timeline", str(sim_file), "--run", "partial", "--rounds", fit, "--out", str(out),
                            capsys=capsys)
    assert code == 0 and out.exists(), stderr


@pytest.mark.parametrize(("argv", "words"), [
    (["--run", "seq run 1"], "no events table"),
    (["--run", "partial", "--rounds", "5"], "expected A:B"),
    (["--run", "partial", "--rounds", "40:50"], "selects no round"),
    (["--run", "broken"], "damaged"),
    (["--run", "missing"], "no run named"),
])
def test_timeline_bad_input_is_one_line_and_exit_2(sim_file, tmp_path, capsys, argv, words):
    out = tmp_path / "t.json"
    code, _, stderr = _main("timeline", str(sim_file), *argv, "--out", str(out), capsys=capsys)
    assert code == 2 and words in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert not out.exists()


def test_plot_includes_the_run_a_running_job_is_writing(sim_file, tmp_path):
    out = tmp_path / "live.h5"
    out.write_bytes(sim_file.read_bytes())
    source = results.read_runs(sim_file, ["crc"])[0]
    file = results.ResultFile(out, keep_open=True)
    try:
        writer = file.new_run("live", source.attrs, ("rounds", "workers"))
        writer.append("rounds", source.tables["rounds"][:12])
        writer.append("workers", source.tables["workers"][source.tables["workers"]["round"] < 12])
        writer.flush()
        file.new_run("empty", source.attrs, ("rounds",))          # started, no round written yet
        file.flush()
        assert len(results.running_files(out)) == 2
        # another process, as a user's would be (one process cannot reopen a file it writes)
        proc = subprocess.run([sys.executable, "-m", "mpigc", "plot", str(out), "--runs", "live", "empty", "--out",
                               str(tmp_path / "p")], capture_output=True, text=True, timeout=300)
    finally:
        file.close()
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [f"warning: {out}: run 'empty' has no rounds yet; skipped"]
    assert sorted(p.name for p in (tmp_path / "p").glob("*.png")) == ["live-latency.png", "live-rounds.png",
                                                                      "live-workers.png"]
    page = (tmp_path / "p" / "index.html").read_text()
    assert "<tr><th>rounds</th><td>12</td></tr>" in page and "side file" in page
