"""``nested`` (docs/protocols.md#nested): exact decodes, the min-over-ladder identity, failures, bad ladders."""
from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpigc import results
from mpigc.codes import combine, make_scheme
from mpigc.config import CodeConfig, load_config
from mpigc.errors import InputError
from mpigc.sim.driver import simulate

LADDER = (0, 1, 3, 7)
TIMEOUT = 0.8  # shared by every entry, so frc's undecodable rounds all end at the same time


def code(ladder, **kw) -> CodeConfig:
    base = dict(scheme="nested", name=None, chunks=None, load=2, parts=1, assignment=None, ordering="natural",
                decode="exact", deadline=None, transport="stream", use_partial=True, rescale=False,
                ladder=tuple(ladder))
    base.update(kw)
    return CodeConfig(**base)


@st.composite
def ladders(draw, max_workers: int = 24):
    """A valid ladder and a worker count: group sizes multiply up, the last divides m."""
    sizes = [draw(st.integers(1, 4))]
    for _ in range(draw(st.integers(0, 3))):
        factor = draw(st.integers(2, 3))
        if sizes[-1] * factor > max_workers:
            break
        sizes.append(sizes[-1] * factor)
    m = sizes[-1] * draw(st.integers(1, max(1, max_workers // sizes[-1])))
    return tuple(n - 1 for n in sizes), m


def chunk_gradients(n: int, dim: int, rng: np.random.Generator) -> dict[int, np.ndarray]:
    return {i: rng.standard_normal(dim) * 10.0 ** rng.uniform(-2, 2) for i in range(n)}


def feed(scheme, keys):
    decoder = scheme.decoder()
    for key in keys:
        decoder.add(*key)
    return decoder


@settings(max_examples=150, deadline=None)
@given(ladders(), st.integers(0, 2**31), st.floats(0.0, 0.8))
def test_first_exact_decode_is_the_true_gradient(case, seed, dead_share):
    """Random arrival times (stages even out of order), random dead workers: decode at decode_times."""
    ladder, m = case
    scheme = make_scheme(code(ladder), m, seed)
    rng = np.random.default_rng(seed)
    dim = 11
    grads = chunk_gradients(m, dim, rng)
    truth = np.sum(list(grads.values()), axis=0)
    arrival = np.full((1, m, scheme.plan.max_load), np.inf)
    dead = rng.random(m) < dead_share
    for w in range(m):
        if not dead[w]:
            arrival[0, w, scheme.sends_after(w)] = rng.exponential(size=len(ladder))
    t = float(scheme.decode_times(arrival)[0])
    heard = sorted((arrival[0, w, p], w, int(p)) for w in range(m) for p in scheme.sends_after(w)
                    if np.isfinite(arrival[0, w, p]) and arrival[0, w, p] <= t)
    before = feed(scheme, [(w, p) for a, w, p in heard if a < t])
    assert not before.exact
    decoder = feed(scheme, [(w, p) for _, w, p in heard])
    comb = decoder.combination()
    if not np.isfinite(t):  # every group of every level lost all its workers somewhere
        assert not decoder.exact and not comb.exact and comb.level == -1
        return
    assert decoder.exact and comb.exact and comb.coef_error == 0.0
    assert 0 <= comb.level < len(ladder)
    n = ladder[comb.level] + 1
    vectors = {k: scheme.encode(k[0], k[1], grads) for k in comb.keys}
    assert np.linalg.norm(combine(comb, vectors, dim) - truth) <= 1e-9 * np.linalg.norm(truth)
    assert len(comb.keys) == (m // n) * (comb.level + 1)
    assert {w // n for w, _ in comb.keys} == set(range(m // n))
    assert not any(dead[w] for w, _ in comb.keys)


def test_plan_stages_assignment_and_info():
    scheme = make_scheme(code(LADDER), 16, 0)
    plan = scheme.plan
    assert plan.chunks == 16 and plan.parts == 1 and set(plan.loads) == {8}
    assert plan.orders[5].tolist() == [5, 4, 6, 7, 0, 1, 2, 3]
    assert plan.orders[10].tolist() == [10, 11, 8, 9, 12, 13, 14, 15]
    assert np.array_equal(plan.assignment, np.kron(np.eye(2, dtype=bool), np.ones((8, 8), dtype=bool)))
    assert scheme.sends_after(3).tolist() == [0, 1, 3, 7]
    assert np.flatnonzero(scheme.message_row(6, 3)).tolist() == [4, 5]  # worker 6's third stage
    assert np.flatnonzero(scheme.message_row(6, 7)).tolist() == [0, 1, 2, 3]  # and its last
    info = scheme.describe()
    assert info["ladder s"] == list(LADDER) and info["group sizes n"] == [1, 2, 4, 8]
    assert info["cumulative load per level"] == [1 / 16, 2 / 16, 4 / 16, 8 / 16]
    assert info["stage sizes (chunks)"] == [1, 1, 2, 4]


def test_lowest_complete_level_decodes_with_the_first_complete_worker():
    scheme = make_scheme(code((0, 1)), 4, 0)
    d = scheme.decoder()
    for key in [(1, 0), (1, 1), (0, 0), (0, 1), (3, 0), (2, 0), (2, 1)]:
        d.add(*key)
    comb = d.combination()
    assert comb.level == 0 and sorted(comb.keys) == [(0, 0), (1, 0), (2, 0), (3, 0)]
    d = scheme.decoder()
    for key in [(1, 0), (1, 1), (0, 0), (0, 1), (3, 0), (3, 1)]:
        d.add(*key)
    comb = d.combination()
    assert comb.level == 1 and comb.keys == [(1, 0), (1, 1), (3, 0), (3, 1)]


def test_approximate_decode_is_least_squares_and_never_claims_exact():
    scheme = make_scheme(code((0, 1, 3)), 4, 0)
    # chunks 0 + 1 from worker 0's stages, 2 and 3 from workers 2, 3: every chunk once, no level complete
    d = feed(scheme, [(0, 0), (0, 1), (2, 0), (3, 0)])
    assert not d.exact
    comb = d.combination()
    assert not comb.exact and comb.level == -1 and comb.coef_error < 1e-20
    d = feed(scheme, [(0, 0), (2, 0)])
    comb = d.combination()
    assert not comb.exact and comb.coef_error == pytest.approx(0.5)


# ----------------------------------------------------------------------------- simulator

def frc_entries(ladder) -> str:
    entries = ", ".join(f'{{scheme = "frc", load = {s + 1}, name = "frc-s{s}"}}' for s in ladder)
    return f'code.scheme=["nested", {entries}]'


def simulate_rounds(overrides: list[str], tmp_path) -> dict[str, np.ndarray]:
    out = str(tmp_path / "r.h5")
    simulate(load_config(None, overrides, backend="sim"), out, log=io.StringIO())
    return {r.name: r.tables["rounds"] for r in results.read_runs(out)}


def base(ladder, m: int, rounds: int) -> list[str]:
    return [frc_entries(ladder), f"code.workers={m}", f"code.ladder={list(ladder)}", f"run.rounds={rounds}",
            f"run.round_timeout={TIMEOUT}", 'delays.model="shifted-exponential"', "delays.shift=1.0",
            "delays.chunk_time=0.01"]


@pytest.mark.parametrize("ladder,m,delays", [
    (LADDER, 16, "delays.fail_count=3"), (LADDER, 16, "delays.failures=0.3"), ((0, 1, 3), 12, "delays.failures=0.1"),
    ((1, 5), 12, 'delays.per="worker"'), ((2, 8), 18, "delays.fail_count=0"),
])
def test_latency_is_the_min_over_the_ladder_of_frc_round_by_round(tmp_path, ladder, m, delays):
    runs = simulate_rounds([*base(ladder, m, 300), delays], tmp_path)
    nested = runs.pop("nested")
    frcs = [runs[f"frc-s{s}"] for s in ladder]
    decoded = np.array([f["status"] == 0 for f in frcs])  # (L, R)
    lat = np.array([np.where(f["status"] == 0, f["latency"], np.inf) for f in frcs])
    best = lat.min(axis=0)
    assert np.array_equal(nested["status"] == 0, decoded.any(axis=0))
    exact = nested["status"] == 0
    assert exact.sum() > 100
    np.testing.assert_allclose(nested["latency"][exact], best[exact], rtol=1e-12, atol=0)
    assert np.all(nested["latency"][~exact] == TIMEOUT)
    # the level recorded is the lowest ladder level whose frc decodes at that same moment
    at_best = decoded & np.isclose(lat, nested["latency"][None, :], rtol=1e-12, atol=0)
    lowest = np.where(at_best.any(axis=0), at_best.argmax(axis=0), -1)
    assert np.array_equal(nested["level"], lowest)
    assert np.all(nested["level"][~exact] == -1)


def test_fail_count_sweep_nested_exact_up_to_s_L_and_below_every_fixed_code(tmp_path):
    """Convention: frc's undecodable rounds end at the shared round_timeout and count with it."""
    for k in range(9):
        (tmp_path / str(k)).mkdir()
        runs = simulate_rounds([*base(LADDER, 16, 150), f"delays.fail_count={k}"], tmp_path / str(k))
        nested = runs.pop("nested")
        assert list(runs) == [f"frc-s{s}" for s in LADDER]
        if k <= LADDER[-1]:
            assert np.all(nested["status"] == 0), k
        for name, r in runs.items():
            assert np.all(nested["latency"] <= r["latency"] + 1e-12), (k, name)
            assert nested["latency"].mean() <= r["latency"].mean(), (k, name)
        if k >= 1:
            assert np.all(runs["frc-s0"]["status"] != 0)


def test_verify_mode_decodes_the_true_gradient(tmp_path):
    runs = simulate_rounds([*base(LADDER, 16, 30), "run.verify=true", "workload.features=200",
                            "workload.samples=320", "delays.fail_count=5"], tmp_path)
    r = runs["nested"]
    assert np.all(r["status"] == 0) and np.nanmax(r["grad_error"]) <= 1e-9


# ----------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("ladder,m,key,text", [
    ((), 16, "code.ladder", "at least one"),
    ((0, 2), 16, "code.ladder", "must divide code.workers = 16"),
    ((0, 1, 3, 5), 12, "code.ladder", "do not nest"),
    ((0, 3, 1), 16, "code.ladder", "strictly increasing"),
    ((1, 1), 16, "code.ladder", "strictly increasing"),
    ((-1, 1), 16, "code.ladder", "non-negative"),
    ((0, 1), 16, "code.parts", "parts = 1"),
    ((0, 1), 16, "code.chunks", "N = m"),
    ((0, 1), 16, "code.assignment", "nested"),
])
def test_bad_ladders_name_their_key(ladder, m, key, text):
    kw = {"parts": 2} if key == "code.parts" else {"chunks": 8} if key == "code.chunks" else {}
    if key == "code.assignment":
        kw["assignment"] = "frc"
    with pytest.raises(InputError) as err:
        make_scheme(code(ladder, **kw), m, 0)
    assert str(err.value).startswith(key) and text in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("ladder", ["[]", "[0,2]", "[0,1,3,5]", "[3,1]", "[0,-1]"])
@pytest.mark.parametrize("command", ["simulate", "plan"])
def test_cli_bad_ladder_is_one_line_exit_2(tmp_path, ladder, command):
    out = tmp_path / "r.h5"
    extra = ["--out", str(out)] if command == "simulate" else []
    proc = subprocess.run([sys.executable, "-m", "mpigc", command, "--set", 'code.scheme="nested"', "--set",
                           "code.workers=16", "--set", f"code.ladder={ladder}", *extra],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "code.ladder" in lines[0] and "Traceback" not in proc.stderr
    assert not out.exists()
