"""Time to accuracy (docs/protocols.md#time-to-accuracy): evaluation rows, time to target, bad input, old files."""
from __future__ import annotations

import io
import math
import subprocess
import sys

import h5py
import numpy as np
import pytest

from mpigc import report, results
from mpigc.config import load_config
from mpigc.errors import InputError
from mpigc.sim.driver import simulate
from mpigc.workloads import make_workload

BASE = ["run.rounds=30", "run.verify=true", "run.seed=5", 'code.scheme="partial"', "code.workers=6", "code.load=2",
        "delays.chunk_time=0.01", 'workload.model="logistic"', "workload.samples=600", "workload.features=8",
        "workload.step=2.0", "workload.noise=0.5"]


def sim_rounds(tmp_path, overrides, name="r.h5") -> results.RunData:
    """Simulate the config into a file and return its only run."""
    path = tmp_path / name
    simulate(load_config(None, [*BASE, *overrides]), str(path), log=io.StringIO())
    (run,) = results.read_runs(path)
    return run


def logistic_metrics(model, x, y) -> tuple[float, float]:
    """Mean logistic loss and accuracy, written out here (not the workload's code)."""
    z = x @ model
    return float(np.mean(np.log1p(np.exp(-np.abs(z))) + np.maximum(z, 0) - y * z)), float(np.mean((z > 0) == y))


def test_eval_loss_decreases_and_matches_an_independent_evaluation(tmp_path) -> None:
    run = sim_rounds(tmp_path, ["run.eval_every=1"])
    rounds = run.tables["rounds"]
    loss = rounds["eval_loss"]
    assert np.isfinite(loss).all() and np.isfinite(rounds["eval_accuracy"]).all()
    assert loss[-1] < 0.8 * loss[0] and np.mean(np.diff(loss) < 0) > 0.8, loss
    # every round decodes exactly, so the model is plain gradient descent: replay it independently
    assert (rounds["status"] == 0).all()
    config = load_config(None, [*BASE, "run.eval_every=1"])
    wl = make_workload(config.workload, 6, config.run.seed)
    model = wl.initial_model()
    for _ in range(len(rounds)):
        model = model - config.workload.step * wl.full_gradient(model)[0]
    # held-out rows drawn afresh from the planted model on their own stream, not the training rows
    x, y, source = wl.held_out()
    assert source == "held-out" and len(y) == 150 and run.attrs["eval_set"] == "held-out"
    assert not any(np.array_equal(x[0], wl.chunk_data(c)[0][0]) for c in range(6))
    want_loss, want_acc = logistic_metrics(model, x, y)
    assert loss[-1] == pytest.approx(want_loss, rel=1e-9)
    assert rounds["eval_accuracy"][-1] == pytest.approx(want_acc, abs=1e-12)


def test_eval_fields_nan_between_evaluations(tmp_path) -> None:
    run = sim_rounds(tmp_path, ["run.rounds=10", "run.eval_every=3", 'workload.model="least-squares"'])
    r = run.tables["rounds"]
    evaluated = np.isfinite(r["eval_loss"])
    np.testing.assert_array_equal(np.flatnonzero(evaluated), [2, 5, 8])
    assert np.isnan(r["eval_accuracy"]).all()          # least squares is no classifier
    plain = sim_rounds(tmp_path, ["run.rounds=10"], "plain.h5").tables["rounds"]
    assert np.isnan(plain["eval_loss"]).all() and np.isnan(plain["eval_accuracy"]).all()


def test_evaluation_is_not_in_any_latency(tmp_path) -> None:
    with_eval = sim_rounds(tmp_path, ["run.eval_every=1", "delays.failures=0.2"], "a.h5").tables["rounds"]
    without = sim_rounds(tmp_path, ["delays.failures=0.2"], "b.h5").tables["rounds"]
    np.testing.assert_array_equal(with_eval["latency"], without["latency"])
    np.testing.assert_array_equal(with_eval["grad_error"], without["grad_error"])


def hand_table(latency, eval_loss) -> np.ndarray:
    rows = np.zeros(len(latency), results.ROUNDS_DTYPE)
    rows["latency"], rows["eval_loss"] = latency, eval_loss
    return rows


def test_time_to_target_from_a_hand_made_table() -> None:
    nan = math.nan
    rows = hand_table([1.0, 2.0, 4.0, 8.0, 16.0], [nan, 0.9, nan, 0.5, 0.4])
    assert report.time_to_target(rows, 0.5) == (15.0, 4.0)     # up to and including round 3
    assert report.time_to_target(rows, 0.95) == (3.0, 2.0)
    assert all(math.isnan(v) for v in report.time_to_target(rows, 0.1))
    stats = report.summarize(rows, 0.5)
    assert (stats["target_s"], stats["target_rounds"]) == (15.0, 4.0)
    never = report.summarize(rows, 0.1)
    table = report.summary_table([("a", "x", stats), ("b", "x", never)]).splitlines()
    assert table[0].split()[-2:] == ["to_target_s", "to_target_rounds"]
    assert table[1].split()[-2:] == ["15", "4"] and table[2].split()[-2:] == ["—", "—"]
    csv = report.csv_rows([("a", "x", stats), ("b", "x", never)])
    assert csv[0][-3:] == ["target_loss", "target_s", "target_rounds"] and csv[1][-2:] == ["15.0", "4.0"]
    assert csv[2][-2:] == ["nan", "nan"]
    assert "to_target_s" not in report.summary_table([("a", "x", report.summarize(rows))])


def test_short_row_tuples_get_the_eval_defaults() -> None:
    rows = results.as_rows("rounds", [(0, 1.0, 0, 1, 1, 0.0, nan := math.nan, nan, 0, -1, nan),
                                      (1, 2.0, 0, 1, 1, 0.0, nan, nan, 0, -1, nan, 0.25, 0.75)])
    assert np.isnan(rows["eval_loss"][0]) and rows["eval_loss"][1] == 0.25 and rows["eval_accuracy"][1] == 0.75
    with pytest.raises(ValueError, match="no default for 'waitout'"):
        results.as_rows("rounds", [(0, 1.0, 0, 1, 1, 0.0, nan, nan)])


def write_dataset(directory, held_out: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((120, 4))
    y = (x[:, 0] > 0).astype(float)
    directory.mkdir()
    np.save(directory / "X.npy", x)
    np.save(directory / "y.npy", y)
    if held_out:
        xe = rng.standard_normal((40, 4))
        np.save(directory / "X_eval.npy", xe)
        np.save(directory / "y_eval.npy", (xe[:, 0] > 0).astype(float))
        return xe, (xe[:, 0] > 0).astype(float)
    return x, y


@pytest.mark.parametrize("held_out", [True, False])
def test_user_dataset_held_out_convention(tmp_path, held_out) -> None:
    x, y = write_dataset(tmp_path / "data", held_out)
    run = sim_rounds(tmp_path, [f'workload.dataset="{tmp_path / "data"}"', "run.eval_every=30"])
    assert run.attrs["eval_set"] == ("held-out" if held_out else "training") and run.attrs["eval_rows"] == len(y)
    config = load_config(None, BASE)
    wl = make_workload(load_config(None, [*BASE, f'workload.dataset="{tmp_path / "data"}"']).workload, 6, 5)
    model = wl.initial_model()
    for _ in range(30):
        model = model - config.workload.step * wl.full_gradient(model)[0]
    assert run.tables["rounds"]["eval_loss"][-1] == pytest.approx(logistic_metrics(model, x, y)[0], rel=1e-9)


def test_half_a_held_out_set_is_bad_input(tmp_path) -> None:
    write_dataset(tmp_path / "data", True)
    (tmp_path / "data" / "y_eval.npy").unlink()
    config = load_config(None, [*BASE, f'workload.dataset="{tmp_path / "data"}"', "run.eval_every=1"])
    with pytest.raises(InputError, match="has X_eval but no y_eval"):
        make_workload(config.workload, 6, 5).held_out()


def mpigc(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mpigc", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("overrides, key", [
    (["run.verify=true", "run.target_loss=0.3"], "run.target_loss: needs run.eval_every"),
    (["run.eval_every=2"], "run.eval_every: needs run.verify = true"),
    (["run.verify=true", "run.eval_every=2", 'code.scheme="m-sgc"'], "run.eval_every: not supported"),
    (["run.verify=true", "run.eval_every=-1"], "run.eval_every"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, overrides, key) -> None:
    out = tmp_path / "never.h5"
    proc = mpigc("simulate", *(x for o in overrides for x in ("--set", o)), "--out", str(out))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and key in proc.stderr, proc.stderr
    assert not out.exists()


def test_old_files_without_eval_fields_still_read(tmp_path) -> None:
    path = tmp_path / "old.h5"
    simulate(load_config(None, ["run.rounds=5", 'code.scheme="crc"']), str(path), log=io.StringIO())
    with h5py.File(path, "r+") as f:   # rewrite the table as an older mpigc wrote it
        table = f["runs/crc/rounds"][()]
        old = np.dtype([(n, table.dtype[n]) for n in table.dtype.names if not n.startswith("eval_")])
        del f["runs/crc/rounds"]
        f.create_dataset("runs/crc/rounds", data=np.array(table[list(old.names)], dtype=old), maxshape=(None,))
        f["runs/crc"].attrs["target_loss"] = 0.5   # as if asked for: still no time without eval_loss
    (run,) = results.read_runs(path)
    assert "eval_loss" not in run.tables["rounds"].dtype.names
    info = mpigc("info", str(path))
    assert info.returncode == 0 and "crc" in info.stdout, info.stderr
    assert "—" in info.stdout.splitlines()[-1]
    assert mpigc("info", str(path), "--csv").returncode == 0
    from analysis import common, fig8_time_to_accuracy

    (loaded,) = common.load_runs([str(path)])
    with pytest.raises(common.FigureDataError, match="no eval_loss"):
        fig8_time_to_accuracy.curve(loaded)
