"""Sequential gradient coding (docs/protocols.md#sequential-schemes): closed forms, conforming patterns, exact jobs."""
from __future__ import annotations

import io
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mpigc.bursts import bursty_ok, window
from mpigc.codes import make_scheme
from mpigc.codes.msgc import msgc_load
from mpigc.codes.sgc import sr_sgc_tolerance
from mpigc.config import CodeConfig, load_config
from mpigc.core.sgc_engine import SequentialEngine
from mpigc.delays.bursty import Bursty
from mpigc.sim.driver import simulate


def code(scheme: str, m: int, **kw) -> CodeConfig:
    return CodeConfig(scheme=scheme, workers=m, **kw)


@pytest.mark.parametrize("m,B,W,lam", [(8, 1, 2, 1), (16, 1, 5, 7), (256, 2, 5, 27), (256, 1, 3, 63), (12, 2, 3, 4)])
def test_msgc_closed_forms(m, B, W, lam):
    s = make_scheme(code("m-sgc", m, B=B, W=W, lam=lam), m, 0)
    assert s.T == W - 2 + B and s.slots == W - 1 + B
    assert s.load == pytest.approx((lam + 1) * (W - 1 + B) / (m * (B + (W - 1) * (lam + 1))))
    assert s.load == pytest.approx(msgc_load(m, B, W, lam))
    # D1 holds the stated fraction of the units; every mini-task has the same size
    d1 = (W - 1) * (lam + 1) / (B + (W - 1) * (lam + 1))
    assert s.d1_units / s.units == pytest.approx(d1)
    sizes = {s.row(w, k).astype(bool).sum() for w in range(3) for k in (0, s.d1, s.d1 + B - 1)}
    assert sizes == {lam + 1}


@pytest.mark.parametrize("m,B,W,lam", [(8, 1, 2, 1), (16, 1, 5, 7), (256, 2, 5, 27), (256, 2, 3, 63)])
def test_srsgc_closed_forms(m, B, W, lam):
    s = make_scheme(code("sr-sgc", m, B=B, W=W, lam=lam), m, 0)
    assert s.T == B
    assert s.s == math.ceil(B * lam / (W - 1 + B)) == sr_sgc_tolerance(B, W, lam)
    assert s.load == pytest.approx((s.s + 1) / m)


@pytest.mark.parametrize("load", [1, 2, 16])
def test_gcseq_closed_forms(load):
    s = make_scheme(code("gc-seq", 16, load=load), 16, 0)
    assert s.T == 0 and s.s == load - 1 and s.load == pytest.approx(load / 16)


@st.composite
def conforming(draw, scheme: str):
    """(m, B, W, λ, J, pattern) with a (B, W, λ)-conforming straggler pattern (J + T rounds)."""
    m = draw(st.integers(3, 7))
    B = draw(st.integers(1, 2))
    if scheme == "sr-sgc":
        W = B * draw(st.integers(1, 2)) + 1
    else:
        W = draw(st.integers(B + 1, 4))
    lam = draw(st.integers(1, m - 1))
    jobs = draw(st.integers(1, 10))
    rounds = jobs + (B if scheme == "sr-sgc" else W - 2 + B)
    wish = draw(st.lists(st.lists(st.booleans(), min_size=m, max_size=m), min_size=rounds, max_size=rounds))
    pattern = np.zeros((rounds, m), dtype=bool)
    for r in range(rounds):
        for w in np.flatnonzero(wish[r]):  # admit wished stragglers while the model holds
            trial = pattern[r].copy()
            trial[w] = True
            if bursty_ok(window(pattern, r, W - 1), trial, B, lam):
                pattern[r] = trial
    return m, B, W, lam, jobs, pattern


def run_pattern(scheme: str, m: int, B: int, W: int, lam: int, jobs: int, pattern: np.ndarray) -> SequentialEngine:
    engine = SequentialEngine(make_scheme(code(scheme, m, B=B, W=W, lam=lam), m, 0), jobs, 1.0)
    for r in range(engine.rounds):
        engine.plan(r)
        assert engine.verdict(r, pattern[r]) == 0, f"wait-out in round {r} under a conforming pattern"
        closed = engine.commit(r, pattern[r], 0)
        assert not closed.lost, f"job {closed.lost} lost in round {r}"
        assert all(d.coef_error < 1e-18 for d in closed.decodes)
    return engine


@pytest.mark.parametrize("scheme", ["sr-sgc", "m-sgc"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_conforming_patterns_decode_by_deadline(scheme, data):
    m, B, W, lam, jobs, pattern = data.draw(conforming(scheme))
    engine = run_pattern(scheme, m, B, W, lam, jobs, pattern)
    T = engine.scheme.T
    assert np.all(engine.done >= 0)
    assert np.all(engine.done <= np.arange(jobs) + T)


def test_msgc_worst_case_burst():
    """λ workers straggle in full bursts as often as the model allows: no wait-out, every job on time."""
    m, B, W, lam = 6, 2, 4, 3
    rounds = 12 + W - 2 + B
    pattern = np.zeros((rounds, m), dtype=bool)
    for start in range(0, rounds, W + B - 1):  # the densest legal period
        pattern[start:start + B, :lam] = True
    assert run_pattern("m-sgc", m, B, W, lam, 12, pattern).done.max() >= 0


def test_bursty_delays_conform_or_violate():
    m, B, W, lam = 10, 2, 4, 3
    gen = Bursty(B, W, lam, 0.0, 7, m)
    pattern = np.array([gen.stragglers(r) for r in range(300)])
    assert pattern.any()
    assert all(bursty_ok(window(pattern, r, W - 1), pattern[r], B, lam) for r in range(300))
    # determinism: asking in another order gives the same rounds
    assert np.array_equal(Bursty(B, W, lam, 0.0, 7, m).stragglers(123), pattern[123])
    bad = Bursty(B, W, lam, 1.0, 7, m)
    p2 = np.array([bad.stragglers(r) for r in range(50)])
    assert not any(bursty_ok(window(p2, r, W - 1), p2[r], B, lam) for r in range(50))


def overrides(m: int = 6, jobs: int = 12, **extra) -> list[str]:
    base = {"code.workers": m, "code.B": 1, "code.W": 3, "code.lambda": 2, "code.load": 2,
            "delays.model": '"bursty"', "delays.B": 1, "delays.W": 3, "delays.lambda": 2, "delays.factor": 4,
            "run.rounds": jobs, "run.verify": "true", "workload.samples": 600, "workload.features": 12}
    base.update(extra)
    return [f"{k}={v}" for k, v in base.items()]


@pytest.mark.parametrize("violate", [0.0, 0.3])
def test_simulated_job_gradients_are_exact(tmp_path, violate):
    schemes = '["m-sgc", "sr-sgc", "gc-seq", "uncoded"]'
    cfg = load_config(None, overrides(**{"code.scheme": schemes, "delays.violate": violate}))
    out = tmp_path / "seq.h5"
    rows = simulate(cfg, str(out), log=io.StringIO())
    from mpigc import results

    runs = results.read_runs(out)
    assert [r.name for r in runs] == ["m-sgc", "sr-sgc", "gc-seq", "uncoded"]
    assert len(rows) == len(runs)
    for run, (_, _, stats) in zip(runs, rows):
        rounds, jobs = run.tables["rounds"], run.tables["jobs"]
        assert len(rounds) == 12 + run.attrs["T_seq"]
        assert sorted(jobs["job"]) == list(range(12)) and np.all(jobs["round_done"] >= 0)
        assert np.nanmax(rounds["grad_error"]) <= 1e-9
        assert np.all(np.isfinite(jobs["loss"])) and np.all(np.diff(jobs["t_done"]) >= 0)
        assert np.all(jobs["model"] == jobs["job"] % run.attrs["models"])
        assert stats["safety_waitouts"] == 0
        if violate == 0 and run.attrs["scheme"] in ("m-sgc", "sr-sgc"):
            assert stats["waitouts"] == 0


@pytest.mark.parametrize("over,key", [
    ({"code.scheme": '"sr-sgc"', "code.B": 2, "code.W": 4}, "code.W"),
    ({"code.scheme": '"m-sgc"', "code.B": 3, "code.W": 3}, "code.B"),
    ({"code.scheme": '"sr-sgc"', "code.lambda": 6}, "code.lambda"),
    ({"code.scheme": '"m-sgc"', "workload.models": 1}, "workload.models"),
    ({"code.scheme": '"m-sgc"', "delays.failures": 0.1}, "delays.failures"),
    ({"code.scheme": '"gc-seq"', "code.load": 9}, "code.load"),
    ({"code.scheme": '["m-sgc", "crc"]'}, "code.scheme"),
    ({"code.scheme": '"m-sgc"', "delays.B": 3, "delays.W": 2}, "delays.B"),
])
def test_bad_input_is_one_line(tmp_path, capsys, over, key):
    from mpigc.cli import main

    args = ["simulate", "--out", str(tmp_path / "x.h5")]
    for item in overrides(**over):
        args += ["--set", item]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"mpigc: error: {key}:") and "\n" not in err
    assert not (tmp_path / "x.h5").exists()


def test_short_trace_without_wrap(tmp_path, capsys):
    from mpigc.cli import main

    trace = tmp_path / "t.csv"
    trace.write_text("\n".join(",".join(["1.0"] * 6) for _ in range(10)) + "\n")
    args = ["simulate", "--out", str(tmp_path / "x.h5")]
    for item in overrides(**{"code.scheme": '"m-sgc"', "delays.model": '"trace"', "delays.trace": f'"{trace}"',
                             "delays.wrap": "false", "run.rounds": 9}):
        args += ["--set", item]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mpigc: error: delays.trace:") and "10 rounds" in err and "\n" not in err


def test_uncoded_waits_for_all_and_traces_are_affine(tmp_path):
    trace = tmp_path / "t.csv"
    rng = np.random.default_rng(0)
    values = rng.uniform(0.5, 3.0, (7, 6))
    trace.write_text("\n".join(",".join(f"{v:.6f}" for v in row) for row in values) + "\n")
    cfg = load_config(None, overrides(**{"code.scheme": '["uncoded", "gc-seq"]', "delays.model": '"trace"',
                                         "delays.trace": f'"{trace}"', "delays.slope": 2.0, "run.verify": "false"}))
    rows = simulate(cfg, None, log=io.StringIO())
    t = values[np.arange(12) % 7] + 2.0 / 6
    assert rows[0][2]["total_s"] == pytest.approx(t.max(axis=1).sum())
    g = values[np.arange(12) % 7] + 2.0 * 2 / 6
    cut = 2 * g.min(axis=1)
    expect = np.where((g > cut[:, None]).sum(axis=1) <= 1, np.minimum(cut, g.max(axis=1)), g.max(axis=1))
    assert rows[1][2]["total_s"] == pytest.approx(expect.sum())


def test_schemes_listed(capsys):
    from mpigc.cli import main

    assert main(["schemes"]) == 0
    out = capsys.readouterr().out
    for name in ("gc-seq", "sr-sgc", "m-sgc"):
        assert name in out


@pytest.mark.parametrize("scheme", ["gc-seq", "sr-sgc", "m-sgc"])
def test_closed_form_coef_error_matches_rows(scheme):
    """The decoders' closed-form coef_error equals ‖Σ a·row − 1‖²/N from the rows themselves."""
    m = 7
    s = make_scheme(code(scheme, m, B=1, W=3, lam=3, load=3), m, 0)
    engine = SequentialEngine(s, 4, 1.0)
    for r in range(engine.rounds):
        engine.plan(r)
        strag = np.zeros(m, dtype=bool)
        strag[[1, 4]] = r % 3 == 0
        for dec in engine.commit(r, strag, 0).decodes:
            kinds = [(w, int(engine.state.kinds[rr, w, q])) for rr, w, q in dec.keys]
            assert dec.coef_error == pytest.approx(s.coef_error(kinds, dec.coefs), abs=1e-20)
            assert dec.coef_error < 1e-20


def test_tune_matches_engine_and_cli(tmp_path, capsys):
    """The vectorised grid search gives exactly the engine's totals; ``mpigc tune`` prints and stores them."""
    from mpigc.cli import main
    from mpigc.sim.tune import run_choices, tune

    rng = np.random.default_rng(3)
    values = 0.6 + rng.exponential(0.1, (9, 12))
    values[rng.random(values.shape) < 0.08] *= 6  # stragglers, some in consecutive rounds
    values[0, 0] = 20.0  # a cold start, recurring at every wrap
    trace = tmp_path / "t.csv"
    trace.write_text("\n".join(",".join(f"{v:.6f}" for v in row) for row in values) + "\n")
    from mpigc.delays import load_trace

    choices = tune(load_trace(str(trace)), jobs=30, mu=1.0, slope=2.2, m=12)
    sims = run_choices(str(trace), choices, 30, 1.0, 2.2, 12, None)
    assert len(sims) == len(choices) >= 1
    for c, (_, scheme, stats) in zip(choices.values(), sims):
        assert c.scheme == scheme
        assert stats["total_s"] == pytest.approx(c.runtime, rel=1e-12)
        assert stats["waitouts"] + stats["safety_waitouts"] == c.waitouts
        best = min(t for _, t in c.grid)
        assert c.runtime == best
    assert choices["gc-seq"].runtime <= choices["uncoded"].runtime
    out = tmp_path / "tune.h5"
    assert main(["tune", str(trace), "--jobs", "30", "--workers", "12", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "m-sgc" in text and "uncoded" in text and out.exists()


def test_srsgc_tail_rounds_without_work_cost_nothing(tmp_path):
    """Rounds at or after job J in which no worker has a task: 0 s, no straggler, no wait-out (P3's rule)."""
    trace = tmp_path / "t.csv"
    values = np.full((5, 6), 1.0)
    values[:, 5] = 1.5  # the slowest worker stays inside (1+μ)·t_min: nobody straggles, nothing to redo
    values[2, 0] = 9.0  # one straggler in round 2 (job 2): a redo in round 4, inside the jobs
    trace.write_text("\n".join(",".join(f"{v:.3f}" for v in row) for row in values) + "\n")
    cfg = load_config(None, overrides(**{"code.scheme": '"sr-sgc"', "code.B": 2, "code.W": 3, "code.lambda": 2,
                                         "delays.model": '"trace"', "delays.trace": f'"{trace}"',
                                         "delays.slope": 0.0, "delays.wrap": "true", "run.verify": "false"}))
    out = tmp_path / "sr.h5"
    rows = simulate(cfg, str(out), log=io.StringIO())
    from mpigc import results

    rounds = results.read_runs(out)[0].tables["rounds"]
    assert len(rounds) == 12 + 2
    tail = rounds[12:]
    assert np.all(tail["latency"] == 0) and np.all(tail["waitout"] == 0) and np.all(tail["messages"] == 0)
    assert rows[0][2]["total_s"] == pytest.approx(rounds["latency"][:12].sum())
    assert np.all(rounds["latency"][:12] > 0)
