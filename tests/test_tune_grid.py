"""The tuner's vectorised round rule equals the engine's on every grid point of small traces (issue 11)."""
from __future__ import annotations

import numpy as np
import pytest
from helpers import lambda_trace

from mpigc.codes import make_scheme
from mpigc.config import CodeConfig
from mpigc.delays import load_trace
from mpigc.sim.tune import _msgc_decodes, bursty_grid, bursty_params, engine_total, gc_grid, trace_block, tune

JOBS, MU = 30, 1.0


def synthetic() -> tuple[np.ndarray, float]:
    """8 workers, stragglers in bursts and alone, a cold start recurring at every wrap."""
    rng = np.random.default_rng(11)
    values = 0.6 + rng.exponential(0.05, (13, 8))
    values[rng.random(values.shape) < 0.1] *= 5
    values[2:4, 3] = 4.0  # a two-round burst of one worker
    values[7, :3] = 3.0  # three at once
    values[0, 5] = 20.0
    return values, 2.2


def lambda_cut() -> tuple[np.ndarray, float]:
    """10 workers of a Lambda trace: the 5 slowest columns and 5 ordinary ones, 20 rounds."""
    path = lambda_trace("cnn-canada-load0.00-batch2048-desktop-r20.csv")
    values = load_trace(str(path))
    order = np.argsort(values.max(axis=0))
    return values[:, np.concatenate([order[-5:], order[:5]])], 1.1


@pytest.mark.parametrize("make", [synthetic, lambda_cut])
def test_every_grid_point_matches_the_engine(make):
    values, slope = make()
    m = values.shape[1]
    base = trace_block(values, m, JOBS + 5)
    lams = np.arange(1, m)
    tol = np.arange(0, m)
    total, waits = gc_grid(base[:JOBS], slope, MU, tol)
    assert len(total) == len(waits) == len(tol) == m
    for s, t, n in zip(tol, total, waits):
        assert (t, n) == pytest.approx(engine_total("gc-seq", {"load": int(s) + 1}, base, JOBS, MU, slope), rel=1e-12)
    seen_wait = {"m-sgc": 0, "sr-sgc": 0}
    for scheme in ("m-sgc", "sr-sgc"):
        for B, W in bursty_params(scheme):
            total, waits = bursty_grid(scheme, base, JOBS, slope, MU, B, W, lams)
            assert len(total) == len(waits) == len(lams) == m - 1
            for lam, t, n in zip(lams, total, waits):
                ref = engine_total(scheme, {"B": B, "W": W, "lambda": int(lam)}, base, JOBS, MU, slope)
                assert t == pytest.approx(ref[0], rel=1e-12), (scheme, B, W, lam)
                assert n == ref[1], (scheme, B, W, lam)
                seen_wait[scheme] += n
    assert all(seen_wait.values())  # the traces exercise wait-outs, not only clean rounds


@pytest.mark.parametrize("B,W", [(1, 2), (1, 4), (2, 3), (2, 4)])
def test_msgc_safety_check_equals_the_decoder(B, W):
    """The grid's M-SGC safety check says "decodes" exactly when the scheme's decoder does, any pattern."""
    m, lam = 5, 2
    scheme = make_scheme(CodeConfig(scheme="m-sgc", workers=m, B=B, W=W, lam=lam), m, 0)
    T = scheme.T
    rng = np.random.default_rng(B * 10 + W)
    outcomes = set()
    for _ in range(60):
        pattern = rng.random((T + 1, m)) < 0.3
        st = scheme.new_state(1)
        for r in range(T + 1):
            scheme.plan_round(st, r)
            st.strag[r] = pattern[r]
        truth = scheme.decode(st, 0, T, solve=False) is not None
        got = _msgc_decodes(pattern[None, :T], pattern[None, T], m, W, B, np.array([lam]))
        assert bool(got[0]) == truth
        outcomes.add(truth)
    assert outcomes == {True, False}


def test_srsgc_tail_rounds_without_work_are_free():
    """SR-SGC's rounds at or after job J without a redo cost 0 s (the old rule charged them)."""
    m, B, W, lam = 6, 2, 3, 2
    base = np.full((JOBS + 5, m), 1.0)
    base[:, 5] = 1.3  # always slowest, never past the cutoff: no straggler, no redo
    total, waits = bursty_grid("sr-sgc", base, JOBS, 0.0, MU, B, W, np.array([lam]))
    ref = engine_total("sr-sgc", {"B": B, "W": W, "lambda": lam}, base, JOBS, MU, 0.0)
    assert total[0] == pytest.approx(ref[0]) == pytest.approx(1.3 * JOBS)  # the B tail rounds add nothing
    assert waits[0] == ref[1] == 0


def test_wider_lambda_reaches_64():
    """``max_lam`` opens λ beyond 63 (the authors' ResNet-18 search picks λ = 64)."""
    rng = np.random.default_rng(0)
    values = 0.6 + rng.exponential(0.05, (6, 80))
    choices = tune(values, jobs=4, slope=2.2, m=80, max_lam=70)
    lams = {p["lambda"] for p, _ in choices["m-sgc"].grid}
    assert max(lams) == 70 and 64 in lams
    assert max(p["lambda"] for p, _ in tune(values, jobs=4, slope=2.2, m=80)["m-sgc"].grid) == 63
