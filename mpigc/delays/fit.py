"""Fit the ``fitted`` straggler model (and the i.i.d. shifted-exponential baseline) to traces.

A trace is a (rounds × workers) matrix of positive durations. The fit, in
three steps (docs/your-cluster.md):

1. Per-worker speed factors: a one-way random-effects analysis of the log
   durations. The population variance of the log factor is the variance of
   the workers' mean log duration minus its sampling part (within-worker
   variance / rounds), floored at 0; each worker's factor is its mean
   deviation shrunk towards 1 by the usual ratio between / (between + noise),
   so a short trace does not mistake noise for speed.
2. A two-state hidden Markov chain per worker, shared parameters, on the
   speed-normalised durations ``x``: emissions ``log(x - floor)`` normal per
   state, fitted by EM (Baum–Welch: forward–backward in log space,
   vectorised over workers; closed-form M-step).
3. The common shift ``floor`` is chosen by maximum likelihood (Jacobian
   included) over a grid of fractions of the smallest normalised value;
   0 (a plain log-normal) is on the grid.

Why no HMM library: a two-state chain with shared parameters over many short
sequences is ~40 lines of numpy here; hmmlearn (the usual choice) is in
limited maintenance, is a compiled dependency, and would still need the
speed normalisation and the shift search around it. scipy.special.logsumexp
keeps the recursions stable.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from mpigc.delays.fitted import FittedParams
from mpigc.errors import InputError

#: fractions of the smallest speed-normalised value tried as the common shift
FLOOR_GRID = (0.0, 0.5, 0.8, 0.9, 0.95, 0.98)
#: smallest state sigma (log scale): keeps a state from collapsing onto one value
MIN_SIGMA = 1e-4


@dataclass(frozen=True)
class Baseline:
    """The i.i.d. shifted exponential everyone assumes: ``shift + Exp(scale)`` (maximum likelihood)."""

    shift: float
    scale: float

    def sample(self, rng: np.random.Generator, rounds: int, workers: int) -> np.ndarray:
        """Return a (rounds, workers) matrix of independent draws."""
        return self.shift + rng.exponential(self.scale, (rounds, workers))


@dataclass(frozen=True)
class FitResult:
    """A fitted model, its baseline and how the fit went."""

    params: FittedParams
    baseline: Baseline
    log_likelihood: float
    iterations: int
    rounds: int
    workers: int
    slow_threshold: float


def check_trace(values: np.ndarray, source: str, censored: bool = False) -> np.ndarray:
    """Return ``values`` as a float matrix, or raise InputError naming what makes it unfit.

    NaN marks a censored value (cut short by a STOP): refused, or with
    ``censored`` kept and treated by the fit as missing (the chain runs through
    it, no emission is scored), so the slow values a STOP hides bias nothing else.
    """
    a = np.asarray(values, dtype=float)
    if a.ndim != 2:
        raise InputError(source, f"a trace is a rounds x workers matrix, not shape {a.shape}")
    if a.shape[0] < 2 or a.shape[1] < 2:
        raise InputError(source, f"needs at least 2 rounds and 2 workers to fit, has {a.shape[0]} x {a.shape[1]}")
    missing = np.isnan(a)
    if missing.any() and not censored:
        raise InputError(source, "has censored (empty) values; fit with --drop-censored to leave them out")
    if missing.all(axis=0).any() or missing.all(axis=1).any():
        raise InputError(source, "has a round or a worker with no value that is not censored")
    seen = a[~missing]
    if not np.all(np.isfinite(seen)) or np.any(seen <= 0):
        raise InputError(source, "has a non-positive or infinite value; durations must be > 0 seconds")
    return a


def fit_baseline(traces: list[np.ndarray]) -> Baseline:
    """Return the maximum-likelihood shifted exponential of all values pooled."""
    pooled = _observed(traces)
    shift = float(pooled.min())
    return Baseline(shift, max(float(pooled.mean()) - shift, 1e-12))


def _observed(traces: list[np.ndarray]) -> np.ndarray:
    """Return every value that is not censored, pooled."""
    pooled = np.concatenate([t.ravel() for t in traces])
    return pooled[~np.isnan(pooled)]


def _speeds(traces: list[np.ndarray], centres: list[np.ndarray]) -> tuple[list[np.ndarray], float, list[int]]:
    """Return every trace's shrunk log speed factors, the pooled population sigma and the worker counts."""
    speeds, sigmas, weights = [], [], []
    for t, c in zip(traces, centres):
        z, sigma = _speed(np.log(t) - c)
        speeds.append(z)
        sigmas.append(sigma)
        weights.append(t.shape[1])
    return speeds, float(np.sqrt(np.average(np.square(sigmas), weights=weights))), weights


def _fit_chain(normalised: list[np.ndarray], max_iter: int, tol: float):
    """Return the best (over the floor grid) EM fit on speed-normalised traces, with each value's likeliest state."""
    smallest = min(float(np.nanmin(x)) for x in normalised)
    best = None
    for fraction in FLOOR_GRID:
        floor = fraction * smallest
        logs = [np.log(x - floor).T for x in normalised]
        mu, sigma, a, ll, iterations = _em(logs, max_iter, tol)
        ll -= sum(float(np.nansum(x)) for x in logs)  # Jacobian of log(x - floor): a likelihood of x, comparable
        if best is None or ll > best[0]:
            best = (ll, floor, mu, sigma, a, iterations, logs)
    ll, floor, mu, sigma, a, iterations, logs = best
    states = [_likeliest_state(x, mu, sigma, a).T for x in logs]
    return ll, floor, mu, sigma, a, iterations, states


def _likeliest_state(x: np.ndarray, mu: np.ndarray, sigma: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Return 0/1 per (worker, round): the state of larger posterior probability."""
    with np.errstate(divide="ignore"):
        log_a = np.log(a)
        stationary = np.array([a[1, 0], a[0, 1]]) / max(a[1, 0] + a[0, 1], 1e-300)
        log_pi = np.log(np.where(stationary > 0, stationary, 1e-300))
    gamma, _, _ = _forward_backward(_log_normal_pdf(x, mu, sigma), log_a, log_pi)
    return np.argmax(gamma, axis=2)


def _speed(y: np.ndarray) -> tuple[np.ndarray, float]:
    """Return each worker's shrunk log speed factor and the population sigma, from (rounds, workers) logs."""
    seen = (~np.isnan(y)).sum(axis=0)               # values per worker (censored ones left out)
    means = np.nanmean(y, axis=0)
    deviation = means - means.mean()
    dof = max(int((seen - 1).sum()), 1)
    noise = float(np.nansum((y - means) ** 2)) / dof / float(seen.mean())
    between = max(float(deviation.var()) - noise, 0.0)
    shrink = between / (between + noise) if between + noise > 0 else 0.0
    return shrink * deviation, float(np.sqrt(between))


def _forward_backward(log_b: np.ndarray, log_a: np.ndarray, log_pi: np.ndarray):
    """Return posteriors (w, t, k), pair posteriors summed over (w, t) (k, k) and the log likelihood."""
    workers, rounds, _ = log_b.shape
    alpha = np.empty_like(log_b)
    beta = np.zeros_like(log_b)
    alpha[:, 0] = log_pi + log_b[:, 0]
    for t in range(1, rounds):
        alpha[:, t] = logsumexp(alpha[:, t - 1, :, None] + log_a, axis=1) + log_b[:, t]
    for t in range(rounds - 2, -1, -1):
        beta[:, t] = logsumexp(log_a + (log_b[:, t + 1] + beta[:, t + 1])[:, None, :], axis=2)
    total = logsumexp(alpha[:, -1], axis=1)
    gamma = np.exp(alpha + beta - total[:, None, None])
    pair = alpha[:, :-1, :, None] + log_a + (log_b[:, 1:] + beta[:, 1:])[:, :, None, :] - total[:, None, None, None]
    return gamma, np.exp(logsumexp(pair, axis=(0, 1))), float(total.sum())


def _log_normal_pdf(x: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Return log N(x; mu_k, sigma_k) per state, 0 (no evidence) where x is missing."""
    out = -0.5 * ((x[..., None] - mu) / sigma) ** 2 - np.log(sigma) - 0.5 * np.log(2 * np.pi)
    return np.where(np.isnan(out), 0.0, out)


def _em(logs: list[np.ndarray], max_iter: int, tol: float):
    """Baum–Welch for a 2-state chain with normal emissions on each (workers, rounds) matrix of logs."""
    pooled = _observed(logs)
    mu = np.quantile(pooled, [0.4, 0.95])
    sigma = np.full(2, max(float(pooled.std()) / 2, MIN_SIGMA))
    a = np.array([[0.9, 0.1], [0.5, 0.5]])
    pi = np.array([0.8, 0.2])
    previous = -np.inf
    for iteration in range(1, max_iter + 1):  # noqa: B007 - the count is returned
        weight = np.zeros(2)
        first = np.zeros(2)
        sums = np.zeros(2)
        squares = np.zeros(2)
        pairs = np.zeros((2, 2))
        ll = 0.0
        with np.errstate(divide="ignore"):
            log_a, log_pi = np.log(a), np.log(pi)
        for x in logs:
            gamma, pair, part = _forward_backward(_log_normal_pdf(x, mu, sigma), log_a, log_pi)
            ll += part
            first += gamma[:, 0].sum(axis=0)
            seen = ~np.isnan(x)
            g = gamma * seen[..., None]   # missing values move the chain but fit no emission
            weight += g.sum(axis=(0, 1))
            xs = np.where(seen, x, 0.0)[..., None]
            sums += (g * xs).sum(axis=(0, 1))
            squares += (g * xs**2).sum(axis=(0, 1))
            pairs += pair
        weight = np.maximum(weight, 1e-300)
        mu = sums / weight
        sigma = np.sqrt(np.maximum(squares / weight - mu**2, MIN_SIGMA**2))
        a = pairs / np.maximum(pairs.sum(axis=1, keepdims=True), 1e-300)
        pi = first / first.sum()
        if abs(ll - previous) <= tol * max(1.0, abs(ll)):
            break
        previous = ll
    order = np.argsort(mu)  # state 0 is the fast one
    return mu[order], sigma[order], a[np.ix_(order, order)], ll, iteration


def fit_traces(traces: list[np.ndarray], max_iter: int = 300, tol: float = 1e-9, refinements: int = 2) -> FitResult:
    """Fit the model to one or more (rounds × workers) traces (workers are distinct across traces).

    Parameters
    ----------
    traces : list of ndarray
        Positive durations, each at least 2 × 2 (:func:`check_trace`).
    max_iter, tol : int, float
        EM's iteration cap and relative log-likelihood tolerance.
    refinements : int
        Passes that re-estimate the speed factors with each value's most likely
        state's typical value taken out (0: speeds from raw log means only).
    """
    centres = [np.zeros(t.shape) for t in traces]
    for _ in range(1 + refinements):
        speeds, sigma, weights = _speeds(traces, centres)
        best = _fit_chain([t / np.exp(z) for t, z in zip(traces, speeds)], max_iter, tol)
        ll, floor, mu, sig, a, iterations, states = best
        # a worker's mean log value mixes its speed with how often it was slow: take the
        # states' typical log value out and estimate the speeds again
        centres = [np.log(floor + np.exp(mu[s])) for s in states]
    params = FittedParams(speed_sigma=sigma, p_bad=float(a[0, 1]), p_good=float(a[1, 0]), floor=float(floor),
                          fast_mu=float(mu[0]), fast_sigma=float(sig[0]), slow_mu=float(mu[1]),
                          slow_sigma=float(sig[1]))
    pooled = _observed(traces)
    return FitResult(params, fit_baseline(traces), float(ll), int(iterations), sum(t.shape[0] for t in traces),
                     sum(weights), float(np.quantile(pooled, 0.9)))
