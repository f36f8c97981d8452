"""P1's partial-straggler protocol (docs/protocols.md#partial), both transports.

``stream``: worker w sends ``u_{w,i} = sum_k G[k, w] g_i^(k)`` after each
chunk i. Chunk i is solved the moment l distinct holders' messages are in
(design choice: those first l, so the work is done while stragglers still
compute and the critical path is one small solve; G is redrawn at plan time
until every l-subset is well conditioned). A chunk still short of l at a
deadline gets the least-squares estimate from all of its messages.

``request``: messages after chunks are progress notes; at the same decode
moment the master sends each worker (chunk, row of R_i) instructions, with
R_i = G[:, S_i]^-1 (pinv over W_i when c_i < l), and each worker answers
with one vector; part k = sum_w G[k, w] f_w. The decoding map Φ equals the
stream one chunk by chunk (G_S G_S^+ and (G_S^T)^+ G_S^T are the same
projector), so coef_error and the decodability time agree.

With ``use_partial = false`` (the ablation) a worker's messages count only
once it has finished every chunk.
"""
from __future__ import annotations

from itertools import combinations

import numpy as np

from mpigc.codes.base import Block, Combination, Decoder, MessageKey, Plan, Scheme, least_squares_combination
from mpigc.codes.registry import register
from mpigc.errors import InputError
from mpigc.seeding import stream

MAX_COND = 1e6
MAX_DRAWS = 20
MAX_SUBSETS = 100_000


@register("partial")
class PartialStragglers(Scheme):
    """P1's partial-straggler protocol: every finished chunk counts; decode when each chunk has l finishers (§3.5)."""

    config_keys = ("code.load", "code.parts", "code.assignment", "code.ordering", "code.decode", "code.deadline",
                   "code.transport", "code.use_partial")

    def __init__(self, plan: Plan, code, seed: int) -> None:
        super().__init__(plan, code, seed)
        replication = plan.assignment.sum(axis=1)
        low = int(np.argmin(replication))
        if plan.parts > replication[low]:
            raise InputError(
                "code.parts",
                f"l = {plan.parts} exceeds the replication {replication[low]} of chunk {low}",
            )
        self.use_partial = bool(code.use_partial)
        self.carries_vectors = code.transport != "request"
        self.position = np.full((plan.workers, plan.chunks), -1)
        for w, order in enumerate(plan.orders):
            self.position[w, order] = np.arange(len(order))
        self.generator, self.worst_cond, draws = self._draw_generator(seed)
        self.info.update({"code condition (worst l-subset)": self.worst_cond, "generator draws": draws})
        self._solve_cache: dict[tuple[int, ...], tuple[np.ndarray, float, float]] = {}
        self._holder_index = self._holders_by_chunk()

    # -- planning ----------------------------------------------------------
    def _draw_generator(self, seed: int) -> tuple[np.ndarray, float, int]:
        """Draw G (l × m) until every l-subset of a chunk's holders is well conditioned."""
        l, m = self.plan.parts, self.plan.workers
        subsets = self._holder_subsets(stream(seed, "code", 2))
        worst, g = np.inf, None
        for draw in range(1, MAX_DRAWS + 1):
            g = stream(seed, "code", 3, draw).standard_normal((l, m))
            worst = float(np.linalg.cond(g.T[subsets]).max()) if l > 1 else 1.0
            if worst <= MAX_COND:
                return g, worst, draw
        import warnings

        warnings.warn(f"partial: worst l-subset condition number {worst:.3g} after {MAX_DRAWS} draws", stacklevel=2)
        return g, worst, MAX_DRAWS

    def _holder_subsets(self, rng: np.random.Generator) -> np.ndarray:
        l = self.plan.parts
        subsets: list[tuple[int, ...]] = []
        for i in range(self.plan.chunks):
            holders = np.flatnonzero(self.plan.assignment[i])
            subsets.extend(combinations(holders.tolist(), l))
            if len(subsets) > 4 * MAX_SUBSETS:
                break
        arr = np.array(subsets, dtype=int).reshape(-1, l)
        if len(arr) > MAX_SUBSETS:
            arr = arr[rng.choice(len(arr), MAX_SUBSETS, replace=False)]
        return arr

    def _holders_by_chunk(self) -> tuple[np.ndarray, np.ndarray]:
        """(workers, positions) of each chunk's holders, shape (N, r_max), padded with -1."""
        a = self.plan.assignment
        r_max = int(a.sum(axis=1).max())
        workers = np.full((self.plan.chunks, r_max), -1)
        for i in range(self.plan.chunks):
            holders = np.flatnonzero(a[i])
            workers[i, : len(holders)] = holders
        chunk_ids = np.arange(self.plan.chunks)[:, None]
        positions = np.where(workers >= 0, self.position[np.maximum(workers, 0), chunk_ids], -1)
        return workers, positions

    # -- worker side -------------------------------------------------------
    def sends_after(self, worker: int) -> np.ndarray:
        """After every task: partial results stream as chunks finish."""
        return np.arange(len(self.plan.orders[worker]))

    def message_row(self, worker: int, position: int) -> np.ndarray:
        """G's row for this worker's chunk at this position, spread over the l parts."""
        l = self.plan.parts
        row = np.zeros(self.plan.chunks * l)
        chunk = int(self.plan.orders[worker][position])
        row[chunk * l : chunk * l + l] = self.generator[:, worker]
        return row

    # -- master side -------------------------------------------------------
    def effective_arrival(self, arrival: np.ndarray) -> np.ndarray:
        """When each message may enter the decode; ablation: when the worker's last one arrived."""
        if self.use_partial:
            return arrival
        last = arrival[:, np.arange(self.plan.workers), self.plan.loads - 1]
        return np.where(np.isfinite(arrival), np.maximum(arrival, last[:, :, None]), np.inf)

    def chunk_arrivals(self, arrival: np.ndarray) -> np.ndarray:
        """Arrival times of each chunk's messages, shape (R, N, r_max), inf-padded."""
        eff = np.concatenate([self.effective_arrival(arrival), np.full(arrival.shape[:2] + (1,), np.inf)], axis=2)
        workers, positions = self._holder_index
        return eff[:, np.maximum(workers, 0), np.where(positions >= 0, positions, -1)]

    def decode_times(self, arrival: np.ndarray) -> np.ndarray:
        """When every chunk has l messages from distinct holders."""
        per_chunk = np.sort(self.chunk_arrivals(arrival), axis=2)[:, :, self.plan.parts - 1]
        return per_chunk.max(axis=1)

    def exact_stats(self, arrival: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """coef_error and worst condition number of exact decodes, vectorised over rounds.

        The same numbers the decoder reports: each chunk is solved from its
        first l counted messages (their order does not change either value).
        """
        l = self.plan.parts
        first = np.argsort(self.chunk_arrivals(arrival), axis=2, kind="stable")[:, :, :l]
        holders = self._holder_index[0]
        workers = np.sort(holders[np.arange(self.plan.chunks)[None, :, None], first], axis=2)
        err, cond = self._subset_tables()
        if err is not None:
            flat = workers[..., 0] if l == 1 else workers[..., 0] * self.plan.workers + workers[..., 1]
            e, c = err[flat], cond[flat]
        else:
            e, c = np.empty(workers.shape[:2]), np.empty(workers.shape[:2])
            for idx in np.ndindex(*workers.shape[:2]):
                _, c[idx], e[idx] = self.solve(tuple(workers[idx]))
        return e.sum(axis=1) / (self.plan.chunks * l), c.max(axis=1)

    def _subset_tables(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """For l ≤ 2: error and condition of every sorted holder l-set, indexed by w1·m + w2."""
        if not hasattr(self, "_tables"):
            l, m = self.plan.parts, self.plan.workers
            self._tables: tuple[np.ndarray | None, np.ndarray | None] = (None, None)
            if l <= 2:
                err, cond = np.full(m**l, np.nan), np.full(m**l, np.nan)
                for i in range(self.plan.chunks):
                    for sub in combinations(np.flatnonzero(self.plan.assignment[i]).tolist(), l):
                        key = sub[0] if l == 1 else sub[0] * m + sub[1]
                        if np.isnan(err[key]):
                            _, cond[key], err[key] = self.solve(sub)
                self._tables = (err, cond)
        return self._tables

    def coverage(self, arrival: np.ndarray, t: np.ndarray) -> np.ndarray:
        """c_i(t) per round: messages of chunk i usable by time t, shape (R, N)."""
        return np.sum(self.chunk_arrivals(arrival) <= t[:, None, None], axis=2)

    def coef_error_from_coverage(self, coverage: np.ndarray) -> np.ndarray:
        """Return the closed form Σ_i (l − min(c_i, l)) / (N l), valid for well-conditioned G."""
        l = self.plan.parts
        return np.sum(l - np.minimum(coverage, l), axis=-1) / (self.plan.chunks * l)

    def solve(self, workers: tuple[int, ...]) -> tuple[np.ndarray, float, float]:
        """Least-squares weights pinv(G[:, S]ᵀ) (l × |S|), cond(G[:, S]) and ||Φ_i − I||² for holders S."""
        hit = self._solve_cache.get(workers)
        if hit is None:
            g_s = self.generator[:, list(workers)]
            weights = np.linalg.pinv(g_s.T)
            phi = weights @ g_s.T
            hit = (weights, float(np.linalg.cond(g_s)), float(np.sum((phi - np.eye(self.plan.parts)) ** 2)))
            if len(self._solve_cache) < 100_000:
                self._solve_cache[workers] = hit
        return hit

    def decoder(self) -> Decoder:
        """Solve each chunk from its first l messages."""
        return _PartialDecoder(self)


class _PartialDecoder(Decoder):
    """Incremental: a chunk is solved (and frozen) the moment it has l counted messages."""

    scheme: PartialStragglers

    def __init__(self, scheme: PartialStragglers) -> None:
        super().__init__(scheme)
        self.waiting: dict[int, list[MessageKey]] = {}  # ablation: messages of unfinished workers
        self.finished: set[int] = set()
        self.by_chunk: dict[int, list[MessageKey]] = {}
        self.frozen: dict[int, tuple[tuple[MessageKey, ...], np.ndarray, float, float]] = {}

    def add(self, worker: int, position: int) -> list[Block]:
        super().add(worker, position)
        s = self.scheme
        key = (worker, position)
        last = len(s.plan.orders[worker]) - 1
        if s.use_partial or worker in self.finished:
            counted = [key]
        elif position == last:
            self.finished.add(worker)
            counted = self.waiting.pop(worker, []) + [key]
        else:
            self.waiting.setdefault(worker, []).append(key)
            counted = []
        blocks = []
        for w, p in counted:
            chunk = int(s.plan.orders[w][p])
            keys = self.by_chunk.setdefault(chunk, [])
            keys.append((w, p))
            if len(keys) == s.plan.parts and chunk not in self.frozen:
                weights, cond, err = s.solve(tuple(k[0] for k in keys))
                self.frozen[chunk] = (tuple(keys), weights, cond, err)
                if s.carries_vectors:
                    blocks.append(Block(tuple(keys), weights))
        return blocks

    def needs(self, key: MessageKey) -> bool:
        # a chunk frozen from its first l messages never weighs another one
        frozen = self.frozen.get(int(self.scheme.plan.orders[key[0]][key[1]]))
        return frozen is None or key in frozen[0]

    def _chunk_sets(self) -> dict[int, tuple[MessageKey, ...]]:
        """Messages each chunk is decoded from: the frozen first l, else all it has."""
        sets = {chunk: keys for chunk, (keys, *_) in self.frozen.items()}
        for chunk, keys in self.by_chunk.items():
            sets.setdefault(chunk, tuple(keys))
        return sets

    def instructions(self) -> dict[int, list[tuple[int, np.ndarray]]]:
        generator = self.scheme.generator
        out: dict[int, list[tuple[int, np.ndarray]]] = {}
        for chunk, keys in sorted(self._chunk_sets().items()):
            workers = [w for w, _ in keys]
            r = np.linalg.pinv(generator[:, workers])  # the inverse when |S| = l
            for j, w in enumerate(workers):
                out.setdefault(w, []).append((chunk, r[j]))
        return out

    @property
    def exact(self) -> bool:
        return len(self.frozen) == self.scheme.plan.chunks

    def combination(self) -> Combination:
        s = self.scheme
        l, n = s.plan.parts, s.plan.chunks
        keys: list[MessageKey] = []
        blocks: list[np.ndarray] = []
        err, worst = 0.0, float("nan")
        for chunk in range(n):
            if chunk in self.frozen:
                chunk_keys, weights, cond, chunk_err = self.frozen[chunk]
            elif chunk in self.by_chunk:
                chunk_keys = tuple(self.by_chunk[chunk])
                weights, cond, chunk_err = s.solve(tuple(k[0] for k in chunk_keys))
            else:
                err += l
                continue
            err += chunk_err
            worst = float(np.fmax(worst, cond))  # fmax: the NaN start gives way to the first value
            keys.extend(chunk_keys)
            blocks.append(weights)
        weights = np.concatenate(blocks, axis=1) if blocks else np.zeros((l, 0))
        if not s.carries_vectors:  # request: combine the workers' answers instead
            answering = sorted({w for w, _ in keys})
            keys, weights = [(w, -1) for w in answering], s.generator[:, answering]
        return Combination(keys, weights, self.exact, err / (n * l), worst)


def answered_combination(instructions: dict[int, list[tuple[int, np.ndarray]]], answered, chunks: int,
                         parts: int) -> Combination:
    """Least-squares decode (docs/protocols.md#approximate-decoding) from the second-phase answers that arrived.

    Worker w's answer is ``sum over its (chunk, weights) of weights @ parts of
    g_chunk``, so its coefficient row holds ``weights`` in the chunk's
    columns. With every answer in, the scheme's own combination is used
    instead; this one is for a second phase cut short by its deadline.
    """
    keys = [(int(w), -1) for w in sorted(answered)]
    rows = np.zeros((len(keys), chunks * parts))
    for j, (w, _) in enumerate(keys):
        for chunk, weights in instructions[w]:
            rows[j, int(chunk) * parts:(int(chunk) + 1) * parts] += weights
    return least_squares_combination(rows, keys, chunks, parts)
