"""Every scheme's decoder against the true gradient, and its coefficients against their definition."""
from __future__ import annotations

import numpy as np
import pytest
from helpers import chunk_gradients, code, decode_until_exact, relerr
from hypothesis import given, settings
from hypothesis import strategies as st

from mpigc.codes import combine, make_scheme
from mpigc.codes.base import coef_error, least_squares_combination
from mpigc.errors import InputError

SCHEME_CASES = st.sampled_from(["uncoded", "frc", "crc", "partial", "partial-ablation"])


@st.composite
def instances(draw, max_workers: int = 256):
    kind = draw(SCHEME_CASES)
    m = draw(st.integers(2, max_workers))
    load = draw(st.integers(1, min(m, 8)))
    kw = {}
    if kind == "frc":
        divisors = [d for d in range(1, min(m, 8) + 1) if m % d == 0]
        load = draw(st.sampled_from(divisors))
    if kind.startswith("partial"):
        kw["assignment"] = draw(st.sampled_from(["cyclic", "graph:circulant"]))
        kw["parts"] = draw(st.integers(1, min(load, 3)))
        kw["ordering"] = draw(st.sampled_from(["natural", "random"]))
        kw["use_partial"] = kind == "partial"
    name = "partial" if kind.startswith("partial") else kind
    return code(name, load=load, **kw), m, draw(st.integers(0, 2**31))


@settings(max_examples=60, deadline=None)
@given(instances())
def test_exact_decoders_reproduce_the_true_gradient(instance):
    c, m, seed = instance
    scheme = make_scheme(c, m, seed)
    dim = 7 * c.parts + 3  # not a multiple of the parts: padding must be stripped
    comb, estimate, truth = decode_until_exact(scheme, np.random.default_rng(seed), dim)
    assert comb.exact
    assert comb.coef_error < 1e-18
    assert relerr(estimate, truth) <= 1e-9


@pytest.mark.parametrize("scheme,load", [("crc", 4), ("frc", 4), ("partial", 4)])
def test_exact_with_as_many_dead_workers_as_tolerated(scheme, load):
    m, s = 16, load - 1
    sch = make_scheme(code(scheme, load=load), m, seed=5)
    rng = np.random.default_rng(1)
    dead = set(range(0, m, m // s)[:s]) if scheme != "frc" else {0, 1, 2}  # s dead, frc: one group keeps a worker
    comb, estimate, truth = decode_until_exact(sch, rng, 50, dead)
    assert comb.exact and relerr(estimate, truth) <= 1e-9


@pytest.mark.parametrize("name,kw", [
    ("uncoded", {}), ("uncoded", {"rescale": True}), ("frc", {"load": 2}), ("crc", {"load": 3}),
    ("partial", {"load": 3}), ("partial", {"load": 3, "parts": 2}), ("partial", {"load": 3, "parts": 3}),
    ("partial", {"load": 3, "parts": 2, "use_partial": False}),
])
def test_coef_error_is_the_distance_of_the_decoding_map(name, kw):
    m = 12
    scheme = make_scheme(code(name, **kw), m, seed=3)
    rng = np.random.default_rng(7)
    keys = [(w, int(p)) for w in range(m) for p in scheme.sends_after(w)]
    target = np.zeros((scheme.plan.parts, scheme.plan.chunks * scheme.plan.parts))
    for k in range(scheme.plan.parts):
        target[k, k::scheme.plan.parts] = 1
    for _ in range(20):
        picked = [keys[i] for i in rng.permutation(len(keys))[: rng.integers(0, len(keys))]]
        decoder = scheme.decoder()
        for key in picked:
            decoder.add(*key)
        comb = decoder.combination()
        rows = np.array([scheme.message_row(*k) for k in comb.keys]).reshape(len(comb.keys), -1)
        phi = comb.weights @ rows if comb.keys else np.zeros_like(target)
        assert comb.coef_error == pytest.approx(coef_error(phi, target), abs=1e-12)
        # least squares is the best linear decode of what the decoder counted; rescaled uncoded is not
        if not kw.get("rescale") and comb.keys:
            best = least_squares_combination(rows, comb.keys, scheme.plan.chunks, scheme.plan.parts)
            assert comb.coef_error == pytest.approx(best.coef_error, abs=1e-9)


def test_partial_coef_error_closed_form():
    scheme = make_scheme(code("partial", load=4, parts=3), 10, seed=11)
    decoder = scheme.decoder()
    for key in [(0, 0), (0, 1), (1, 0), (9, 1), (9, 3), (8, 3)]:
        decoder.add(*key)
    coverage = np.zeros(10, int)
    for w, p in decoder.keys:
        coverage[scheme.plan.orders[w][p]] += 1
    expected = scheme.coef_error_from_coverage(coverage)
    assert decoder.combination().coef_error == pytest.approx(expected, abs=1e-12)
    assert 0 < expected < 1


def test_ablation_ignores_unfinished_workers():
    scheme = make_scheme(code("partial", load=3, use_partial=False), 6, seed=0)
    decoder = scheme.decoder()
    decoder.add(0, 0)
    decoder.add(0, 1)
    assert decoder.combination().coef_error == 1.0  # worker 0 has not finished: nothing counts
    decoder.add(0, 2)
    assert decoder.combination().coef_error == pytest.approx(1 - 3 / 6)


@pytest.mark.parametrize("kw,key", [
    ({"scheme": "partial", "load": 2, "parts": 3}, "code.parts"),
    ({"scheme": "frc", "load": 2}, "code.load"),
    ({"scheme": "crc", "assignment": "frc"}, "code.assignment"),
    ({"scheme": "crc", "parts": 2}, "code.parts"),
    ({"scheme": "partial", "assignment": "graph:random-regular", "load": 4}, "code.load"),
    ({"scheme": "parital"}, "code.scheme"),
])
def test_impossible_combinations_name_their_key(kw, key):
    kw = dict(kw)
    with pytest.raises(InputError) as info:
        make_scheme(code(kw.pop("scheme"), **kw), 9, seed=0)
    assert str(info.value).startswith(key)


def test_crc_decodes_from_any_m_minus_s_workers_at_scale():
    m, load = 256, 32
    scheme = make_scheme(code("crc", load=load), m, seed=1)
    rng = np.random.default_rng(0)
    grads = chunk_gradients(m, 5, 0)
    truth = np.sum(list(grads.values()), axis=0)
    for _ in range(3):
        alive = np.sort(rng.choice(m, m - (load - 1), replace=False))
        decoder = scheme.decoder()
        vectors = {}
        for w in alive:
            decoder.add(int(w), load - 1)
            vectors[(int(w), load - 1)] = scheme.encode(int(w), load - 1, grads)
        comb = decoder.combination()
        assert comb.exact
        assert relerr(combine(comb, vectors, 5), truth) <= 1e-9
        assert comb.coef_error < 1e-15


@settings(max_examples=30, deadline=None)
@given(instances(max_workers=40))
def test_blocks_emitted_early_are_exactly_part_of_the_final_combination(instance):
    c, m, seed = instance
    scheme = make_scheme(c, m, seed)
    rng = np.random.default_rng(seed)
    keys = [(w, int(p)) for w in range(m) for p in scheme.sends_after(w)]
    decoder, applied = scheme.decoder(), {}
    for i in rng.permutation(len(keys))[: rng.integers(1, len(keys) + 1)]:
        for block in decoder.add(*keys[i]):
            for j, key in enumerate(block.keys):
                assert key not in applied
                applied[key] = block.weights[:, j]
    comb = decoder.combination()
    final = {key: comb.weights[:, j] for j, key in enumerate(comb.keys)}
    for key, weights in applied.items():
        assert np.array_equal(final[key], weights)


@pytest.mark.parametrize("dim,parts", [(7, 1), (7, 2), (9, 3), (100, 4), (1, 1)])
def test_pack_round_trips_and_keeps_the_loss_off_gradient_coordinates(dim, parts):
    from mpigc.core.payload import pack, unpack

    rng = np.random.default_rng(dim)
    grad = rng.standard_normal(dim)
    vector = pack(grad, 1e30, parts)
    back, loss = unpack(vector, dim, parts)
    assert np.array_equal(back, grad) and loss == 1e30
    # the loss's offset inside every other part is not a gradient coordinate
    rows = vector.reshape(parts, -1)
    assert np.all(rows[1:, -1] == 0)
