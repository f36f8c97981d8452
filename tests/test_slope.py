"""``delays.slope = "fit"``: P3's authors' least-squares slope over a trace set's loads (issue 11)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import lambda_trace

from mpigc.delays.slope import fit_values, fitted_slope, siblings
from mpigc.errors import InputError


def write_set(folder: Path, slope: float, loads=(0.0, 0.25, 0.5, 1.0), rows: int = 6, m: int = 5) -> Path:
    """A trace set value = base + load·slope + noise, named like the Lambda traces; returns the load-0 path."""
    rng = np.random.default_rng(1)
    base = rng.uniform(0.5, 1.0, (rows, m))
    for load in loads:
        values = base + load * slope + rng.normal(0, 0.01, (rows, m))
        path = folder / f"cnn-x-load{load:.2f}-batch256-mbp-r{rows}.csv"
        path.write_text("\n".join(",".join(f"{v:.6f}" for v in row) for row in values) + "\n")
    (folder / f"cnn-y-load0.50-batch256-mbp-r{rows}.csv").write_text("9,9,9,9,9\n")  # another set: ignored
    return folder / f"cnn-x-load0.00-batch256-mbp-r{rows}.csv"


def test_fit_recovers_the_slope(tmp_path):
    path = write_set(tmp_path, 2.2)
    assert sorted(siblings(str(path))) == [0.0, 0.25, 0.5, 1.0]
    assert fitted_slope(str(path)) == pytest.approx(2.2, abs=0.02)


def test_pooled_least_squares_is_the_authors_fit():
    """Every value counts once: with unequal sets the fit is not the fit of per-load means."""
    samples = {0.0: np.array([1.0, 1.0, 1.0, 4.0]), 0.5: np.array([1.5]), 1.0: np.array([3.0, 3.0])}
    x = np.array([0, 0, 0, 0, 0.5, 1, 1.0])
    y = np.concatenate(list(samples.values()))
    assert fit_values(samples) == pytest.approx(np.polyfit(x, y, 1)[0])
    means = np.polyfit(list(samples), [v.mean() for v in samples.values()], 1)[0]
    assert fit_values(samples) != pytest.approx(means)


@pytest.mark.parametrize("make,needle", [
    (lambda d: write_set(d, 2.2, loads=(0.0,)), "found none"),
    (lambda d: write_set(d, -0.3), "give a number"),
    (lambda d: d / "trace.csv", "named like"),
])
def test_no_fit_is_one_clear_error(tmp_path, make, needle):
    path = make(tmp_path)
    with pytest.raises(InputError) as err:
        fitted_slope(str(path))
    assert err.value.key == "delays.slope" and needle in str(err.value) and "\n" not in str(err.value)


def test_lambda_trace_slopes():
    path = lambda_trace("cnn-canada-load0.00-batch2048-desktop-r20.csv")
    assert fitted_slope(str(path)) == pytest.approx(1.0989, abs=1e-3)


def test_tune_slope_fit_and_wider_lambda(tmp_path, capsys):
    from mpigc.cli import main

    path = write_set(tmp_path, 2.2, m=12)
    assert main(["tune", str(path), "--jobs", "8", "--workers", "12", "--slope", "fit", "--lambda-max", "11"]) == 0
    out = capsys.readouterr().out
    assert "(fitted)" in out and "lambda <= 11" in out
    assert main(["tune", str(path), "--jobs", "8", "--workers", "12", "--lambda-max", "12"]) == 2
    assert "--lambda-max" in capsys.readouterr().err
    assert main(["tune", str(path), "--jobs", "8", "--workers", "12", "--slope", "steep"]) == 2
