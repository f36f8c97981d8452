"""``mpigc trace`` and the fitted straggler model: recovery, sampling = simulation, held-out checks, export."""
from __future__ import annotations

import tomllib

import numpy as np
import pytest

from mpigc import results
from mpigc.cli import main
from mpigc.config import DelaysConfig, load_config
from mpigc.delays import DelayModel
from mpigc.delays.fit import check_trace, fit_traces
from mpigc.delays.fitted import FittedParams, FittedValues
from mpigc.delays.lambda_traces import trace_dir
from mpigc.delays.trace import load_trace
from mpigc.delays.tracecheck import CheckTable, predicted_statistics, trace_statistics
from mpigc.errors import InputError

TRUTH = FittedParams(speed_sigma=0.15, p_bad=0.05, p_good=0.3, floor=0.5, fast_mu=-0.7, fast_sigma=0.1,
                     slow_mu=0.6, slow_sigma=0.3)


def write(path, values) -> str:
    from mpigc.tracecmd import write_csv

    write_csv(str(path), np.asarray(values, dtype=float))
    return str(path)


def test_fit_recovers_the_parameters_of_its_own_model():
    values = FittedValues(TRUTH, seed=3, workers=300).trace(40)
    fit = fit_traces([check_trace(values, "synthetic")]).params
    assert fit.p_bad == pytest.approx(TRUTH.p_bad, rel=0.25)
    assert fit.p_good == pytest.approx(TRUTH.p_good, rel=0.25)
    assert fit.speed_sigma == pytest.approx(TRUTH.speed_sigma, rel=0.2)
    # the shift is found on a grid: compare what it determines, the states' medians
    for mu, true_mu in ((fit.fast_mu, TRUTH.fast_mu), (fit.slow_mu, TRUTH.slow_mu)):
        assert fit.floor + np.exp(mu) == pytest.approx(TRUTH.floor + np.exp(true_mu), rel=0.05)


def test_a_worker_keeps_its_speed_and_values_for_any_number_of_workers():
    few = FittedValues(TRUTH, seed=9, workers=5)
    many = FittedValues(TRUTH, seed=9, workers=500)
    np.testing.assert_array_equal(few.speed, many.speed[:5])
    assert many.trace(3).shape == (3, 500)
    # round r depends on (seed, r) only: asking rounds out of order gives the same values
    np.testing.assert_array_equal(few.values(7), FittedValues(TRUTH, seed=9, workers=5).trace(8)[7])


@pytest.mark.parametrize("slope", [None, 1.5])
def test_simulating_the_fitted_model_draws_what_trace_sample_writes(tmp_path, slope):
    model_path = tmp_path / "model.toml"
    model_path.write_text("[delays]\nmodel = \"fitted\"\n" + "".join(f"{k} = {v!r}\n" for k, v in
                                                                     TRUTH.as_dict().items()))
    sample = str(tmp_path / "s.csv")
    assert main(["trace", "sample", str(model_path), "--rounds", "12", "--workers", "6", "--seed", "4",
                 "--out", sample]) == 0
    extra = {} if slope is None else {"slope": slope}
    fitted = DelayModel(DelaysConfig(model="fitted", chunk_time=0.02, **TRUTH.as_dict(), **extra), 4, 6)
    replay = DelayModel(DelaysConfig(model="trace", trace=sample, chunk_time=0.02, wrap=False, **extra), 4, 6,
                        reader=results)
    for rnd in range(12):
        np.testing.assert_array_equal(fitted.durations(rnd, 3), replay.durations(rnd, 3))


def test_simulate_accepts_a_model_file_for_any_workers_and_rounds(tmp_path):
    values = FittedValues(TRUTH, seed=1, workers=30).trace(12)
    trace = write(tmp_path / "t.csv", values)
    model = str(tmp_path / "m.toml")
    assert main(["trace", "fit", trace, "--out", model]) == 0
    config = load_config(model, ["code.workers=11", "run.rounds=40", "code.scheme=crc", "code.load=2"])
    assert config.delays.model == "fitted" and config.codes[0].workers == 11
    out = str(tmp_path / "r.h5")
    assert main(["simulate", model, "--set", "code.workers=11", "--set", "run.rounds=40", "--set",
                 "code.scheme=crc", "--out", out]) == 0
    (run,) = results.read_runs(out)
    rounds = run.tables["rounds"]
    assert rounds.size == 40 and np.all(rounds["status"] == 0) and np.all(rounds["latency"] > 0)


def _halves(name: str) -> tuple[np.ndarray, np.ndarray]:
    path = trace_dir() / name
    assert path.exists(), f"Lambda trace missing: {path} (set MPIGC_TRACE_DIR)"
    values = load_trace(str(path))
    half = values.shape[0] // 2
    return values[:half], values[half:]


@pytest.mark.parametrize("name", ["cnn-sydney-load0.00-batch256-mbp-r10.csv",
                                  "cnn-sydney-load0.00-batch256-mbp2-r20.csv"])
def test_fitted_model_predicts_held_out_sydney_rounds_far_better_than_iid(name):
    first, second = _halves(name)
    fit = fit_traces([check_trace(first, name)])
    rounds, workers = second.shape
    model = predicted_statistics(lambda rng: FittedValues(fit.params, int(rng.integers(2**63)), workers)
                                 .trace(rounds), fit.slow_threshold, 100, 0)
    iid = predicted_statistics(lambda rng: fit.baseline.sample(rng, rounds, workers), fit.slow_threshold, 100, 0)
    table = CheckTable(trace_statistics(second, fit.slow_threshold), model, iid)
    h = table.headline()
    assert h["model_median"] <= 0.08, table.format()
    assert h["model_median"] <= 0.5 * h["baseline_median"], table.format()
    assert h["model_worst_any_row"] <= 0.35, table.format()


def test_check_prints_the_table_and_headline(tmp_path, capsys):
    first, second = _halves("cnn-sydney-load0.00-batch256-mbp-r10.csv")
    model = str(tmp_path / "m.toml")
    assert main(["trace", "fit", write(tmp_path / "a.csv", first), "--out", model]) == 0
    with open(model, "rb") as fh:
        info = tomllib.load(fh)["fit"]
    assert info["baseline"]["shift"] == pytest.approx(first.min())
    capsys.readouterr()
    assert main(["trace", "check", model, write(tmp_path / "b.csv", second), "--replicates", "20"]) == 0
    out = capsys.readouterr().out
    assert "k=m-5" in out and "P(slow|slow)" in out and "median error model" in out


def test_statistics_of_a_known_trace():
    values = np.array([[1.0, 5.0, 2.0], [1.0, 6.0, 3.0], [4.0, 1.0, 2.0], [1.0, 7.0, 2.0]])
    stats = trace_statistics(values, slow_threshold=4.5)
    # slow cells: worker 1 in rounds 0, 1 and 3: runs of 2 and 1; P(slow|slow) = 1 of 2
    assert stats[7] == pytest.approx(1.5) and stats[8] == pytest.approx(0.5)
    assert stats[6] == pytest.approx(np.mean([5, 6, 4, 7]))       # k = m: the slowest of each round
    assert stats[3] == pytest.approx(np.mean([1, 1, 1, 1]))       # k = m/2 = 1 for m = 3


def _detail_run(tmp_path, scheme: str) -> str:
    out = str(tmp_path / f"{scheme}.h5")
    assert main(["simulate", "--set", f"code.scheme={scheme}", "--set", "code.workers=6", "--set", "code.load=2",
                 "--set", "run.rounds=15", "--set", 'run.detail="workers"', "--out", out]) == 0
    return out


def test_export_writes_the_runs_busy_seconds_and_marks_censored_values(tmp_path, capsys):
    out = _detail_run(tmp_path, "crc")
    csv_path = str(tmp_path / "t.csv")
    assert main(["trace", "export", out, "--out", csv_path]) == 0
    (run,) = results.read_runs(out)
    workers = run.tables["workers"]
    exported = load_trace(csv_path, censored="keep")
    assert exported.shape == (15, 6)
    done = workers["tasks_done"] >= 2
    kept = exported[workers["round"], workers["worker"]]
    np.testing.assert_array_equal(kept[done], workers["busy"][done])      # values equal the run's, exactly
    assert np.all(np.isnan(kept[~done]))                                  # cut short: censored
    assert (~done).any(), "crc stops slow workers; the run should hold censored values"
    with pytest.raises(InputError, match="censored"):
        load_trace(csv_path)
    assert main(["trace", "fit", csv_path, "--out", str(tmp_path / "m.toml")]) == 2
    assert "censored" in capsys.readouterr().err
    # the fit can leave them out of the likelihood; replay can only drop whole rounds, and crc cuts
    # someone short in every round of this run: refused with one line
    assert main(["trace", "fit", csv_path, "--drop-censored", "--out", str(tmp_path / "m.toml")]) == 0
    assert main(["trace", "export", out, "--out", str(tmp_path / "d.csv"), "--drop-censored"]) == 2
    assert "every round holds a censored value" in capsys.readouterr().err


def test_export_of_a_run_without_stops_is_complete_and_replays(tmp_path, capsys):
    out = _detail_run(tmp_path, "uncoded")
    csv_path = str(tmp_path / "t.csv")
    assert main(["trace", "export", out, "--out", csv_path, "--drop-censored"]) == 0
    (run,) = results.read_runs(out)
    workers = run.tables["workers"]
    exported = load_trace(csv_path)
    assert exported.shape == (15, 6)
    np.testing.assert_array_equal(exported[workers["round"], workers["worker"]], workers["busy"])


def test_fit_with_censored_values_left_out_still_recovers_the_chain():
    values = FittedValues(TRUTH, seed=5, workers=250).trace(40)
    hidden = values.copy()
    hidden[np.random.default_rng(0).random(values.shape) < 0.1] = np.nan   # 10 % censored at random
    fit = fit_traces([check_trace(hidden, "synthetic", censored=True)]).params
    assert fit.p_bad == pytest.approx(TRUTH.p_bad, rel=0.3)
    assert fit.p_good == pytest.approx(TRUTH.p_good, rel=0.3)


@pytest.mark.parametrize("argv, problem", [
    (["trace", "fit", "{one_round}", "--out", "{tmp}/m.toml"], "at least 2 rounds"),
    (["trace", "fit", "{missing}", "--out", "{tmp}/m.toml"], "no such file"),
    (["trace", "sample", "{not_fitted}", "--rounds", "3", "--workers", "2", "--out", "{tmp}/s.csv"], "fitted"),
    (["trace", "export", "{not_h5}", "--out", "{tmp}/t.csv"], ""),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, problem):
    names = {"one_round": write(tmp_path / "one.csv", [[1.0, 2.0, 3.0]]), "missing": str(tmp_path / "nope.csv"),
             "not_fitted": str(tmp_path / "plain.toml"), "not_h5": write(tmp_path / "x.csv", [[1.0, 2.0]]),
             "tmp": str(tmp_path)}
    (tmp_path / "plain.toml").write_text("[delays]\nmodel = \"none\"\n")
    assert main([a.format(**names) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mpigc: error:") and problem in err[0]
    assert not (tmp_path / "m.toml").exists() and not (tmp_path / "s.csv").exists()
