"""Assignments: shapes, replication, natural orders, random-regular graphs, files, errors."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from mpigc.codes.assignments import (
    make_assignment,
    make_assignment_with_order,
    natural_orders,
    random_regular_graph,
)
from mpigc.errors import InputError


def held(A: np.ndarray, w: int) -> set[int]:
    return set(np.flatnonzero(A[:, w]).tolist())


@pytest.mark.parametrize("m,d", [(1, 1), (5, 1), (5, 3), (7, 7), (10, 4)])
def test_cyclic(m: int, d: int) -> None:
    A, orders = make_assignment_with_order("cyclic", m, d, seed=0)
    assert A.dtype == bool and A.shape == (m, m)
    assert (A.sum(axis=0) == d).all() and (A.sum(axis=1) == d).all()
    for w in range(m):
        assert orders[w].tolist() == [(w + t) % m for t in range(d)]
    assert np.array_equal(make_assignment("cyclic", m, d, seed=0), A)


def test_cyclic_natural_order_wraps_not_sorted() -> None:
    A, orders = make_assignment_with_order("cyclic", 6, 3, seed=0)
    assert orders[5].tolist() == [5, 0, 1]
    # natural_orders from the bare matrix reproduces the construction order.
    assert [o.tolist() for o in natural_orders(A)] == [o.tolist() for o in orders]


@pytest.mark.parametrize("m,d", [(6, 2), (6, 3), (8, 8), (5, 1)])
def test_frc_groups(m: int, d: int) -> None:
    A, orders = make_assignment_with_order("frc", m, d, seed=0)
    assert A.shape == (m, m)
    assert (A.sum(axis=0) == d).all() and (A.sum(axis=1) == d).all()
    for w in range(m):
        q = w // d
        assert orders[w].tolist() == list(range(q * d, q * d + d))
        # Every member of a group holds the same chunks.
        assert held(A, w) == held(A, q * d)
    assert [o.tolist() for o in natural_orders(A, "frc")] == [o.tolist() for o in orders]


def test_frc_requires_divisor() -> None:
    with pytest.raises(InputError, match="must divide code.workers = 10 for assignment frc") as e:
        make_assignment("frc", 10, 3, seed=0)
    assert e.value.key == "code.load"


@pytest.mark.parametrize("m,d", [(7, 3), (8, 4), (10, 3), (9, 9), (5, 1)])
def test_circulant(m: int, d: int) -> None:
    A, orders = make_assignment_with_order("graph:circulant", m, d, seed=0)
    q = m // d
    assert (A.sum(axis=0) == d).all() and (A.sum(axis=1) == d).all()
    for w in range(m):
        assert orders[w].tolist() == [(w + t * q) % m for t in range(d)]
    assert [o.tolist() for o in natural_orders(A)] == [o.tolist() for o in orders]
    if q > 1 and d > 1:
        assert not np.array_equal(A, make_assignment("cyclic", m, d, seed=0))


def test_uncoded() -> None:
    A, orders = make_assignment_with_order("uncoded", 4, 99, seed=0, chunks=12)
    assert A.shape == (12, 4)
    assert (A.sum(axis=1) == 1).all() and (A.sum(axis=0) == 3).all()
    assert orders[2].tolist() == [6, 7, 8]
    assert make_assignment("uncoded", 4, 1, seed=0).shape == (4, 4)
    with pytest.raises(InputError) as e:
        make_assignment("uncoded", 4, 1, seed=0, chunks=10)
    assert e.value.key == "code.chunks"


def simple_regular_check(A: np.ndarray, d: int) -> None:
    """A = I + adjacency of a simple (d-1)-regular graph."""
    m = A.shape[0]
    assert A.shape == (m, m) and np.diag(A).all()
    adj = A & ~np.eye(m, dtype=bool)
    assert np.array_equal(adj, adj.T)
    assert (adj.sum(axis=0) == d - 1).all()


@pytest.mark.parametrize("m,d", [(6, 3), (10, 4), (16, 8), (17, 17), (20, 16), (64, 9), (1024, 16)])
def test_random_regular_is_simple_regular(m: int, d: int) -> None:
    A, orders = make_assignment_with_order("graph:random-regular", m, d, seed=3)
    simple_regular_check(A, d)
    assert (A.sum(axis=1) == d).all()
    for w in range(m):
        assert orders[w][0] == w and set(orders[w].tolist()) == held(A, w)


def test_random_regular_reproducible_and_seeded() -> None:
    a = make_assignment("graph:random-regular", 30, 5, seed=11)
    b = make_assignment("graph:random-regular", 30, 5, seed=11)
    c = make_assignment("graph:random-regular", 30, 5, seed=12)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_random_regular_parity_and_range() -> None:
    with pytest.raises(InputError) as e:
        make_assignment("graph:random-regular", 7, 4, seed=0)  # 7 * 3 odd
    assert e.value.key == "code.load"
    with pytest.raises(InputError) as e:
        make_assignment("graph:random-regular", 6, 7, seed=0)
    assert e.value.key == "code.load"


def test_random_regular_graph_close_to_uniform() -> None:
    # The 2-regular graphs on 5 labelled nodes are the 12 five-cycles.
    counts = Counter(tuple(random_regular_graph(5, 2, np.random.default_rng(s)))
                     for s in range(1200))
    assert len(counts) == 12
    assert min(counts.values()) > 60 and max(counts.values()) < 145


def test_random_regular_graph_dense_uses_complement() -> None:
    edges = random_regular_graph(12, 9, np.random.default_rng(0))
    assert len(edges) == 12 * 9 // 2 and len(set(edges)) == len(edges)
    assert all(u < v for u, v in edges)


@pytest.mark.parametrize("name", ["cyclic", "graph:circulant", "graph:random-regular"])
def test_load_out_of_range(name: str) -> None:
    for load in (0, 9):
        with pytest.raises(InputError) as e:
            make_assignment(name, 8, load, seed=0)
        assert e.value.key == "code.load"


def test_chunks_must_match_for_square_assignments() -> None:
    with pytest.raises(InputError) as e:
        make_assignment("cyclic", 8, 2, seed=0, chunks=16)
    assert e.value.key == "code.chunks"
    assert make_assignment("cyclic", 8, 2, seed=0, chunks=8).shape == (8, 8)


def test_unknown_name_suggests() -> None:
    with pytest.raises(InputError, match="did you mean 'graph:circulant'") as e:
        make_assignment("graph:circulnt", 8, 2, seed=0)
    assert e.value.key == "code.assignment"


# ---------------------------------------------------------------- files

GOOD = np.array([[1, 1, 0], [0, 1, 1], [1, 0, 1], [1, 0, 0]])


def test_file_npy_and_csv(tmp_path) -> None:
    npy, csv = tmp_path / "a.npy", tmp_path / "a.csv"
    np.save(npy, GOOD)
    np.savetxt(csv, GOOD, delimiter=",", fmt="%d")
    for path in (npy, csv):
        A, orders = make_assignment_with_order(f"file:{path}", 3, 0, seed=0)
        assert A.dtype == bool and np.array_equal(A, GOOD.astype(bool))
        assert orders[0].tolist() == [0, 2, 3]  # files list chunks in ascending order
    with pytest.raises(InputError) as e:
        make_assignment(f"file:{npy}", 3, 0, seed=0, chunks=5)
    assert e.value.key == "code.chunks"


def _bad_files(tmp_path):
    def npy(name, arr):
        p = tmp_path / name
        np.save(p, arr)
        return p

    text = tmp_path / "text.csv"
    text.write_text("1,0,a\n0,1,1\n")
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("1,0,1\n0,1\n")
    return {
        "missing": tmp_path / "nope.npy",
        "suffix": tmp_path / "a.txt",
        "one-d": npy("oned.npy", np.ones(3)),
        "two": npy("two.npy", np.array([[1, 2, 0], [0, 1, 1]])),
        "half": npy("half.npy", np.array([[1, 0.5, 0], [0, 1, 1]])),
        "columns": npy("cols.npy", np.ones((3, 4))),
        "orphan chunk": npy("orphan.npy", np.array([[1, 1, 1], [0, 0, 0]])),
        "idle worker": npy("idle.npy", np.array([[1, 0, 0], [0, 1, 0]])),
        "text": text,
        "ragged": ragged,
    }


@pytest.mark.parametrize("case", ["missing", "suffix", "one-d", "two", "half", "columns",
                                  "orphan chunk", "idle worker", "text", "ragged"])
def test_file_rejects_bad(tmp_path, case: str) -> None:
    path = _bad_files(tmp_path)[case]
    with pytest.raises(InputError) as e:
        make_assignment(f"file:{path}", 3, 0, seed=0)
    assert e.value.key == "code.assignment"
    assert str(e.value).startswith("code.assignment: ")
