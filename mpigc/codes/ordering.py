"""Processing orders of each worker's chunks, and P1's Qmax metric (docs/protocols.md#assignments-and-orderings).

An ordering is a list ``orders`` with ``orders[w]`` the chunks of worker w in
processing order. ``positions(A, orders)`` turns it into the (N, m) matrix of
idx_w(i) that every formula here works on.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_bipartite_matching

from mpigc.errors import InputError
from mpigc.registry import Registry
from mpigc.seeding import stream

# (A, seed, natural orders, parts) -> each worker's processing order
Ordering = Callable[[np.ndarray, int, "list[np.ndarray]", int], "list[np.ndarray]"]

#: every ordering by name (``code.ordering``)
ORDERINGS: Registry[Ordering] = Registry("ordering", "code.ordering")

# Brute force enumerates every progress state; refuse sizes that would take minutes.
_BRUTE_LIMIT = 2_000_000


def make_orders(A: np.ndarray, ordering: str, seed: int, natural: list[np.ndarray],
                parts: int = 1) -> list[np.ndarray]:
    """Return each worker's processing order.

    Parameters
    ----------
    A : numpy.ndarray
        Assignment, bool (N, m).
    ordering : str
        ``natural``, ``random`` (seeded per worker), ``optimal`` (Latin, needs
        N = m and equal replication) or ``greedy`` (local search on Qmax).
    seed : int
        Run seed.
    natural : list of numpy.ndarray
        The assignment's natural order (see ``make_assignment_with_order``).
    parts : int
        Gradient parts l; greedy minimises Qmax for this l.

    Returns
    -------
    list of numpy.ndarray
        ``orders[w]`` is a permutation of worker w's chunks.
    """
    A = np.asarray(A, dtype=bool)
    natural = [np.asarray(o, dtype=np.intp) for o in natural]
    positions(A, natural)  # validates that natural matches A
    _check_parts(A, parts)
    return ORDERINGS.lookup(ordering)(A, seed, natural, parts)


@ORDERINGS.register("natural")
def _natural(A: np.ndarray, seed: int, natural: list[np.ndarray], parts: int) -> list[np.ndarray]:
    """Keep the assignment's construction order."""
    return [o.copy() for o in natural]


@ORDERINGS.register("random")
def _random(A: np.ndarray, seed: int, natural: list[np.ndarray], parts: int) -> list[np.ndarray]:
    """Permute each worker's chunks uniformly, from ``stream(seed, "ordering", w)``."""
    return [o[stream(seed, "ordering", w).permutation(len(o))] for w, o in enumerate(natural)]


@ORDERINGS.register("optimal")
def _optimal(A: np.ndarray, seed: int, natural: list[np.ndarray], parts: int) -> list[np.ndarray]:
    """Return Latin orders (N = m, equal replication): :func:`optimal_orders`."""
    return optimal_orders(A)


@ORDERINGS.register("greedy")
def _greedy(A: np.ndarray, seed: int, natural: list[np.ndarray], parts: int) -> list[np.ndarray]:
    """Search locally on Qmax: :func:`greedy_orders`."""
    return greedy_orders(A, seed, natural, parts)


def positions(A: np.ndarray, orders: list[np.ndarray]) -> np.ndarray:
    """Return P (int, (N, m)): P[i, w] = idx_w(i), the position of chunk i in orders[w], or -1.

    Raises ValueError when ``orders[w]`` is not a permutation of worker w's chunks.
    """
    A = np.asarray(A, dtype=bool)
    n, m = A.shape
    if len(orders) != m:
        raise ValueError(f"{len(orders)} orders for {m} workers")
    P = np.full((n, m), -1, dtype=np.intp)
    for w, o in enumerate(orders):
        o = np.asarray(o, dtype=np.intp)
        if not np.array_equal(np.sort(o), np.flatnonzero(A[:, w])):
            raise ValueError(f"order of worker {w} is not a permutation of its chunks")
        P[o, w] = np.arange(len(o))
    return P


def qmax(A: np.ndarray, orders: list[np.ndarray], parts: int) -> int:
    """Return Qmax: chunk completions after which decoding is guaranteed (closed form).

    Q_i = total load - (sum of the r_i - l + 1 smallest remaining loads
    δ_w - idx_w(i) over holders w), which equals the form in docs/protocols.md#qmax; Qmax = 1 + max_i Q_i.
    """
    A = np.asarray(A, dtype=bool)
    _check_parts(A, parts)
    P = positions(A, orders)
    delta = A.sum(axis=0)
    r = A.sum(axis=1)
    # Remaining work of each holder when chunk i is next; non-holders sort last.
    remaining = np.where(A, delta[None, :] - P, np.iinfo(np.intp).max)
    remaining.sort(axis=1)
    keep = np.arange(A.shape[1])[None, :] < (r - parts + 1)[:, None]
    q = delta.sum() - np.where(keep, remaining, 0).sum(axis=1)
    return int(1 + q.max())


def qmax_bruteforce(A: np.ndarray, orders: list[np.ndarray], parts: int) -> int:
    """Return Qmax from its definition: 1 + max Σ k_w over insufficient progress states.

    Enumerates all prod(δ_w + 1) states; meant for tests on small instances.
    """
    A = np.asarray(A, dtype=bool)
    _check_parts(A, parts)
    P = positions(A, orders)
    delta = A.sum(axis=0)
    if np.prod(delta + 1.0) > _BRUTE_LIMIT:
        raise ValueError("too many progress states for brute force")
    grids = np.meshgrid(*[np.arange(d + 1) for d in delta], indexing="ij")
    k = np.stack([g.ravel() for g in grids], axis=1)  # (states, m)
    # Chunk i is covered by w once w has finished more than idx_w(i) chunks.
    coverage = ((k[:, None, :] > P[None, :, :]) & A[None, :, :]).sum(axis=2)
    insufficient = (coverage < parts).any(axis=1)
    return int(1 + k[insufficient].sum(axis=1).max())


def qmax_lower_bound(A: np.ndarray) -> int:
    """Return the l = 1 averaging lower bound on Qmax over all orderings of A.

    1 + ceil((Σ_i Σ_{w∉H_i} δ_w + Σ_w δ_w(δ_w-1)/2) / N); for N = m and every
    r_i = δ_w = δ it is 1 + mδ - δ(δ+1)/2.
    """
    A = np.asarray(A, dtype=bool)
    delta = A.sum(axis=0).astype(np.int64)
    outside = int((~A * delta[None, :]).sum())
    # δ(δ-1) is even, so the numerator stays an exact integer.
    numerator = outside + int((delta * (delta - 1) // 2).sum())
    return 1 + -(-numerator // A.shape[0])


def is_latin(A: np.ndarray, orders: list[np.ndarray]) -> bool:
    """Return True when every chunk occupies every position 0..δ-1 exactly once.

    Only a regular assignment (every r_i = δ_w = δ) can be Latin.
    """
    A = np.asarray(A, dtype=bool)
    delta = A.sum(axis=0)
    r = A.sum(axis=1)
    if A.shape[0] != A.shape[1] or (delta != delta[0]).any() or (r != delta[0]).any():
        return False
    P = positions(A, orders)
    held = np.sort(np.where(A, P, -1), axis=1)[:, A.shape[1] - delta[0]:]
    return bool((held == np.arange(delta[0])[None, :]).all())


def optimal_orders(A: np.ndarray) -> list[np.ndarray]:
    """Return a Latin ordering from δ perfect matchings of the worker-chunk graph.

    Raises InputError on ``code.ordering`` unless N = m and every r_i = δ_w = δ.
    """
    A = np.asarray(A, dtype=bool)
    n, m = A.shape
    delta, r = A.sum(axis=0), A.sum(axis=1)
    if n != m or (delta != delta[0]).any() or (r != delta[0]).any():
        raise InputError("code.ordering", "optimal needs N = m and equal replication "
                         f"(every r_i = δ_w = δ); got N = {n}, m = {m}, "
                         f"r_i in {r.min()}..{r.max()}, δ_w in {delta.min()}..{delta.max()}; "
                         "use greedy")
    remaining = A.T.copy()  # workers x chunks
    slots = np.empty((m, delta[0]), dtype=np.intp)
    for t in range(delta[0]):
        # A regular bipartite graph has a perfect matching (Hall), so any
        # maximum matching is perfect, and removing it keeps the graph regular.
        match = maximum_bipartite_matching(csr_matrix(remaining), perm_type="column")
        if (match < 0).any():
            raise RuntimeError(f"matching {t} is not perfect; the graph was not regular")
        slots[:, t] = match
        remaining[np.arange(m), match] = False
    return [slots[w].copy() for w in range(m)]


def greedy_orders(A: np.ndarray, seed: int, natural: list[np.ndarray],
                  parts: int = 1) -> list[np.ndarray]:
    """Return orders found by local search on Qmax; never worse than ``natural``.

    Starts from the natural order, from a Latin order when A is regular, from
    a "rarest chunk first" order and from one seeded random order; each start
    descends by swapping two chunks of one worker while that lowers the number
    of chunks whose Q_i is the maximum (hence never raises Qmax). The best
    result wins (earliest start on ties). Deterministic given ``seed``.
    """
    A = np.asarray(A, dtype=bool)
    natural = [np.asarray(o, dtype=np.intp) for o in natural]
    _check_parts(A, parts)
    starts = [natural]
    if _regular(A):
        starts.append(optimal_orders(A))
    # Chunks whose holders are few or lightly loaded have the largest Q_i, so
    # process them early everywhere.
    delta = A.sum(axis=0)
    base = (~A * delta[None, :]).sum(axis=1) - A.sum(axis=1)
    starts.append([o[np.argsort(-base[o], kind="stable")] for o in natural])
    rng = stream(seed, "ordering", A.shape[1])  # index m: distinct from "random"'s workers
    starts.append([o[rng.permutation(len(o))] for o in natural])
    best, best_q = None, None
    for start in starts:
        orders = _descend(A, start, parts)
        q = qmax(A, orders, parts)
        if best_q is None or q < best_q:
            best, best_q = orders, q
    return best


def _descend(A: np.ndarray, start: list[np.ndarray], parts: int) -> list[np.ndarray]:
    """First-improvement local search over in-worker swaps (bounded move count)."""
    n = A.shape[0]
    delta = A.sum(axis=0).tolist()
    total = sum(delta)
    holders = [np.flatnonzero(A[i]).tolist() for i in range(n)]
    keep = [len(h) - parts + 1 for h in holders]
    pos = positions(A, start).tolist()
    orders = [o.tolist() for o in start]

    def q_of(i: int, w: int = -1, p: int = -1) -> int:
        # Q_i with chunk i moved to position p of worker w (w = -1: as is).
        rem = sorted(delta[v] - (p if v == w else pos[i][v]) for v in holders[i])
        return total - sum(rem[:keep[i]])

    Q = [q_of(i) for i in range(n)]
    max_moves = 4 * sum(delta) + 100
    for _ in range(max_moves):
        if not _improve_once(orders, pos, Q, holders, q_of):
            break
    return [np.array(o, dtype=np.intp) for o in orders]


def _improve_once(orders: list[list[int]], pos: list[list[int]], Q: list[int],
                  holders: list[list[int]], q_of) -> bool:
    """Apply the first swap that moves a chunk of largest Q_i earlier and leaves both below the max.

    Only chunks at the maximum are scanned: Qmax is all that is minimised, and
    (measured) full lexicographic scans of every chunk cost 3-10x more for no gain.
    """
    top = max(Q)
    for i in [c for c, q in enumerate(Q) if q == top]:
        for w in holders[i]:
            a = pos[i][w]
            # Moving i earlier is the only way to lower Q_i.
            for b in range(a):
                j = orders[w][b]
                new_i, new_j = q_of(i, w, b), q_of(j, w, a)
                # One chunk fewer at the maximum (or a lower maximum): no cycles.
                if new_i < top and new_j < top:
                    orders[w][a], orders[w][b] = j, i
                    pos[i][w], pos[j][w] = b, a
                    Q[i], Q[j] = new_i, new_j
                    return True
    return False


def _regular(A: np.ndarray) -> bool:
    delta, r = A.sum(axis=0), A.sum(axis=1)
    return A.shape[0] == A.shape[1] and bool((delta == delta[0]).all() and (r == delta[0]).all())


def _check_parts(A: np.ndarray, parts: int) -> None:
    try:
        ok = not isinstance(parts, bool) and int(parts) == parts and parts >= 1
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise InputError("code.parts", f"must be a positive integer, got {parts!r}")
    r = A.sum(axis=1)
    i = int(np.argmin(r))
    if parts > r[i]:
        raise InputError("code.parts", f"{parts} exceeds the replication {r[i]} of chunk {i}")
