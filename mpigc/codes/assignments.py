"""Assignments of data chunks to workers (PROTOCOLS.md §2).

An assignment is a bool matrix ``A`` of shape (N, m): ``A[i, w]`` is true when
worker ``w`` holds chunk ``i``. Every built-in assignment also has a
*natural order*, the order in which its construction lists each worker's
chunks (for ``cyclic`` worker m-1 with load 3 it is [m-1, 0, 1], not sorted).
Call :func:`make_assignment_with_order` to get both; :func:`make_assignment`
returns the matrix alone.
"""
from __future__ import annotations

import difflib
from collections import Counter
from pathlib import Path

import numpy as np

from mpigc.errors import InputError
from mpigc.seeding import stream

KEY = "code.assignment"
NAMES = ("cyclic", "frc", "uncoded", "graph:circulant", "graph:random-regular", "file:PATH")

# Names whose natural order is ascending chunk index (block constructions and
# files); every other built-in lists a worker's chunks around the ring from w.
_ASCENDING = ("frc", "uncoded", "file")


def make_assignment(name: str, workers: int, load: int, seed: int,
                    chunks: int | None = None) -> np.ndarray:
    """Return the assignment matrix ``A`` (bool, shape (N, m)).

    Parameters
    ----------
    name : str
        ``cyclic``, ``frc``, ``uncoded``, ``graph:circulant``,
        ``graph:random-regular`` or ``file:PATH`` (.npy or .csv, N x m, 0/1).
    workers : int
        Number of workers m.
    load : int
        Chunks per worker δ (ignored by ``uncoded`` and ``file:``).
    seed : int
        Run seed; only ``graph:random-regular`` draws from it.
    chunks : int, optional
        Number of chunks N; only ``uncoded`` may differ from m.

    Returns
    -------
    numpy.ndarray
        ``A[i, w]`` is true when worker w holds chunk i.
    """
    return make_assignment_with_order(name, workers, load, seed, chunks)[0]


def make_assignment_with_order(name: str, workers: int, load: int, seed: int,
                               chunks: int | None = None
                               ) -> tuple[np.ndarray, list[np.ndarray]]:
    """Return ``(A, orders)``: the assignment and each worker's natural order.

    Same parameters as :func:`make_assignment`. ``orders[w]`` lists worker
    w's chunks in construction order (an int array of length δ_w).
    """
    m = _positive_int(workers, "code.workers")
    if name.startswith("file:"):
        A = load_assignment_file(name[len("file:"):], m)
        if chunks is not None and int(chunks) != A.shape[0]:
            raise InputError("code.chunks", f"{chunks} differs from the {A.shape[0]} rows of "
                             f"the assignment file {name[len('file:'):]!r}")
        return A, natural_orders(A, "file")
    if name == "uncoded":
        n = m if chunks is None else _positive_int(chunks, "code.chunks")
        if n % m:
            raise InputError("code.chunks", f"{n} must be a multiple of code.workers = {m} "
                             "for assignment uncoded")
        k = n // m
        orders = [np.arange(w * k, (w + 1) * k) for w in range(m)]
        return _matrix(n, orders), orders
    if name not in NAMES:
        hint = difflib.get_close_matches(name, NAMES, n=1)
        tip = f"; did you mean {hint[0]!r}?" if hint else ""
        raise InputError(KEY, f"unknown assignment {name!r}{tip} (known: {', '.join(NAMES)})")
    if chunks is not None and int(chunks) != m:
        raise InputError("code.chunks", f"{chunks} must equal code.workers = {m} for "
                         f"assignment {name} (or be left out)")
    d = _positive_int(load, "code.load")
    if d > m:
        raise InputError("code.load", f"{d} exceeds code.workers = {m} for assignment {name}")
    if name == "cyclic":
        orders = [(w + np.arange(d)) % m for w in range(m)]
    elif name == "frc":
        if m % d:
            raise InputError("code.load", f"{d} must divide code.workers = {m} for assignment frc")
        orders = [(w // d) * d + np.arange(d) for w in range(m)]
    elif name == "graph:circulant":
        # With q = floor(m/δ) the offsets t*q < δq <= m are distinct mod m.
        q = m // d
        orders = [(w + q * np.arange(d)) % m for w in range(m)]
    else:
        orders = _random_regular_orders(m, d, seed)
    return _matrix(m, orders), orders


def natural_orders(A: np.ndarray, name: str | None = None) -> list[np.ndarray]:
    """Return each worker's chunks in the order its assignment lists them.

    Parameters
    ----------
    A : numpy.ndarray
        Assignment matrix, shape (N, m).
    name : str, optional
        Assignment name. ``frc``, ``uncoded`` and ``file:...`` list chunks in
        ascending order. Otherwise (including ``None``) chunks are listed
        around the ring starting at the worker's own index, i.e. sorted by
        (i - w) mod N: the construction order of ``cyclic``,
        ``graph:circulant`` and ``graph:random-regular``.

    Returns
    -------
    list of numpy.ndarray
        ``orders[w]``: chunk indices of worker w.
    """
    A = np.asarray(A, dtype=bool)
    n, m = A.shape
    ascending = name is not None and name.split(":")[0] in _ASCENDING
    orders = []
    for w in range(m):
        held = np.flatnonzero(A[:, w])
        if not ascending:
            held = held[np.argsort((held - w) % n, kind="stable")]
        orders.append(held)
    return orders


def load_assignment_file(path: str, workers: int) -> np.ndarray:
    """Load and validate a 0/1 assignment matrix (N x m) from .npy or .csv.

    Raises
    ------
    InputError
        On key ``code.assignment`` when the file is unreadable or not a valid
        assignment for ``workers`` workers.
    """
    where = f"assignment file {path!r}"
    suffix = Path(path).suffix.lower()
    if suffix not in (".npy", ".csv"):
        raise InputError(KEY, f"{where} must end in .npy or .csv")
    try:
        if suffix == ".npy":
            raw = np.load(path, allow_pickle=False)
        else:
            raw = np.loadtxt(path, delimiter=",", ndmin=2)
    except (OSError, ValueError) as exc:
        raise InputError(KEY, f"cannot read {where}: {exc}") from None
    if raw.ndim != 2 or raw.size == 0:
        raise InputError(KEY, f"{where} must hold a non-empty 2-D matrix, got shape {raw.shape}")
    if raw.dtype.kind not in "biuf":
        raise InputError(KEY, f"{where} must be numeric 0/1, got dtype {raw.dtype}")
    if not np.isin(raw, (0, 1)).all():
        raise InputError(KEY, f"{where} must contain only 0 and 1")
    A = raw.astype(bool)
    if A.shape[1] != workers:
        raise InputError(KEY, f"{where} has {A.shape[1]} columns, expected "
                         f"code.workers = {workers}")
    orphans = np.flatnonzero(~A.any(axis=1))
    if orphans.size:
        raise InputError(KEY, f"{where}: chunk {orphans[0]} is held by no worker")
    idle = np.flatnonzero(~A.any(axis=0))
    if idle.size:
        raise InputError(KEY, f"{where}: worker {idle[0]} holds no chunk")
    return A


def random_regular_graph(m: int, degree: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """Return the edges (u < v) of a random ``degree``-regular simple graph on m nodes.

    Pairing model, repaired by edge switchings, then mixed by random
    double-edge swaps (whose chain is uniform on simple regular graphs), so
    the law is close to uniform. Dense cases build the complement.
    """
    if degree < 0 or degree >= max(m, 1) or (m * degree) % 2:
        raise ValueError(f"no {degree}-regular simple graph on {m} nodes")
    if 2 * degree > m - 1:
        # Sparse graphs repair and mix fast; the complement of a uniform
        # sparse regular graph is uniform among the dense ones.
        sparse = set(random_regular_graph(m, m - 1 - degree, rng))
        return [(u, v) for u in range(m) for v in range(u + 1, m) if (u, v) not in sparse]
    if degree == 0:
        return []
    for _ in range(100):
        stubs = rng.permutation(np.repeat(np.arange(m), degree)).reshape(-1, 2)
        edges = [(int(u), int(v)) for u, v in stubs]
        count = Counter(_key(e) for e in edges)
        # Tiny graphs can pair into a dead end (e.g. only loops): draw again.
        if _repair(edges, count, rng):
            _mix(edges, count, rng, sweeps=10)
            return sorted(_key(e) for e in edges)
    raise RuntimeError(f"could not build a {degree}-regular graph on {m} nodes")


def _key(e: tuple[int, int]) -> tuple[int, int]:
    return (e[0], e[1]) if e[0] < e[1] else (e[1], e[0])


def _switch(edges: list[tuple[int, int]], count: Counter, e1: int, e2: int, flip: bool) -> bool:
    """Replace edges {a,b},{c,d} by {a,c},{b,d} if no loop or double edge appears."""
    a, b = edges[e1]
    c, d = edges[e2]
    if flip:
        c, d = d, c
    n1, n2 = _key((a, c)), _key((b, d))
    if e1 == e2 or a == c or b == d or n1 == n2 or count[n1] or count[n2]:
        return False
    for old in (edges[e1], edges[e2]):
        k = _key(old)
        count[k] -= 1
        if not count[k]:
            del count[k]
    count[n1] += 1
    count[n2] += 1
    edges[e1], edges[e2] = n1, n2
    return True


def _repair(edges: list[tuple[int, int]], count: Counter, rng: np.random.Generator) -> bool:
    """Switch every loop and repeated edge away against random partner edges; False if stuck."""
    def bad(e: tuple[int, int]) -> bool:
        return e[0] == e[1] or count[_key(e)] > 1

    queue = [k for k, e in enumerate(edges) if bad(e)]
    budget = 50 * (len(queue) + 1) + 20 * len(edges)
    while queue:
        e1 = queue.pop()
        while bad(edges[e1]):
            budget -= 1
            if budget < 0:
                return False
            e2 = int(rng.integers(len(edges)))
            _switch(edges, count, e1, e2, bool(rng.integers(2)))
    return True


def _mix(edges: list[tuple[int, int]], count: Counter, rng: np.random.Generator,
         sweeps: int) -> None:
    """Apply ``sweeps * len(edges)`` proposed double-edge swaps (drawn in bulk)."""
    n = sweeps * len(edges)
    e1s = rng.integers(len(edges), size=n).tolist()
    e2s = rng.integers(len(edges), size=n).tolist()
    flips = rng.integers(2, size=n).tolist()
    for e1, e2, flip in zip(e1s, e2s, flips):
        _switch(edges, count, e1, e2, bool(flip))


def _random_regular_orders(m: int, d: int, seed: int) -> list[np.ndarray]:
    degree = d - 1
    if (m * degree) % 2:
        raise InputError("code.load", f"graph:random-regular needs code.workers * (code.load - 1) "
                         f"even; got {m} * {degree}")
    nbrs: list[list[int]] = [[] for _ in range(m)]
    for u, v in random_regular_graph(m, degree, stream(seed, "assignment")):
        nbrs[u].append(v)
        nbrs[v].append(u)
    # Own chunk first, then neighbours around the ring from w (as natural_orders).
    return [np.array([w] + sorted(nbrs[w], key=lambda v, w=w: (v - w) % m)) for w in range(m)]


def _matrix(n: int, orders: list[np.ndarray]) -> np.ndarray:
    A = np.zeros((n, len(orders)), dtype=bool)
    for w, held in enumerate(orders):
        A[held, w] = True
    return A


def _positive_int(value: int, key: str) -> int:
    try:
        ok = not isinstance(value, bool) and int(value) == value and value >= 1
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise InputError(key, f"must be a positive integer, got {value!r}")
    return int(value)
