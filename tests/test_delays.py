"""Straggler models: distributions, reproducibility, position independence, trace replay and its errors."""
from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest
from helpers import lambda_trace

from mpigc import results
from mpigc.config import DelaysConfig
from mpigc.delays import DelayModel
from mpigc.errors import InputError

TRACE = np.array([[1.0, 2.0, 3.0, 4.0],
                  [0.5, 0.5, 1.5, 2.5],
                  [2.0, 8.0, 4.0, 4.0]])


def model(workers: int = 8, seed: int = 1, **kw) -> DelayModel:
    return DelayModel(DelaysConfig(**kw), seed, workers, reader=results)


def write_csv(path: Path, rows, header=True) -> str:
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        if header:
            out.writerow([f"w{j}" for j in range(len(rows[0]))])
        out.writerows(rows)
    return str(path)


def stack(dm: DelayModel, rounds: int, positions: int = 1) -> np.ndarray:
    return dm.block(range(rounds), positions)[0]


# Every model with parameters that make its draws non-trivial.
CONFIGS = {
    "none": dict(model="none"),
    "constant": dict(model="constant", slow=(1, 3), factor=3.0),
    "shifted-exponential": dict(model="shifted-exponential", shift=0.5, scale=2.0),
    "shifted-exponential/worker": dict(model="shifted-exponential", per="worker"),
    "pareto": dict(model="pareto", alpha=3.0),
    "pareto/worker": dict(model="pareto", alpha=3.0, per="worker"),
    "bimodal": dict(model="bimodal", p=0.3, factor=5.0),
    "gilbert-elliott": dict(model="gilbert-elliott", p_bad=0.3, p_good=0.4, factor=4.0),
    "trace": dict(model="trace"),
    "trace/slope": dict(model="trace", slope=2.0),
}


@pytest.fixture
def configs(tmp_path):
    path = write_csv(tmp_path / "t.csv", TRACE)
    return {k: {**v, "trace": path} if v["model"] == "trace" else v for k, v in CONFIGS.items()}


# ----------------------------------------------------------------------------- every model

@pytest.mark.parametrize("name", CONFIGS)
def test_values_do_not_depend_on_the_number_of_positions(configs, name):
    dm = model(**configs[name])
    for rnd in (0, 1, 7, 40):
        wide = dm.durations(rnd, 6)
        assert wide.shape == (8, 6)
        for p in (1, 2, 5):
            np.testing.assert_array_equal(dm.durations(rnd, p), wide[:, :p])


@pytest.mark.parametrize("name", CONFIGS)
def test_same_seed_reproduces_and_random_models_differ_across_seeds(configs, name):
    a = stack(model(seed=3, **configs[name]), 50, 3)
    b = stack(model(seed=3, **configs[name]), 50, 3)
    np.testing.assert_array_equal(a, b)
    assert np.all(a > 0)
    c = stack(model(seed=4, **configs[name]), 50, 3)
    if name in ("none", "constant") or name.startswith("trace"):
        np.testing.assert_array_equal(a, c)
    else:
        assert not np.array_equal(a, c)


def test_per_worker_draws_are_constant_over_positions_and_per_chunk_draws_are_not():
    per_worker = model(model="pareto", per="worker").durations(0, 5)
    assert np.all(per_worker == per_worker[:, :1])
    per_chunk = model(model="pareto").durations(0, 5)
    assert np.all(np.ptp(per_chunk, axis=1) > 0)


# ----------------------------------------------------------------------------- distributions

def test_none_and_constant_are_exact():
    np.testing.assert_array_equal(model(model="none", chunk_time=0.25).durations(5, 3), np.full((8, 3), 0.25))
    dur = model(model="constant", chunk_time=0.5, slow=(0, 6), factor=3.0).durations(9, 2)
    expected = np.full((8, 2), 0.5)
    expected[[0, 6]] = 1.5
    np.testing.assert_array_equal(dur, expected)


def test_shifted_exponential_mean_and_minimum():
    dur = stack(model(model="shifted-exponential", chunk_time=0.1, shift=0.5, scale=2.0, workers=50), 400, 10)
    assert dur.min() >= 0.1 * 0.5
    assert dur.mean() == pytest.approx(0.1 * (0.5 + 2.0), rel=0.02)


def test_pareto_mean_and_minimum():
    dur = stack(model(model="pareto", chunk_time=1.0, alpha=3.0, workers=100), 400, 5)
    assert dur.min() >= 1.0
    assert dur.mean() == pytest.approx(3.0 / 2.0, abs=0.03)
    assert np.median(dur) == pytest.approx(2 ** (1 / 3), rel=0.01)    # classic Pareto, not Lomax


def test_bimodal_slow_fraction_and_values():
    dur = stack(model(model="bimodal", chunk_time=1.0, p=0.2, factor=4.0, workers=50), 1000)
    assert set(np.unique(dur)) == {1.0, 4.0}
    assert np.mean(dur == 4.0) == pytest.approx(0.2, abs=0.01)


def _ge_states(dm: DelayModel, rounds: int) -> np.ndarray:
    return stack(dm, rounds)[:, :, 0] > dm.chunk_time       # (rounds, m) bad


def test_gilbert_elliott_starts_good_then_follows_the_chain():
    states = _ge_states(model(model="gilbert-elliott", p_bad=0.1, p_good=0.5, workers=4000), 3)
    assert not states[0].any()
    assert states[1].mean() == pytest.approx(0.1, abs=0.015)
    assert states[2].mean() == pytest.approx(0.1 * 0.5 + 0.9 * 0.1, abs=0.02)


def test_gilbert_elliott_stationary_fraction_and_burst_length():
    p_bad, p_good = 0.1, 0.4
    states = _ge_states(model(model="gilbert-elliott", p_bad=p_bad, p_good=p_good, workers=20), 4000)
    assert states.mean() == pytest.approx(p_bad / (p_bad + p_good), abs=0.015)
    padded = np.pad(states.T.astype(int), ((0, 0), (1, 1)))
    edges = np.diff(padded, axis=1)
    lengths = np.nonzero(edges == -1)[1] - np.nonzero(edges == 1)[1]
    assert lengths.size > 1000
    assert lengths.mean() == pytest.approx(1 / p_good, rel=0.06)


def test_gilbert_elliott_random_access_matches_sequential():
    cfg = dict(model="gilbert-elliott", p_bad=0.2, p_good=0.3, workers=6)
    sequential = stack(model(**cfg), 2100)
    fresh = model(**cfg)
    for rnd in (2099, 5, 1500, 1024, 1023, 2050, 0):
        np.testing.assert_array_equal(fresh.durations(rnd, 1), sequential[rnd])


# ----------------------------------------------------------------------------- failures

def test_failure_probability_and_exact_count():
    dm = model(model="none", failures=0.25, workers=40)
    failed = np.array([dm.failed(r) for r in range(500)])
    assert failed.mean() == pytest.approx(0.25, abs=0.02)
    dm = model(model="none", fail_count=3, workers=10)
    counts = [dm.failed(r).sum() for r in range(100)]
    assert set(counts) == {3}
    assert model(model="none").failed(0).sum() == 0


# ----------------------------------------------------------------------------- trace replay

def test_trace_ratios_replayed_exactly_with_wrapping(tmp_path):
    path = write_csv(tmp_path / "t.csv", TRACE)
    dm = model(model="trace", trace=path, chunk_time=0.1, workers=6)
    median = np.median(TRACE, axis=1)
    for rnd in range(7):
        row = rnd % 3
        expected = 0.1 * TRACE[row, np.arange(6) % 4] / median[row]
        np.testing.assert_allclose(dm.durations(rnd, 3), np.repeat(expected[:, None], 3, axis=1), rtol=1e-15)
    np.testing.assert_array_equal(dm.trace_seconds(4), TRACE[1, [0, 1, 2, 3, 0, 1]])


def test_trace_slope_is_the_affine_model(tmp_path):
    path = write_csv(tmp_path / "t.csv", TRACE)
    dm = model(model="trace", trace=path, slope=2.0, workers=4)
    np.testing.assert_array_equal(dm.affine_round_time(2, 0.5), TRACE[2] + 1.0)
    # A worker that finishes k chunks of load 1/N has spent value + (k/N)·slope.
    dur = dm.durations(2, 3, chunk_load=0.25)
    np.testing.assert_allclose(dur.sum(axis=1), dm.affine_round_time(2, 0.75))
    np.testing.assert_allclose(dm.durations(2, 1).sum(axis=1), dm.affine_round_time(2, 1 / 4))
    with pytest.raises(ValueError):
        model(model="none").affine_round_time(0, 0.5)


def test_trace_without_wrap_is_checked_early(tmp_path):
    path = write_csv(tmp_path / "t.csv", TRACE)
    with pytest.raises(InputError, match=r"has 3 rounds/4 workers, the run needs 5 workers") as err:
        model(model="trace", trace=path, wrap=False, workers=5)
    assert err.value.key == "delays.trace" and path in str(err.value)
    dm = model(model="trace", trace=path, wrap=False, workers=4)
    dm.check_rounds(3)
    with pytest.raises(InputError, match=r"has 3 rounds/4 workers, the run needs 10 rounds"):
        dm.check_rounds(10)
    with pytest.raises(InputError, match="needs 4 rounds"):
        dm.durations(3, 1)
    model(model="trace", trace=path, workers=5).check_rounds(10)      # wrapping: fine


def test_headerless_csv_and_blank_lines(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("1,2,3\n\n2,2,4\n\n")
    dm = model(model="trace", trace=str(path), workers=3, slope=0.0)
    np.testing.assert_array_equal(dm.trace_seconds(1), [2, 2, 4])


BAD_TRACES = {
    "empty": ("", "is empty"),
    "header only": ("w0,w1\n", "header but no rows"),
    "ragged": ("w0,w1,w2\n1,2,3\n1,2\n", "line 3 has 2 values, the header has 3"),
    "non-numeric": ("w0,w1\n1,2\n3,fast\n", "line 3, column w1: 'fast' is not a number"),
    "empty cell": ("w0,w1\n1,\n", "line 2, column w1: '' is not a number"),
    "negative": ("w0,w1\n1,2\n-0.5,1\n", "line 3, column w0: negative time -0.5"),
    "nan": ("w0,w1\n1,nan\n", "line 2, column w1: nan is not a finite"),
    "inf": ("1,2\n1,inf\n", "line 2, column 2: inf is not a finite"),
    "zero median": ("w0,w1,w2\n0,0,1\n", "row 0 has median 0"),
    "not utf-8": (b"\xff\xfe\x00\x01", "cannot be read"),
}


@pytest.mark.parametrize("case", BAD_TRACES)
def test_bad_trace_files_are_one_line_input_errors(tmp_path, case):
    content, problem = BAD_TRACES[case]
    path = tmp_path / "bad.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(InputError) as err:
        model(model="trace", trace=str(path), workers=2)
    assert err.value.key == "delays.trace"
    assert str(path) in str(err.value) and problem in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("where", ["missing.csv", "missing.h5", "dir"])
def test_missing_trace_file(tmp_path, where):
    (tmp_path / "dir").mkdir()
    with pytest.raises(InputError, match=r"delays\.trace: .*(no such file|is a directory)"):
        model(model="trace", trace=str(tmp_path / where))


def _result_file(path: Path, busy: np.ndarray, name: str = "sim") -> None:
    rounds, workers = busy.shape
    rows = [(r + 10, w, busy[r, w], 0.0, 1, False, 0.0) for r in range(rounds) for w in range(workers)][::-1]
    writer = results.ResultFile(path).new_run(name, {"scheme": "uncoded"}, ("rounds", "workers"))
    writer.append("workers", rows)
    writer.flush()


def test_result_file_workers_table_round_trip(tmp_path):
    path = tmp_path / "r.h5"
    _result_file(path, TRACE)
    dm = model(model="trace", trace=str(path), slope=1.0, workers=4)
    for rnd in range(3):
        np.testing.assert_array_equal(dm.trace_seconds(rnd), TRACE[rnd])
    _result_file(path, 2 * TRACE, name="second")
    with pytest.raises(InputError, match="several runs"):
        model(model="trace", trace=str(path), workers=4)
    named = model(model="trace", trace=f"{path}:second", slope=1.0, workers=4)
    np.testing.assert_array_equal(named.trace_seconds(1), 2 * TRACE[1])
    with pytest.raises(InputError, match=r"r\.h5:nope: .*no run named 'nope'"):
        model(model="trace", trace=f"{path}:nope", workers=4)
    with pytest.raises(InputError, match="no reader"):  # delays never open HDF5 themselves
        DelayModel(DelaysConfig(model="trace", trace=f"{path}:second", slope=1.0), 1, 4)


def test_result_file_problems(tmp_path):
    path = tmp_path / "r.h5"
    writer = results.ResultFile(path).new_run("sim", {}, ("rounds",))
    writer.flush()
    with pytest.raises(InputError, match="no workers table"):
        model(model="trace", trace=str(path))
    holes = tmp_path / "holes.h5"
    writer = results.ResultFile(holes).new_run("sim", {}, ("workers",))
    writer.append("workers", [(0, 0, 1.0, 0.0, 1, False, 0.0), (0, 1, 1.0, 0.0, 1, False, 0.0),
                              (1, 0, 1.0, 0.0, 1, False, 0.0)])
    writer.flush()
    with pytest.raises(InputError, match="round 1 has no row for worker 1"):
        model(model="trace", trace=str(holes))
    not_h5 = tmp_path / "x.h5"
    not_h5.write_text("w0\n1\n")
    with pytest.raises(InputError, match=r"delays\.trace: .*x\.h5: not an HDF5 file"):
        model(model="trace", trace=str(not_h5))


def test_real_lambda_trace():
    trace = lambda_trace("cnn-canada-load0.00-batch256-mbp-r10.csv")
    with open(trace, newline="") as fh:
        raw = np.array(list(csv.reader(fh))[1:], dtype=float)
    assert raw.shape == (10, 256)
    dm = model(model="trace", trace=os.fspath(trace), chunk_time=1.0, workers=256)
    ratios = np.array([dm.durations(r, 1)[:, 0] for r in range(10)])
    np.testing.assert_allclose(np.median(ratios, axis=1), 1.0)
    np.testing.assert_allclose(ratios, raw / np.median(raw, axis=1, keepdims=True))
    with pytest.raises(InputError, match="has 10 rounds/256 workers, the run needs 300 workers"):
        model(model="trace", trace=os.fspath(trace), wrap=False, workers=300)
    wide = model(model="trace", trace=os.fspath(trace), slope=2.2, workers=300)
    np.testing.assert_array_equal(wide.trace_seconds(13)[256:], raw[3, :44])
