"""Assignments of data chunks to workers (docs/protocols.md#assignments-and-orderings).

An assignment is a bool matrix ``A`` of shape (N, m): ``A[i, w]`` is true when
worker ``w`` holds chunk ``i``. Every built-in assignment also has a
*natural order*, the order in which its construction lists each worker's
chunks (for ``cyclic`` worker m-1 with load 3 it is [m-1, 0, 1], not sorted).
Call :func:`make_assignment_with_order` to get both; :func:`make_assignment`
returns the matrix alone.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from mpigc.errors import InputError
from mpigc.registry import Registry
from mpigc.seeding import stream

KEY = "code.assignment"

# A builder returns each worker's chunks in construction order, given m, the
# load δ (checked: 1..m), the run seed and code.chunks (None: N = m).
Builder = Callable[[int, int, int, "int | None"], list[np.ndarray]]

#: every assignment by name (``code.assignment``). Meta: ``ascending`` (natural order is ascending chunk
#: index, else around the ring from w), ``square`` (N = m and 1 <= δ <= m are checked before building),
#: ``prefix`` (the name is a prefix followed by an argument, e.g. ``file:PATH``)
ASSIGNMENTS: Registry[Builder] = Registry("assignment", KEY)


def make_assignment(name: str, workers: int, load: int, seed: int,
                    chunks: int | None = None) -> np.ndarray:
    """Return the assignment matrix ``A`` (bool, shape (N, m)).

    Parameters
    ----------
    name : str
        ``cyclic``, ``frc``, ``uncoded``, ``graph:circulant``,
        ``graph:random-regular`` or ``file:PATH`` (.npy or .csv, N x m, 0/1):
        a name of :data:`ASSIGNMENTS`.
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
    entry = _entry_name(name)
    build = ASSIGNMENTS.lookup(entry)
    meta = ASSIGNMENTS.meta[entry]
    if meta.get("prefix"):
        A = build(m, load, seed, chunks, name[len(meta["prefix"]):])
        return A, natural_orders(A, name)
    if meta.get("square"):
        if chunks is not None and int(chunks) != m:
            raise InputError("code.chunks", f"{chunks} must equal code.workers = {m} for "
                             f"assignment {name} (or be left out)")
        d = _positive_int(load, "code.load")
        if d > m:
            raise InputError("code.load", f"{d} exceeds code.workers = {m} for assignment {name}")
        orders = build(m, d, seed, None)
    else:
        orders = build(m, load, seed, chunks)
    # every chunk 0..N-1 of a construction is held, so N is one past the largest index
    return _matrix(1 + max(int(o.max()) for o in orders if len(o)), orders), orders


def _entry_name(name: str) -> str:
    """Return the registered name of ``name``: ``file:PATH`` for every ``file:...`` (and bare ``file``)."""
    for entry, meta in ASSIGNMENTS.meta.items():
        prefix = meta.get("prefix")
        if prefix and isinstance(name, str) and (name.startswith(prefix) or name == prefix.rstrip(":")):
            return entry
    return name


@ASSIGNMENTS.register("uncoded", ascending=True)
def _uncoded(m: int, load: int, seed: int, chunks: int | None) -> list[np.ndarray]:
    """Give each worker N/m consecutive chunks, no redundancy (N = m unless code.chunks)."""
    n = m if chunks is None else _positive_int(chunks, "code.chunks")
    if n % m:
        raise InputError("code.chunks", f"{n} must be a multiple of code.workers = {m} "
                         "for assignment uncoded")
    k = n // m
    return [np.arange(w * k, (w + 1) * k) for w in range(m)]


@ASSIGNMENTS.register("cyclic", square=True)
def _cyclic(m: int, d: int, seed: int, chunks: None) -> list[np.ndarray]:
    """Give worker w chunks w, w+1, ..., w+δ-1 (mod m)."""
    return [(w + np.arange(d)) % m for w in range(m)]


@ASSIGNMENTS.register("frc", square=True, ascending=True)
def _frc(m: int, d: int, seed: int, chunks: None) -> list[np.ndarray]:
    """Give groups of δ workers the same δ chunks (δ divides m)."""
    if m % d:
        raise InputError("code.load", f"{d} must divide code.workers = {m} for assignment frc")
    return [(w // d) * d + np.arange(d) for w in range(m)]


@ASSIGNMENTS.register("graph:circulant", square=True)
def _circulant(m: int, d: int, seed: int, chunks: None) -> list[np.ndarray]:
    """Give worker w chunks w + t·floor(m/δ) (mod m), t = 0..δ-1."""
    # With q = floor(m/δ) the offsets t*q < δq <= m are distinct mod m.
    q = m // d
    return [(w + q * np.arange(d)) % m for w in range(m)]


@ASSIGNMENTS.register("file:PATH", prefix="file:", ascending=True)
def _file(m: int, load: int, seed: int, chunks: int | None, path: str) -> np.ndarray:
    """Read a 0/1 N x m matrix from a .npy or .csv file (returns the matrix, not orders)."""
    A = load_assignment_file(path, m)
    if chunks is not None and int(chunks) != A.shape[0]:
        raise InputError("code.chunks", f"{chunks} differs from the {A.shape[0]} rows of "
                         f"the assignment file {path!r}")
    return A


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
    ascending = name is not None and ASSIGNMENTS.meta.get(_entry_name(name), {}).get("ascending", False)
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

    networkx's :func:`~networkx.random_regular_graph` (Steger and Wormald's
    algorithm, close to uniform for sparse graphs) seeded from ``rng``. Dense
    cases build the complement of a sparse one, which is uniform among the
    dense graphs when the sparse one is and avoids the slow dense regime.
    """
    if degree < 0 or degree >= max(m, 1) or (m * degree) % 2:
        raise ValueError(f"no {degree}-regular simple graph on {m} nodes")
    if 2 * degree > m - 1:
        sparse = set(random_regular_graph(m, m - 1 - degree, rng))
        return [(u, v) for u in range(m) for v in range(u + 1, m) if (u, v) not in sparse]
    if degree == 0:
        return []
    import networkx  # 0.15 s to import: only runs that draw a graph pay it

    # networkx seeds Python's Mersenne Twister from an int: one draw from the project's stream
    graph = networkx.random_regular_graph(degree, m, seed=int(rng.integers(2**32)))
    return sorted((min(u, v), max(u, v)) for u, v in graph.edges())


@ASSIGNMENTS.register("graph:random-regular", square=True)
def _random_regular_orders(m: int, d: int, seed: int, chunks: None) -> list[np.ndarray]:
    """Give worker w its own chunk and its neighbours' in a random (δ-1)-regular graph.

    The graph is drawn from ``stream(seed, "assignment")``.
    """
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


@ASSIGNMENTS.register("random", ascending=True)
def _random_placement(m: int, load: int, seed: int, chunks: int | None) -> list[np.ndarray]:
    """Put every chunk on δ distinct workers drawn at random, ⌊Nδ/m⌋ or ⌈Nδ/m⌉ chunks per worker.

    A seeded random simple bipartite graph (docs/protocols.md#stochastic; N = m unless
    code.chunks): the N·δ copies are dealt to a shuffled list of worker slots
    with balanced counts, then copies that land twice on one worker are
    swapped with random copies elsewhere until every chunk's holders are
    distinct. Drawn from ``stream(seed, "assignment")``.
    """
    n = m if chunks is None else _positive_int(chunks, "code.chunks")
    d = _positive_int(load, "code.load")
    if d > m:
        raise InputError("code.load", f"{d} exceeds code.workers = {m} for assignment random")
    rng = stream(seed, "assignment")
    base, extra = divmod(n * d, m)
    counts = np.full(m, base)
    counts[rng.permutation(m)[:extra]] += 1  # which workers take one chunk more is drawn too
    slots = rng.permutation(np.repeat(np.arange(m), counts)).reshape(n, d)
    _separate_holders(slots, rng)
    return [np.flatnonzero((slots == w).any(axis=1)) for w in range(m)]


def _separate_holders(slots: np.ndarray, rng: np.random.Generator) -> None:
    """Swap copies in place until no row of ``slots`` (a chunk's holders) names a worker twice.

    Each swap keeps every worker's count; it moves a repeated holder of chunk
    i to a random chunk that lacks it, taking back a holder chunk i lacks.
    """
    n, d = slots.shape
    bad = sorted(i for i in range(n) if len(set(slots[i].tolist())) < d)
    for _ in range(100 * n * d + 1000):
        if not bad:
            return
        i = bad[int(rng.integers(len(bad)))]
        seen: set[int] = set()
        j = next(j for j, w in enumerate(slots[i].tolist()) if w in seen or seen.add(w))
        i2, j2 = int(rng.integers(n)), int(rng.integers(d))
        a, b = slots[i, j], slots[i2, j2]
        if a not in slots[i2] and b not in slots[i]:
            slots[i, j], slots[i2, j2] = b, a
            bad = [r for r in bad if len(set(slots[r].tolist())) < d]  # i, and i2 if b was its repeat, may be done
    raise InputError("code.load", f"could not place {n} chunks on {d} distinct workers each at random")


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
