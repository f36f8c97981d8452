"""Stochastic gradient coding (docs/protocols.md#stochastic), ``random`` placement: math, timing, unbiasedness."""
from __future__ import annotations

import numpy as np
import pytest
from helpers import simulate_estimates, z_scores

from mpigc.codes import combine, make_plan, make_scheme
from mpigc.codes.assignments import make_assignment_with_order
from mpigc.config import load_config
from mpigc.errors import InputError


def _config(*overrides: str):
    return load_config(None, ['code.scheme="stochastic"', "code.workers=10", "code.load=3", *overrides])


@pytest.mark.parametrize("m, d, n", [(10, 3, None), (7, 3, 30), (12, 11, None), (6, 6, None), (40, 5, 13)])
def test_random_placement_puts_every_chunk_on_d_distinct_workers_with_balanced_loads(m, d, n):
    A, orders = make_assignment_with_order("random", m, d, 4, n)
    assert A.shape == (n or m, m)
    assert np.all(A.sum(axis=1) == d)  # a bool matrix: d distinct holders per chunk
    loads = A.sum(axis=0)
    assert loads.max() - loads.min() <= 1 and loads.sum() == (n or m) * d
    assert all(np.array_equal(np.flatnonzero(A[:, w]), orders[w]) for w in range(m))
    again, _ = make_assignment_with_order("random", m, d, 4, n)
    other, _ = make_assignment_with_order("random", m, d, 5, n)
    assert np.array_equal(A, again)
    assert d == m or not np.array_equal(A, other)


def test_the_public_planning_api_gives_the_schemes_placement():
    code = _config().codes[0]
    scheme = make_scheme(code, 10, 0)
    assert np.array_equal(make_plan(code, 10, 0, "random").assignment, scheme.plan.assignment)
    assert scheme.plan.assignment.sum(axis=1).tolist() == [3] * 10


def _decode_check(scheme, rng, rounds: int = 300):
    """Random arrivals: decode_times equal the decoder's verdict, coef_error equals that of the vectors."""
    m, n = scheme.plan.workers, scheme.plan.chunks
    grads = {i: rng.standard_normal(6) for i in range(n)}
    truth = np.sum(list(grads.values()), axis=0)
    arrival = rng.integers(0, 4, (rounds, m, scheme.plan.max_load)).astype(float)  # ties on purpose
    arrival[rng.random((rounds, m)) < 0.3] = np.inf
    exact_at = scheme.decode_times(np.where(scheme.send_mask()[None], arrival, np.inf))
    exact_rounds = 0
    for r in range(rounds):
        for t in (0.0, 1.0, 2.0, 3.0):
            decoder = scheme.decoder()
            last = scheme.plan.loads - 1
            for w in np.flatnonzero(arrival[r, np.arange(m), last] <= t):
                decoder.add(int(w), int(last[w]))
            comb = decoder.combination()
            assert comb.exact == (exact_at[r] <= t) or exact_at[r] < t, (r, t)
            vectors = {k: scheme.encode(k[0], k[1], grads) for k in comb.keys}
            out = combine(comb, vectors, 6)
            rows = np.array([scheme.message_row(*k) for k in comb.keys]).reshape(len(comb.keys), n)
            phi = (comb.weights @ rows).ravel()
            assert np.isclose(comb.coef_error, np.sum((phi - 1) ** 2) / n)
            assert np.allclose(out, sum(phi[i] * grads[i] for i in range(n)))
            if comb.exact:
                exact_rounds += 1
                assert np.allclose(out, truth, rtol=1e-12, atol=1e-12)
            if exact_at[r] == t:
                assert comb.exact
    return exact_rounds


def test_decode_times_and_coef_error_match_the_decoder_and_the_vectors():
    rng = np.random.default_rng(1)
    never = make_scheme(_config("code.p=0.3").codes[0], 10, 0)
    assert _decode_check(never, rng) == 0  # 3 * 0.7 heard holders is never a whole number
    assert np.all(np.isinf(never.decode_times(np.zeros((4, 10, 3)))))
    whole = make_scheme(_config("code.p=0.5", "code.load=2", "code.workers=6").codes[0], 6, 0)
    assert whole.weight == 1.0 and _decode_check(whole, rng) > 0  # each chunk heard exactly once: exact
    everyone = make_scheme(_config("code.load=2", "code.workers=6").codes[0], 6, 0)
    assert everyone.p == 0 and _decode_check(everyone, rng) > 0  # p = 0: exact once every worker is heard


STRAGGLERS = ("run.verify=true", "run.rounds=1500", "workload.samples=200", "workload.features=4",
              "delays.model=\"constant\"", "delays.failures=0.3", 'code.decode="approx"', "code.deadline=1.0")


def test_stochastic_is_unbiased_under_independent_stragglers_with_the_configured_p():
    estimates, truth, status = simulate_estimates(_config(*STRAGGLERS, "code.p=0.3"))
    assert np.all(status != 0)  # approximate by design: 3 * 0.7 is not a whole number
    z = z_scores(estimates, truth)
    assert np.all(np.abs(z[:1]) < 3) and np.all(np.abs(z[1:]) < 3.5), z
    # the same test catches a wrong weight: p = 0 while 30 % of the workers are silent
    biased, truth, _ = simulate_estimates(_config(*STRAGGLERS, "code.p=0"))
    assert abs(z_scores(biased, truth)[0]) > 10


def test_stochastic_with_wait_for_and_the_default_p_is_unbiased():
    config = _config("run.verify=true", "run.rounds=1500", "workload.samples=200", "workload.features=4",
                     "delays.shift=0", "code.wait_for=6")
    assert make_scheme(config.codes[0], 10, 0).p == pytest.approx(0.4)
    estimates, truth, status = simulate_estimates(config)
    assert np.all(status == 1)
    z = z_scores(estimates, truth)
    assert np.all(np.abs(z[:1]) < 3) and np.all(np.abs(z[1:]) < 3.5), z


@pytest.mark.parametrize("override, key", [("code.p=1.0", "code.p"), ("code.p=-0.1", "code.p"),
                                           ("code.parts=2", "code.parts")])
def test_bad_stochastic_input_names_its_key(override, key):
    with pytest.raises(InputError) as err:
        config = _config(override)
        make_scheme(config.codes[0], 10, 0)
    assert err.value.key == key
