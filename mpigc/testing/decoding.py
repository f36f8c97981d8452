"""The kit's master-side checks: random instances, arrivals fed in order, decodes against the truth.

An *instance* is a scheme planned for one (m, load, parts, seed), random
chunk gradients (float64, a length that does not divide into the parts, so
padding is exercised) and a few rounds of random arrivals: each worker
finishes its tasks after Exp(1) + 0.1 time units each, and some workers stop
early (partial stragglers) or never start. Messages are fed to a fresh
decoder in arrival order; everything the kit compares is computed from the
scheme's own answers (``encode``, ``message_row``, ``decode_times``,
``decoder``), never from a clock.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from mpigc.codes import Combination, Scheme, combine, make_scheme, split_parts
from mpigc.config import load_config
from mpigc.config.toml import format_value
from mpigc.errors import InputError

#: (m, load) of the instances; parts 1 and 2 are tried on each
GRID = ((3, 1), (3, 2), (4, 2), (5, 3), (6, 2), (8, 4))
ROUNDS = 6
DIM = 7
#: relative error of an exact decode (float64: solves of well-conditioned systems lose a few digits at most)
EXACT_RTOL = 1e-9
#: coef_error reported vs recomputed from the combination and the message rows
COEF_ATOL, COEF_RTOL = 1e-9, 1e-6


@dataclass
class Tally:
    """What one check saw: instances, rounds, worst numbers and the first failures."""

    rounds: int = 0
    worst: float = 0.0
    failures: list[str] = field(default_factory=list)

    def fail(self, where: str, what: str) -> None:
        """Record a failure (the first few are kept for the report)."""
        if len(self.failures) < 3:
            self.failures.append(f"{where}: {what}")
        else:
            self.failures.append("")


@dataclass
class Instance:
    """One planned scheme with its data and arrivals."""

    label: str
    scheme: Scheme
    grads: np.ndarray              # (N, DIM) chunk gradients
    arrival: np.ndarray            # (R, m, P), inf where no message arrives


def instance_configs(name: str, overrides: list[str], seeds: int) -> Iterator[tuple[str, list[str]]]:
    """Yield (label, config overrides) of every instance tried, parts 1 and 2, ``seeds`` seeds each."""
    for (m, load) in GRID:
        for parts in (1, 2):
            for seed in range(1, seeds + 1):
                over = [f"code.scheme={format_value(name)}", f"code.workers={m}", f"code.load={load}",
                        f"code.parts={parts}", f"run.seed={seed}", *overrides]
                yield f"m={m} load={load} parts={parts} seed={seed}", over


def plan_instances(name: str, overrides: list[str], seeds: int) -> tuple[list[Instance], dict[str, int]]:
    """Plan every instance the scheme accepts; return them and the reasons (with counts) of those it refused."""
    done, refused = [], {}
    for label, over in instance_configs(name, overrides, seeds):
        try:
            config = load_config(None, over, backend="sim")
            code = config.codes[0]
            scheme = make_scheme(code, code.workers, config.run.seed)
        except InputError as error:
            refused[error.key] = refused.get(error.key, 0) + 1
            continue
        done.append(make_instance(label, scheme, config.run.seed))
    return done, refused


def make_instance(label: str, scheme: Scheme, seed: int) -> Instance:
    """Draw the chunk gradients and arrivals of an instance from the kit's own generator."""
    rng = np.random.default_rng([seed, 20260513])
    plan = scheme.plan
    grads = rng.standard_normal((plan.chunks, DIM))
    arrival = np.full((ROUNDS, plan.workers, plan.max_load), np.inf)
    for r in range(ROUNDS):
        view = round_view(scheme, r)
        mask = view.send_mask()
        for w in range(plan.workers):
            load = len(view.plan.orders[w])
            done = np.cumsum(0.1 + rng.exponential(1.0, load))
            stop = load if rng.random() > 0.3 else int(rng.integers(0, load))  # partial straggler: stops early
            arrival[r, w, :stop] = np.where(mask[w, :stop], done[:stop], np.inf)
    return Instance(label, scheme, grads, arrival)


def round_view(scheme: Scheme, rnd: int) -> Scheme:
    """Return the scheme as it runs in round ``rnd`` (schemes whose plan changes per round); else itself."""
    for_round = getattr(scheme, "for_round", None)
    return for_round(rnd) if for_round is not None else scheme


def vectorised_times(scheme: Scheme, arrival: np.ndarray) -> np.ndarray:
    """Return the scheme's vectorised first exact-decode times of rounds 0..R-1."""
    per_round = getattr(scheme, "round_decode_times", None)
    if per_round is not None:
        return np.asarray(per_round(arrival, range(len(arrival))), dtype=float)
    return np.asarray(scheme.decode_times(arrival), dtype=float)


def arrival_groups(arrival: np.ndarray) -> list[tuple[float, list[tuple[int, int]]]]:
    """Messages of one round grouped by arrival time (ties enter together), in time order."""
    w_idx, p_idx = np.nonzero(np.isfinite(arrival))
    times = arrival[w_idx, p_idx]
    groups: dict[float, list[tuple[int, int]]] = {}
    for k in np.argsort(times, kind="stable"):
        groups.setdefault(float(times[k]), []).append((int(w_idx[k]), int(p_idx[k])))
    return sorted(groups.items())


class Replay:
    """One round fed to a fresh decoder group by group, with the blocks it returned."""

    def __init__(self, view: Scheme, groups: list[tuple[float, list[tuple[int, int]]]], upto: int = 0) -> None:
        self.view = view
        self.decoder = view.decoder()
        self.blocks: list = []
        self.heard: dict[int, int] = {}  # worker → last position heard
        for _, keys in groups[:upto]:
            self.feed(keys)

    def feed(self, keys: list[tuple[int, int]]) -> None:
        """Add one group of messages that arrived together."""
        for w, p in keys:
            self.blocks.extend(self.decoder.add(w, p) or [])
            self.heard[w] = max(self.heard.get(w, -1), p)

    def vectors(self, comb: Combination, grads: np.ndarray) -> dict:
        """Vectors of the combination's keys, built as the workers build them (two-phase: their answers)."""
        view, out = self.view, {}
        if view.two_phase:
            orders = self.decoder.instructions()
            for w, _ in comb.keys:
                done = view.plan.orders[w][: self.heard.get(w, -1) + 1]
                out[(w, -1)] = view.answer(orders.get(w, []), {int(c): grads[c] for c in done})
            return out
        for w, p in comb.keys:
            if p > self.heard.get(w, -1):
                raise KeyError(f"the combination uses message {(w, p)}, which has not arrived")
            out[(w, p)] = view.encode(w, p, {int(c): grads[c] for c in view.plan.orders[w][: p + 1]})
        return out

    def rows(self, comb: Combination) -> np.ndarray:
        """Coefficient rows (len(keys), N·parts) of the combination's keys."""
        view = self.view
        n, parts = view.plan.chunks, view.plan.parts
        if not view.two_phase:
            rows = [np.asarray(view.message_row(w, p), dtype=float).reshape(-1) for w, p in comb.keys]
            return np.array(rows) if rows else np.zeros((0, n * parts))
        orders = self.decoder.instructions()
        rows = np.zeros((len(comb.keys), n * parts))
        for j, (w, _) in enumerate(comb.keys):
            for chunk, weights in orders.get(w, []):
                rows[j, int(chunk) * parts:(int(chunk) + 1) * parts] += weights
        return rows


def target(chunks: int, parts: int) -> np.ndarray:
    """E (parts × N·parts): part k of the gradient is the sum of every chunk's part k."""
    out = np.zeros((parts, chunks * parts))
    for k in range(parts):
        out[k, k::parts] = 1.0
    return out


def truth(grads: np.ndarray) -> np.ndarray:
    """Return the true gradient: the sum of the chunk gradients."""
    return grads.sum(axis=0)


def implied(phi: np.ndarray, grads: np.ndarray, parts: int) -> np.ndarray:
    """Return the estimate a decoding map Φ gives: part k = Σ_{i,k'} Φ[k, i·parts + k'] g_i^(k')."""
    split = np.stack([split_parts(g, parts) for g in grads])          # (N, parts, L)
    est = phi @ split.reshape(-1, split.shape[2])                      # (parts, L)
    return est.reshape(-1)[: grads.shape[1]]


def decode(replay: Replay, comb: Combination, grads: np.ndarray) -> np.ndarray:
    """Apply the combination to the messages' vectors (first DIM coordinates)."""
    return combine(comb, replay.vectors(comb, grads), grads.shape[1])
