"""Orderings and Qmax: closed form against brute force, Latin optimal orders, greedy search."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpigc.codes.assignments import make_assignment_with_order, natural_orders
from mpigc.codes.ordering import (
    is_latin,
    make_orders,
    optimal_orders,
    positions,
    qmax,
    qmax_bruteforce,
    qmax_lower_bound,
)
from mpigc.errors import InputError
from mpigc.seeding import stream

# Largest load per worker count that keeps brute force at <= ~16 000 states.
LOAD_CAP = {1: 7, 2: 7, 3: 7, 4: 6, 5: 5, 6: 4, 7: 3}
KINDS = ["cyclic", "frc", "graph:circulant", "graph:random-regular", "uncoded", "matrix"]


def random_matrix(m: int, cap: int, seed: int) -> np.ndarray:
    """A random valid assignment with N in 1..7, no empty chunk or worker, loads <= cap."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 8))
    A = rng.random((n, m)) < rng.uniform(0.2, 0.8)
    A[np.arange(n), rng.integers(m, size=n)] = True
    A[rng.integers(n, size=m), np.arange(m)] = True
    for w in range(m):  # trim heavy workers without orphaning a chunk
        for i in rng.permutation(n):
            if A[:, w].sum() > cap and A[i].sum() > 1:
                A[i, w] = False
    return A


@st.composite
def instances(draw, kinds=KINDS):
    """(A, natural orders) for a small instance of any assignment kind."""
    kind = draw(st.sampled_from(kinds))
    m = draw(st.integers(1, 7))
    cap = min(m, LOAD_CAP[m])
    seed = draw(st.integers(0, 2**16))
    if kind == "matrix":
        A = random_matrix(m, cap, seed)
        return A, natural_orders(A, "file")
    if kind == "uncoded":
        k = draw(st.integers(1, max(1, cap)))
        return make_assignment_with_order("uncoded", m, 0, seed, chunks=k * m)
    if kind == "frc":
        d = draw(st.sampled_from([d for d in range(1, cap + 1) if m % d == 0]))
    elif kind == "graph:random-regular":
        d = draw(st.sampled_from([d for d in range(1, cap + 1) if m * (d - 1) % 2 == 0]))
    else:
        d = draw(st.integers(1, cap))
    return make_assignment_with_order(kind, m, d, seed)


@settings(max_examples=300, deadline=None)
@given(inst=instances(), seed=st.integers(0, 1000), data=st.data())
def test_closed_form_matches_bruteforce(inst, seed, data) -> None:
    A, natural = inst
    parts = data.draw(st.integers(1, int(A.sum(axis=1).min())))
    for ordering in ("random", "natural"):
        orders = make_orders(A, ordering, seed, natural, parts)
        assert qmax(A, orders, parts) == qmax_bruteforce(A, orders, parts)


def test_qmax_hand_examples() -> None:
    # Two workers, both hold chunks 0, 1 in the same order.
    A = np.ones((2, 2), dtype=bool)
    same = [np.array([0, 1]), np.array([0, 1])]
    assert qmax(A, same, 1) == qmax_bruteforce(A, same, 1) == 3
    assert qmax(A, same, 2) == qmax_bruteforce(A, same, 2) == 4
    # Opposite orders: any two completions cover both chunks.
    opposite = [np.array([0, 1]), np.array([1, 0])]
    assert qmax(A, opposite, 1) == 2
    # cyclic m=3, δ=2 is Latin: 1 + mδ - δ(δ+1)/2 = 4.
    A, nat = make_assignment_with_order("cyclic", 3, 2, 0)
    assert qmax(A, nat, 1) == qmax_lower_bound(A) == 4


def test_parts_checked_against_replication() -> None:
    A = np.array([[1, 1, 1], [1, 1, 0], [0, 1, 1]], dtype=bool)
    nat = natural_orders(A, "file")
    with pytest.raises(InputError, match="3 exceeds the replication 2 of chunk 1") as e:
        qmax(A, nat, 3)
    assert e.value.key == "code.parts"
    for bad in (0, -1, 1.5):
        with pytest.raises(InputError):
            make_orders(A, "natural", 0, nat, bad)
    assert qmax(A, nat, 2) == qmax_bruteforce(A, nat, 2)


def all_orderings(A: np.ndarray):
    held = [np.flatnonzero(A[:, w]) for w in range(A.shape[1])]
    for combo in itertools.product(*[itertools.permutations(h) for h in held]):
        yield [np.array(c) for c in combo]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), m=st.integers(1, 4))
def test_lower_bound_is_a_bound(seed: int, m: int) -> None:
    A = random_matrix(m, 3, seed)
    best = min(qmax(A, o, 1) for o in all_orderings(A))
    assert qmax_lower_bound(A) <= best


@pytest.mark.parametrize("m,d", [(4, 2), (4, 3), (5, 3), (7, 4), (12, 5)])
def test_lower_bound_regular_closed_form(m: int, d: int) -> None:
    A, _ = make_assignment_with_order("cyclic", m, d, 0)
    assert qmax_lower_bound(A) == 1 + m * d - d * (d + 1) // 2


@pytest.mark.parametrize("name,m,d", [
    ("cyclic", 8, 3), ("cyclic", 20, 7), ("graph:circulant", 10, 3), ("graph:circulant", 31, 6),
    ("graph:random-regular", 10, 4), ("graph:random-regular", 64, 8), ("graph:random-regular", 33, 9),
    ("graph:random-regular", 256, 16), ("frc", 12, 4), ("cyclic", 5, 5), ("cyclic", 6, 1),
])
def test_optimal_is_latin_and_meets_bound(name: str, m: int, d: int) -> None:
    A, nat = make_assignment_with_order(name, m, d, seed=5)
    orders = make_orders(A, "optimal", 0, nat)
    assert set(map(tuple, (np.sort(o) for o in orders))) == set(map(tuple, (np.sort(o) for o in nat)))
    assert is_latin(A, orders)
    assert qmax(A, orders, 1) == qmax_lower_bound(A) == 1 + m * d - d * (d + 1) // 2
    for parts in range(2, min(d, 4) + 1):
        assert qmax(A, orders, parts) <= qmax(A, nat, parts)


@pytest.mark.parametrize("name,m,d", [("cyclic", 4, 3), ("cyclic", 5, 3), ("frc", 4, 2)])
def test_optimal_matches_exhaustive_search(name: str, m: int, d: int) -> None:
    A, nat = make_assignment_with_order(name, m, d, 0)
    opt = optimal_orders(A)
    everything = list(all_orderings(A))
    for parts in range(1, d + 1):
        assert qmax(A, opt, parts) == min(qmax(A, o, parts) for o in everything)


def test_optimal_rejects_irregular(tmp_path) -> None:
    path = tmp_path / "irregular.npy"
    np.save(path, np.array([[1, 1, 0], [0, 1, 1], [1, 0, 0]]))
    A, nat = make_assignment_with_order(f"file:{path}", 3, 0, 0)
    with pytest.raises(InputError, match="use greedy") as e:
        make_orders(A, "optimal", 0, nat)
    assert e.value.key == "code.ordering"
    # Equal replication but N != m is outside the class too.
    A, nat = make_assignment_with_order("uncoded", 3, 0, 0, chunks=6)
    with pytest.raises(InputError):
        make_orders(A, "optimal", 0, nat)


@pytest.mark.parametrize("m,d", [(3, 2), (6, 3), (9, 9), (40, 7)])
def test_natural_cyclic_is_latin(m: int, d: int) -> None:
    A, nat = make_assignment_with_order("cyclic", m, d, 0)
    assert is_latin(A, nat)
    assert qmax(A, nat, 1) == qmax_lower_bound(A)


def test_is_latin_false_cases() -> None:
    A, nat = make_assignment_with_order("frc", 6, 3, 0)
    assert not is_latin(A, nat)  # the whole group processes chunk 0 first
    A, nat = make_assignment_with_order("uncoded", 3, 0, 0, chunks=6)
    assert not is_latin(A, nat)


@settings(max_examples=80, deadline=None)
@given(inst=instances(), seed=st.integers(0, 1000), data=st.data())
def test_greedy_never_worse_than_natural(inst, seed, data) -> None:
    A, natural = inst
    parts = data.draw(st.integers(1, int(A.sum(axis=1).min())))
    greedy = make_orders(A, "greedy", seed, natural, parts)
    positions(A, greedy)  # a valid ordering of the same assignment
    assert qmax(A, greedy, parts) <= qmax(A, natural, parts)
    assert qmax(A, greedy, parts) == qmax_bruteforce(A, greedy, parts)
    again = make_orders(A, "greedy", seed, natural, parts)
    assert all(np.array_equal(a, b) for a, b in zip(greedy, again))


def test_greedy_improves_frc_and_irregular() -> None:
    A, nat = make_assignment_with_order("frc", 12, 3, 0)
    greedy = make_orders(A, "greedy", 0, nat)
    assert qmax(A, greedy, 1) == qmax_lower_bound(A) < qmax(A, nat, 1)
    rng = np.random.default_rng(1)
    A = rng.random((40, 30)) < 0.2
    A[np.arange(40), rng.integers(30, size=40)] = True
    A[rng.integers(40, size=30), np.arange(30)] = True
    nat = natural_orders(A, "file")
    greedy = make_orders(A, "greedy", 0, nat)
    assert qmax_lower_bound(A) <= qmax(A, greedy, 1) < qmax(A, nat, 1) - 10


def test_greedy_large_instance() -> None:
    A, nat = make_assignment_with_order("frc", 256, 8, 0)
    greedy = make_orders(A, "greedy", 0, nat, parts=2)
    assert qmax(A, greedy, 2) < qmax(A, nat, 2)
    assert qmax(A, greedy, 2) == qmax(A, optimal_orders(A), 2)


def test_random_ordering_uses_per_worker_streams() -> None:
    A, nat = make_assignment_with_order("graph:circulant", 9, 4, 0)
    orders = make_orders(A, "random", 7, nat)
    for w in range(9):
        assert orders[w].tolist() == nat[w][stream(7, "ordering", w).permutation(4)].tolist()
    other = make_orders(A, "random", 8, nat)
    assert any(not np.array_equal(a, b) for a, b in zip(orders, other))


def test_natural_ordering_is_a_copy() -> None:
    A, nat = make_assignment_with_order("cyclic", 5, 2, 0)
    orders = make_orders(A, "natural", 0, nat)
    assert [o.tolist() for o in orders] == [o.tolist() for o in nat]
    orders[0][0] = 99
    assert nat[0][0] == 0


def test_unknown_ordering_and_mismatched_natural() -> None:
    A, nat = make_assignment_with_order("cyclic", 5, 2, 0)
    with pytest.raises(InputError, match="did you mean 'greedy'") as e:
        make_orders(A, "gready", 0, nat)
    assert e.value.key == "code.ordering"
    with pytest.raises(ValueError):
        make_orders(A, "natural", 0, [np.array([0, 1])] * 5)


def test_positions() -> None:
    A, nat = make_assignment_with_order("cyclic", 4, 3, 0)
    P = positions(A, nat)
    assert P[3, 3] == 0 and P[0, 3] == 1 and P[1, 3] == 2 and P[2, 3] == -1
