"""Tests of mpigc.report: summary statistics and text output."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest

from mpigc.report import COLUMNS, csv_rows, format_table, loop_time, provenance_header, summarize, summary_table
from mpigc.results import ROUNDS_DTYPE  # the real layout, not a copy that could drift


def make_rounds(latency, status=None, coef=None, grad=None) -> np.ndarray:
    """Build a rounds table from columns."""
    n = len(latency)
    rows = np.zeros(n, dtype=ROUNDS_DTYPE)
    rows["round"] = np.arange(n)
    rows["latency"] = latency
    rows["status"] = status if status is not None else 0
    rows["coef_error"] = coef if coef is not None else 0.0
    rows["grad_error"] = grad if grad is not None else np.nan
    return rows


def test_summarize_matches_numpy() -> None:
    rng = np.random.default_rng(1)
    lat = rng.exponential(0.01, 101)
    status = rng.integers(0, 3, 101)
    coef = rng.random(101)
    grad = rng.random(101)
    grad[::3] = np.nan
    s = summarize(make_rounds(lat, status, coef, grad))
    assert s["rounds"] == 101
    assert s["mean"] == pytest.approx(np.mean(lat))
    assert s["median"] == pytest.approx(np.median(lat))
    assert s["p95"] == pytest.approx(np.percentile(lat, 95))
    assert s["exact"] == pytest.approx(np.mean(status == 0))
    assert s["coef_error"] == pytest.approx(np.mean(coef))
    assert s["grad_error"] == pytest.approx(np.nanmean(grad))
    assert "stale" not in s


def test_summarize_known_values() -> None:
    s = summarize(make_rounds([1.0, 2.0, 3.0, 4.0], status=[0, 1, 0, 2], coef=[0, 0, 1, 1]))
    assert (s["mean"], s["median"], s["exact"], s["coef_error"]) == (2.5, 2.5, 0.5, 0.5)
    assert s["p95"] == pytest.approx(3.85)
    assert math.isnan(s["grad_error"])     # never verified: NaN without a warning


def test_summarize_empty() -> None:
    s = summarize(make_rounds([]))
    assert s["rounds"] == 0
    assert all(math.isnan(s[k]) for k in ("mean", "median", "p95", "exact", "grad_error"))


def test_summary_table_speedup_and_alignment() -> None:
    slow = summarize(make_rounds([0.02, 0.02], coef=[1e-3, 1e-3]))
    fast = summarize(make_rounds([0.01, 0.01], grad=[2e-9, np.nan]))
    text = summary_table([("base", "uncoded", slow), ("partial-2", "partial", fast)])
    lines = text.splitlines()
    assert len(lines) == 3
    assert lines[0].split() == list(COLUMNS)
    base, part = (line.split() for line in lines[1:])
    assert base[-1] == "1.00" and part[-1] == "2.00"
    assert base[3] == "20.000" and part[3] == "10.000"        # mean_ms
    assert base[6] == "nan"                                    # loop_ms: none given
    assert base[7] == "100.0"                                  # exact_%
    assert base[8] == "1.000e-03" and part[9] == "2.000e-09" and base[9] == "nan"
    # numbers end, text starts, at the same offset on every line
    spans = [[m.span() for m in re.finditer(r"\S+", line)] for line in lines]
    for i, col in enumerate(COLUMNS):
        side = 0 if col in ("run", "scheme") else 1
        assert len({sp[i][side] for sp in spans}) == 1, col


def test_summary_table_zero_mean_and_empty() -> None:
    zero = summarize(make_rounds([0.0]))
    one = summarize(make_rounds([1.0]))
    assert summary_table([("a", "x", one), ("b", "y", zero)]).splitlines()[2].split()[-1] == "nan"
    assert summary_table([]).split() == list(COLUMNS)


def test_format_table_aligns_text_left_and_numbers_right() -> None:
    text = format_table([["name", "n", "note"], ["a", "1000", "x"], ["long-name", "7", ""]], left={0, 2})
    assert text.splitlines() == ["name          n  note",
                                 "a          1000  x",
                                 "long-name     7"]
    assert format_table([]) == "" and format_table([["only"]]) == "only"


def test_csv_rows() -> None:
    rows = csv_rows([("a", "x", summarize(make_rounds([2.0]))),
                     ("b", "y", summarize(make_rounds([0.5])))])
    assert rows[0][0] == "run" and len(rows) == 3
    assert rows[2][rows[0].index("speedup")] == "4.0" and rows[1][3] == "2.0"
    assert rows[0][-2:] == ["loop_s", "interrupted"] and rows[1][-2:] == ["nan", ""]


def test_loop_time_and_interrupted_runs() -> None:
    done = {**summarize(make_rounds([0.002, 0.004])), "loop": 0.005}
    cut = {**summarize(make_rounds([0.002])), "loop": 0.0045, "interrupted": "SIGTERM"}
    lines = summary_table([("a", "crc", done), ("b", "crc", cut)]).splitlines()
    assert lines[0].split()[6] == "loop_ms"
    assert lines[1].split()[6] == "5.000" and lines[2].split()[6] == "4.500"
    assert lines[3:] == ["# b: interrupted by SIGTERM after 1 round(s)"]
    rows = csv_rows([("a", "crc", done), ("b", "crc", cut)])
    assert rows[1][-2:] == ["0.005", ""] and rows[2][-2:] == ["0.0045", "SIGTERM"]
    assert loop_time({"master_wall_s": 0.75}, 100) == 0.0075
    assert math.isnan(loop_time({}, 100)) and math.isnan(loop_time({"master_wall_s": 1.0}, 0))


def test_provenance_header() -> None:
    info = {"workers": 8, "backend": "mpi", "created": "2024-01-01T00:00:00+00:00",
            "host": "n1", "hosts": ["n1", "n2"], "mpi_library": "MPICH 4.1",
            "mpigc_version": "0.1.0", "config": "[run]\nseed = 1\n", "empty": None}
    lines = provenance_header(info).splitlines()
    assert all(line.startswith("#") for line in lines)
    assert lines[:6] == ["# mpigc: 0.1.0", "# date: 2024-01-01T00:00:00+00:00", "# host: n1",
                         "# hosts: n1, n2", "# backend: mpi", "# mpi library: MPICH 4.1"]
    assert lines[6:] == ["# workers: 8", "# config: [run]", "#   seed = 1"]
