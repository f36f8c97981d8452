"""``mpigc tune``: P3's parameter selection by grid search on a load-0 trace (docs/protocols.md#trace-driven-loads).

For every candidate parameter set the total runtime of J jobs is simulated
on the trace with P3's affine round-time model (load-0 value + L·slope at the
scheme's normalised load L) and the (1+μ)·t_min rule with wait-outs
(docs/protocols.md#sequential-schemes). Only round times matter, so no gradients are computed and
every λ of a (B, W) pair is simulated at once as one batch. The round rule
is the engine's (:class:`~mpigc.core.sgc_engine.SequentialEngine`),
vectorised: the (B, W, λ) check of :mod:`mpigc.bursts`, SR-SGC's redos,
exemptions, safety wait-outs and free tail rounds, M-SGC's safety wait-outs.
:func:`engine_total` runs the engine itself on the same round times, and a
test checks the two agree on every grid point of small traces. Grids:
gc-seq s ∈ [0, 63]; sr-sgc and m-sgc B ∈ {1, 2}, W ∈ [B+1, 5] (sr-sgc:
W − 1 divisible by B), λ ∈ [1, 63] (``max_lam`` widens it, up to m − 1).
Ties go to the first candidate in that order.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np

from mpigc.bursts import bursty_ok, window
from mpigc.codes.msgc import msgc_sizes
from mpigc.codes.sgc import build_sequential, scheme_load, sr_sgc_tolerance
from mpigc.config import CodeConfig, load_config
from mpigc.core.sgc_engine import SequentialEngine
from mpigc.report import format_table
from mpigc.sim.driver import simulate

SCHEMES = ("m-sgc", "sr-sgc", "gc-seq", "uncoded")


@dataclass
class Choice:
    """The best parameters of one scheme, its simulated total runtime and wait-outs, and the grid."""

    scheme: str
    params: dict
    runtime: float
    waitouts: int
    grid: list[tuple[dict, float]] = field(default_factory=list)

    def label(self) -> str:
        """Parameters as ``k=v`` text."""
        return " ".join(f"{k}={v}" for k, v in self.params.items()) or "-"


def trace_block(values: np.ndarray, m: int, rounds: int) -> np.ndarray:
    """Load-0 seconds of ``rounds`` rounds × m workers, wrapping rows and columns (``delays.wrap``)."""
    return values[np.arange(rounds) % values.shape[0]][:, np.arange(m) % values.shape[1]]


def _round(base_r: np.ndarray, load: np.ndarray, slope: float, mu: float):
    times = base_r[None, :] + load[:, None] * slope
    cut = (1.0 + mu) * times.min(axis=1)
    return times > cut[:, None], cut, times.max(axis=1)


def gc_grid(base: np.ndarray, slope: float, mu: float, tolerances: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Total runtime and wait-outs of gc-seq for every s (rounds = rows of ``base``)."""
    m = base.shape[1]
    load = np.array([scheme_load(np.array([s + 1.0]), m) for s in tolerances])
    total, waits = np.zeros(len(load)), np.zeros(len(load), dtype=int)
    for r in range(base.shape[0]):
        now, cut, t_max = _round(base[r], load, slope, mu)
        wait = now.sum(axis=1) > tolerances
        total += np.where(wait, t_max, np.minimum(cut, t_max))
        waits += wait
    return total, waits


def bursty_grid(scheme: str, base: np.ndarray, jobs: int, slope: float, mu: float, B: int, W: int,
                lams: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Total runtime and wait-outs of sr-sgc or m-sgc for every λ at one (B, W)."""
    m, nl = base.shape[1], len(lams)
    sr = scheme == "sr-sgc"
    if sr:
        s = np.array([sr_sgc_tolerance(B, W, int(lam)) for lam in lams])
        load = np.array([scheme_load(np.array([x + 1.0]), m) for x in s])
        T = B
    else:
        load = np.array([scheme_load(msgc_sizes(B, W, lam), m) for lam in lams])
        T = W - 2 + B
    rounds = jobs + T
    strag = np.zeros((nl, rounds, m), dtype=bool)
    redo = np.zeros((nl, rounds, m), dtype=bool)
    exempt = np.zeros((nl, rounds, 1), dtype=bool)
    total, waits = np.zeros(nl), np.zeros(nl, dtype=int)
    for r in range(rounds):
        d = r - T  # the job due this round
        due = 0 <= d < jobs
        if sr and due:  # the redo rule: v − s of the workers that missed job d, lowest index first
            missing = redo[:, d] | strag[:, d]
            v = missing.sum(axis=1)
            redo[:, r] = missing & (np.cumsum(missing, axis=1) <= (v - s)[:, None])
        now, cut, t_max = _round(base[r], load, slope, mu)
        past = window(strag, r, W - 1)
        if sr:
            past = past & ~window(exempt, r, W - 1)
        ok = bursty_ok(past, now, B, lams)
        if due:  # safety: job d must decode by this round (the engine's SAFETY_WAIT)
            if sr:
                got = (~(redo[:, d] | strag[:, d])).sum(axis=1) + (redo[:, r] & ~now).sum(axis=1)
                ok &= got >= m - s
            else:
                ok &= _msgc_decodes(strag[:, d:r], now, m, W, B, lams)
        # SR-SGC's tail rounds without a redo give no worker a task: 0 s, nothing recorded
        idle = ~redo[:, r].any(axis=1) if sr and r >= jobs else np.zeros(nl, dtype=bool)
        wait = now.any(axis=1) & ~ok & ~idle
        strag[:, r] = now & ~(wait | idle)[:, None]
        if sr:
            exempt[:, r, 0] = ~redo[:, r].any(axis=1) & (strag[:, r].sum(axis=1) <= s)
        total += np.where(idle, 0.0, np.where(wait, t_max, np.minimum(cut, t_max)))
        waits += wait
    return total, waits


def _msgc_decodes(before: np.ndarray, now: np.ndarray, m: int, W: int, B: int, lams: np.ndarray) -> np.ndarray:
    """Whether M-SGC's due job decodes, per λ, given its rounds' stragglers ``before`` (nl, T, m) and ``now``.

    Slots 0 … W−2 carry each worker's own D1 chunks; in each of the last B
    rounds a worker redoes one missing chunk if it has any, else sends its
    result for D2 group j. The job needs every D1 chunk and m − λ workers
    in every D2 group (:meth:`~mpigc.codes.msgc.Multiplexed.plan_round`).
    """
    strag = np.concatenate([before, now[:, None, :]], axis=1)
    missing = strag[:, :W - 1].sum(axis=1)
    ok = np.ones(len(lams), dtype=bool)
    for j in range(B):
        back = ~strag[:, W - 1 + j]
        ok &= (back & (missing == 0)).sum(axis=1) >= m - lams
        missing = missing - (back & (missing > 0))
    return ok & (missing == 0).all(axis=1)


def engine_total(scheme: str, params: dict, base: np.ndarray, jobs: int, mu: float, slope: float) -> tuple[float, int]:
    """Total runtime and wait-outs of one parameter set run by the engine itself on load-0 seconds ``base``.

    The reference the vectorised grids are checked against: the same
    affine round times (``base[r] + L·slope``), the engine's own rule.
    """
    m = base.shape[1]
    keys = {"lam" if k == "lambda" else k: v for k, v in params.items()}
    code = CodeConfig(scheme=scheme, workers=m, mu=mu, **keys)
    engine = SequentialEngine(build_sequential(code, m, 0), jobs, mu)
    total, waits = 0.0, 0
    for r in range(engine.rounds):
        engine.plan(r)
        closed = engine.close(r, base[r] + engine.scheme.load * slope)
        total += closed.duration
        waits += closed.waitout > 0
    return total, waits


def bursty_params(scheme: str) -> list[tuple[int, int]]:
    """Return P3's (B, W) grid: B ∈ {1, 2}, W ∈ [B+1, 5]; SR-SGC only where B divides W − 1."""
    return [(B, W) for B in (1, 2) for W in range(B + 1, 6) if scheme != "sr-sgc" or (W - 1) % B == 0]


def tune(values: np.ndarray, jobs: int = 496, mu: float = 1.0, slope: float = 2.2, m: int = 256,
         max_s: int = 63, max_lam: int = 63) -> dict[str, Choice]:
    """Grid-search every scheme's parameters on a trace; return the best choice per scheme."""
    max_lam = min(max_lam, m - 1)
    base = trace_block(np.asarray(values, dtype=float), m, jobs + 5)
    out: dict[str, Choice] = {}
    s = np.arange(0, min(max_s, m - 1) + 1)
    total, waits = gc_grid(base[:jobs], slope, mu, s)
    grid = [({"load": int(x) + 1}, float(t)) for x, t in zip(s, total)]
    best = int(np.argmin(total))
    out["gc-seq"] = Choice("gc-seq", {"load": int(s[best]) + 1}, float(total[best]), int(waits[best]), grid)
    lams = np.arange(1, max_lam + 1)
    for scheme in ("m-sgc", "sr-sgc"):
        grid, best_c = [], None
        for B, W in bursty_params(scheme):
            total, waits = bursty_grid(scheme, base, jobs, slope, mu, B, W, lams)
            for lam, t, n in zip(lams, total, waits):
                params = {"B": B, "W": W, "lambda": int(lam)}
                grid.append((params, float(t)))
                if best_c is None or t < best_c.runtime:
                    best_c = Choice(scheme, params, float(t), int(n))
        best_c.grid = grid
        out[scheme] = best_c
    t_max = (base[:jobs] + scheme_load(np.ones(1), m) * slope).max(axis=1)
    out["uncoded"] = Choice("uncoded", {}, float(t_max.sum()), 0, [({}, float(t_max.sum()))])
    return {k: out[k] for k in SCHEMES}


def choice_overrides(trace: str, choices: dict[str, Choice], jobs: int, mu: float, slope: float,
                     m: int) -> list[str]:
    """``--set`` overrides that run every chosen scheme on the trace in the simulator."""
    entries = []
    for c in choices.values():
        keys = "".join(f", {k} = {v}" for k, v in c.params.items())
        entries.append(f'{{scheme = "{c.scheme}"{keys}}}')
    return [f"code.scheme=[{', '.join(entries)}]", f"code.workers={m}", f"code.mu={mu}", f"run.rounds={jobs}",
            'delays.model="trace"', f'delays.trace="{trace}"', f"delays.slope={slope}", "delays.wrap=true"]


def run_choices(trace: str, choices: dict[str, Choice], jobs: int, mu: float, slope: float, m: int,
                out: str | None, name: str | None = None) -> list[tuple]:
    """Simulate every chosen scheme with the sequential engine (jobs table included) into ``out``."""
    config = load_config(None, choice_overrides(trace, choices, jobs, mu, slope, m), backend="sim")
    return simulate(config, out, name, log=io.StringIO())


def format_choices(trace: str, choices: dict[str, Choice], sims: list[tuple] | None = None) -> str:
    """Aligned table of the choices (and the engine's totals when ``sims`` is given)."""
    head = ["trace", "scheme", "params", "runtime_s", "waitouts"] + (["engine_s"] if sims else [])
    rows = [head]
    for i, c in enumerate(choices.values()):
        row = [trace, c.scheme, c.label(), f"{c.runtime:.2f}", str(c.waitouts)]
        if sims:
            row.append(f"{sims[i][2]['total_s']:.2f}")
        rows.append(row)
    return format_table(rows, left=range(3))
