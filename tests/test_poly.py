"""The Ye–Abbe polynomial code: exact at small m, honestly unstable at larger m."""
from __future__ import annotations

import io

import numpy as np
import pytest
from helpers import chunk_gradients, code, decode_until_exact, relerr, runs_by_name
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.polynomial import polynomial as npoly

from mpigc.codes import combine, make_scheme
from mpigc.codes.base import coef_error, least_squares_combination
from mpigc.errors import InputError


def target(chunks: int, parts: int) -> np.ndarray:
    e = np.zeros((parts, chunks * parts))
    for k in range(parts):
        e[k, k::parts] = 1.0
    return e


def decode_from(scheme, alive, grads: dict[int, np.ndarray], dim: int):
    """Deliver the messages of ``alive`` (in that order); return the combination and the estimate."""
    decoder, vectors = scheme.decoder(), {}
    for w in alive:
        key = (int(w), int(scheme.sends_after(int(w))[0]))
        vectors[key] = scheme.encode(*key, grads)
        decoder.add(*key)
    comb = decoder.combination()
    return comb, combine(comb, vectors, dim)


def median_relerr(m: int, points: str, parts: int = 1, s: int = 2, trials: int = 5) -> float:
    scheme = make_scheme(code("poly", load=s + parts, parts=parts, points=points), m, seed=1)
    rng = np.random.default_rng(m)
    errs = []
    for t in range(trials):
        grads = chunk_gradients(m, 40, t)
        truth = np.sum(list(grads.values()), axis=0)
        alive = rng.permutation(m)[: m - s]
        comb, est = decode_from(scheme, alive, grads, 40)
        assert comb.exact
        errs.append(relerr(est, truth))
    return float(np.median(errs))


@st.composite
def small_instances(draw):
    m = draw(st.integers(2, 12))
    parts = draw(st.integers(1, min(m, 3)))
    s = draw(st.integers(0, min(m - parts, 4)))
    dead = draw(st.sets(st.integers(0, m - 1), max_size=s))
    ordering = draw(st.sampled_from(["natural", "random"]))
    return m, parts, s, dead, ordering, draw(st.integers(0, 2**31))


@settings(max_examples=80, deadline=None)
@given(small_instances())
def test_exact_decode_reproduces_the_true_gradient_at_small_m(instance):
    m, parts, s, dead, ordering, seed = instance
    scheme = make_scheme(code("poly", load=s + parts, parts=parts, ordering=ordering), m, seed)
    dim = 7 * parts + 3  # not a multiple of the parts: padding must be stripped
    comb, estimate, truth = decode_until_exact(scheme, np.random.default_rng(seed), dim, dead)
    assert comb.exact and len(comb.keys) == m - s
    assert relerr(estimate, truth) <= 1e-9
    rows = np.array([scheme.message_row(*k) for k in comb.keys])
    assert comb.coef_error == pytest.approx(coef_error(comb.weights @ rows, target(m, parts)), abs=1e-15)
    assert comb.coef_error < 1e-16
    assert comb.cond >= 1.0


@pytest.mark.parametrize("m,parts,s", [(6, 1, 2), (6, 3, 1), (7, 2, 2)])
def test_integer_points_decode_exactly_at_tiny_m(m, parts, s):
    scheme = make_scheme(code("poly", load=s + parts, parts=parts, points="integers"), m, seed=0)
    grads = chunk_gradients(m, 11, 4)
    comb, est = decode_from(scheme, range(s, m), grads, 11)
    assert comb.exact and relerr(est, np.sum(list(grads.values()), axis=0)) <= 1e-9


def test_message_rows_evaluate_polynomials_with_unit_top_coefficients():
    m, parts, s = 9, 3, 2
    scheme = make_scheme(code("poly", load=s + parts, parts=parts), m, seed=0)
    x, a = scheme.points, scheme.plan.assignment
    rows = np.array([scheme.message_row(w, s + parts - 1) for w in range(m)])
    degree = m - s - 1
    for i in range(m):
        assert np.all(rows[~a[i], i * parts : (i + 1) * parts] == 0)  # Z_i vanishes off the holders
        for k in range(parts):
            # Z_i v_{i,k} has degree <= m - s - 1, so it is the fit through all m values (zeros included)
            coefs = npoly.polyfit(x, rows[:, i * parts + k], degree)
            np.testing.assert_allclose(npoly.polyval(x, coefs), rows[:, i * parts + k], atol=1e-10)
            np.testing.assert_allclose(coefs[degree - parts + 1 :], np.eye(parts)[k], atol=1e-9)
    assert len({tuple(np.flatnonzero(r)) for r in rows}) == m  # one distinct support per worker


def test_error_grows_with_m_for_chebyshev_points():
    small, large = median_relerr(10, "chebyshev"), median_relerr(40, "chebyshev")
    assert small < 1e-12
    assert large > 1e3 * small
    scheme = make_scheme(code("poly", load=3), 40, seed=1)
    comb, _ = decode_from(scheme, range(2, 40), chunk_gradients(40, 5, 0), 5)
    assert comb.exact and comb.coef_error > 1e-15  # reported honestly, not as zero
    assert comb.cond > 1e10 and scheme.describe()["code condition (worst sampled F)"] > 1e10


@pytest.mark.parametrize("parts", [1, 2])
def test_integer_points_are_worse_than_chebyshev(parts):
    assert median_relerr(20, "integers", parts) > 1e3 * median_relerr(20, "chebyshev", parts)


def test_approximate_decode_is_the_least_squares_best():
    m, parts, s = 12, 2, 3
    scheme = make_scheme(code("poly", load=s + parts, parts=parts), m, seed=2)
    rng = np.random.default_rng(0)
    for count in range(0, m - s):
        alive = rng.permutation(m)[:count]
        decoder = scheme.decoder()
        for w in alive:
            decoder.add(int(w), s + parts - 1)
        comb = decoder.combination()
        assert not comb.exact and not decoder.exact
        if count == 0:
            assert comb.coef_error == 1.0
            continue
        rows = np.array([scheme.message_row(*k) for k in comb.keys])
        best = least_squares_combination(rows, comb.keys, m, parts)
        assert comb.coef_error == pytest.approx(best.coef_error, abs=1e-12)
        assert comb.coef_error == pytest.approx(coef_error(comb.weights @ rows, target(m, parts)), abs=1e-12)
        assert comb.coef_error > 0


def test_decode_times_agree_with_the_decoder():
    m, load = 11, 4
    scheme = make_scheme(code("poly", load=load, parts=2, ordering="random"), m, seed=3)
    rng = np.random.default_rng(1)
    arrival = np.full((30, m, load), np.inf)
    last = np.array([len(o) - 1 for o in scheme.plan.orders])
    arrival[:, np.arange(m), last] = rng.exponential(size=(30, m))
    arrival[:, :, :][rng.random((30, m)) < 0.2, :] = np.inf  # silent failures
    times = scheme.decode_times(arrival)
    for r in range(30):
        heard = arrival[r, np.arange(m), last]
        for t, expect in ((times[r], np.isfinite(times[r])), (np.nextafter(times[r], -np.inf), False)):
            decoder = scheme.decoder()
            for w in np.flatnonzero(np.isfinite(heard) & (heard <= t)):
                decoder.add(int(w), int(last[w]))
            assert decoder.exact == expect


def test_simulator_verifies_poly_rounds(tmp_path):
    from mpigc.config import load_config
    from mpigc.sim.driver import simulate

    overrides = ['code.scheme=["poly", {scheme = "poly", parts = 2, name = "p2"}]', "code.workers=8", "code.load=3",
                 "run.verify=true", "run.rounds=30", "workload.features=60", "workload.samples=200"]
    out = str(tmp_path / "r.h5")
    simulate(load_config(None, overrides, backend="sim"), out, log=io.StringIO())
    for run in runs_by_name(out, ["poly", "p2"]).values():
        r = run.tables["rounds"]
        assert np.all(r["status"] == 0), run.name
        assert np.nanmax(r["grad_error"]) <= 1e-9, run.name
        assert np.all(r["cond"] >= 1.0), run.name


@pytest.mark.parametrize("kw,m,key", [
    ({"load": 2, "parts": 3}, 9, "code.parts"),
    ({"load": 10}, 9, "code.load"),
    ({"load": 3, "points": "legendre"}, 9, "code.points"),
    ({"load": 3, "assignment": "frc"}, 9, "code.assignment"),
    ({"load": 4, "points": "integers"}, 256, "code.points"),  # V overflows float64
])
def test_impossible_parameters_name_their_key(kw, m, key):
    with pytest.raises(InputError) as info:
        make_scheme(code("poly", **kw), m, seed=0)
    assert str(info.value).startswith(key)
