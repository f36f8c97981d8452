"""Communication-efficient polynomial gradient code, Ye–Abbe class (docs/protocols.md#poly).

Cyclic assignment, load δ = s + l. Worker w evaluates at its point x_w the
vector polynomial

    P(x) = Σ_i Σ_k Z_i(x) v_{i,k}(x) g_i^(k),   Z_i(x) = Π_{u ∉ H_i} (x − x_u),

whose degree is ≤ m − s − 1 and whose coefficient of x^{m−s−l+k−1} is the
part sum Σ_i g_i^(k). Since Z_i vanishes at every non-holder of chunk i, a
worker only needs its own chunks. The master solves the Vandermonde system
on the points of the first m − s workers it heard from and keeps the top l
coefficients. This is the numerically unstable class that P1 improves on;
the scheme reports the error it really makes instead of hiding it.
"""
from __future__ import annotations

import numpy as np

from mpigc.codes.base import Combination, Decoder, Plan, coef_error, least_squares_combination
from mpigc.codes.classic import OneShot
from mpigc.codes.registry import register
from mpigc.errors import InputError
from mpigc.seeding import stream

POINT_SETS = ("chebyshev", "integers")
COND_SAMPLES = 200
#: the most workers poly plans for. Planning costs O(m^3) per sampled condition number (at m = 200 about
#: two minutes), and past m ~ 40 the decode's condition number exceeds what float64 can decode exactly
#: (mpigc.core.policy.cond_limit): every round would be reported unsound (status 3) anyway.
MAX_WORKERS = 100
CACHE_SIZE = 10_000


def evaluation_points(name: str, m: int) -> np.ndarray:
    """Return the m distinct evaluation points ``code.points = name``.

    Parameters
    ----------
    name : str
        ``chebyshev`` (nodes of the first kind on [−1, 1]) or ``integers`` (1..m).
    m : int
        Number of workers.

    Returns
    -------
    numpy.ndarray
        x_0..x_{m−1}, shape (m,).
    """
    if name == "chebyshev":
        return np.cos((2 * np.arange(m) + 1) * np.pi / (2 * m))
    if name == "integers":
        return np.arange(1, m + 1, dtype=float)
    raise InputError("code.points", f"unknown point set {name!r} (known: {', '.join(POINT_SETS)})")


def top_coefficients(roots: np.ndarray, count: int) -> np.ndarray:
    """Leading ``count`` coefficients of the monic Π (x − r), highest degree first.

    Computed from the elementary symmetric polynomials e_0..e_{count−1}
    alone, so the lower coefficients (which overflow for large integer
    roots) are never formed.
    """
    e = np.zeros(count)
    e[0] = 1.0
    for r in roots:
        e[1:] = e[1:] + r * e[:-1]
    return e * (-1.0) ** np.arange(count)


def part_polynomials(roots: np.ndarray, parts: int) -> np.ndarray:
    """Coefficients of v_{i,1..l} for the chunk whose Z_i has ``roots``.

    Returns C (l × l), ``C[j, k]`` = coefficient of x^j in v_{i,k+1}: the
    solution of the unit upper-triangular system T C = I with
    ``T[a, j] = z_{D+a−j}`` (z the coefficients of Z_i, D its degree; zero
    for j < a since Z_i has degree D), so
    that Z_i v_{i,k+1} has e_{k+1} as its top l coefficients.
    """
    z = top_coefficients(roots, parts)  # z[j] = coefficient of x^{D−j}
    a, j = np.meshgrid(np.arange(parts), np.arange(parts), indexing="ij")
    t = np.where(j >= a, z[np.clip(j - a, 0, parts - 1)], 0.0)
    return np.linalg.solve(t, np.eye(parts))


@register("poly")
class PolynomialCode(OneShot):
    """Ye–Abbe polynomial code: one d/l message per worker, any m − s of them decode."""

    allowed_assignments = ("cyclic",)
    config_keys = ("code.load", "code.parts", "code.points", "code.decode", "code.deadline")

    def __init__(self, plan: Plan, code, seed: int) -> None:
        super().__init__(plan, code, seed)
        m, n, l = plan.workers, plan.chunks, plan.parts
        load = int(plan.loads.max())
        if load > m:
            raise InputError("code.load", f"{load} exceeds code.workers = {m}")
        if l > load:
            raise InputError("code.parts", f"l = {l} exceeds the load {load}: poly needs s = load − l ≥ 0")
        if n != m or not np.all(plan.loads == load):
            raise InputError("code.assignment", "poly needs the cyclic assignment (N = m, equal loads)")
        self.points_name = str(code.points)
        self.points = evaluation_points(self.points_name, m)
        self.tolerance = load - l
        self.needed = m - self.tolerance  # messages for an exact decode = number of coefficients of P
        with np.errstate(over="ignore"):
            top_power = np.max(np.abs(self.points)) ** (self.needed - 1)   # cheap: before the size limit
        if not np.isfinite(top_power):
            raise InputError("code.points", f"{self.points_name} points overflow float64 at m = {m}; use chebyshev")
        if m > MAX_WORKERS:
            raise InputError("code.workers", f"poly plans for at most {MAX_WORKERS} workers, got {m}: planning "
                             "takes minutes there and its decode is not numerically sound past m ~ 40 in float64")
        self.matrix = self._encoding_matrix()
        self._cache: dict[tuple[int, ...], tuple[np.ndarray, float, float]] = {}
        self._worst: float | None = None
        self.info.update({
            "tolerance s": self.tolerance,
            "points": self.points_name,
            "decode system": f"Vandermonde on m - s = {self.needed} points",
            # same key as crc's and `mpigc plan`'s: here it is cond(V) for sets F of m - s workers
            "code condition (worst sampled F)": self.worst_condition(),
        })

    # -- planning ----------------------------------------------------------
    def _encoding_matrix(self) -> np.ndarray:
        """Message rows, shape (m, N l): ``[w, i l + k] = Z_i(x_w) v_{i,k}(x_w)``."""
        plan, x, l = self.plan, self.points, self.plan.parts
        matrix = np.zeros((plan.workers, plan.chunks * l))
        powers = x[:, None] ** np.arange(l)  # (m, l)
        with np.errstate(over="ignore", invalid="ignore"):
            for i in range(plan.chunks):
                holders = plan.assignment[i]
                c = part_polynomials(x[~holders], l)
                for w in np.flatnonzero(holders):
                    z_w = np.prod(x[w] - x[~holders])
                    matrix[w, i * l : (i + 1) * l] = z_w * (powers[w] @ c)
            top_power = np.max(np.abs(self.points)) ** (self.needed - 1)
        if not np.all(np.isfinite(matrix)) or not np.isfinite(top_power):
            raise InputError("code.points", f"{self.points_name} points overflow float64 at m = {plan.workers}; "
                             "use chebyshev")
        return matrix

    def vandermonde(self, workers: list[int] | np.ndarray) -> np.ndarray:
        """V[r, t] = x_{workers[r]}^t for t = 0..m−s−1."""
        return np.vander(self.points[np.asarray(workers, dtype=int)], self.needed, increasing=True)

    def worst_condition(self, samples: int = COND_SAMPLES) -> float:
        """Worst condition number of V over sampled sets of m − s workers (cached)."""
        if samples == COND_SAMPLES and self._worst is not None:
            return self._worst
        m = self.plan.workers
        rng = stream(self.seed, "code", 4)
        worst = 1.0
        for _ in range(samples):
            alive = np.sort(rng.choice(m, self.needed, replace=False))
            worst = max(worst, float(np.linalg.cond(self.vandermonde(alive))))
        if samples == COND_SAMPLES:
            self._worst = worst
        return worst

    def solve(self, workers: tuple[int, ...]) -> tuple[np.ndarray, float, float]:
        """Decode weights (top l rows of V⁻¹), cond(V) and coef_error for m − s workers."""
        hit = self._cache.get(workers)
        if hit is None:
            l, n = self.plan.parts, self.needed
            v = self.vandermonde(list(workers))
            weights = np.linalg.solve(v, np.eye(n))[n - l :]
            target = np.zeros((l, self.plan.chunks * l))
            for k in range(l):
                target[k, k::l] = 1.0
            err = coef_error(weights @ self.matrix[list(workers)], target)
            hit = (weights, float(np.linalg.cond(v)), err)
            if len(self._cache) < CACHE_SIZE:
                self._cache[workers] = hit
        return hit

    # -- worker side -------------------------------------------------------
    def message_row(self, worker: int, position: int) -> np.ndarray:
        """Return the worker's evaluation of the encoding polynomial over its chunks' parts."""
        return self.matrix[worker]

    # -- master side -------------------------------------------------------
    def decode_times(self, arrival: np.ndarray) -> np.ndarray:
        """Return the arrival at which enough evaluations exist to interpolate."""
        return np.sort(self.finish_arrivals(arrival), axis=1)[:, self.needed - 1]

    def decoder(self) -> Decoder:
        """Interpolate from the first messages that determine the polynomial."""
        return _PolyDecoder(self)


class _PolyDecoder(Decoder):
    scheme: PolynomialCode

    def _distinct(self) -> list[tuple[int, int]]:
        return list(dict.fromkeys(self.keys))

    @property
    def exact(self) -> bool:
        return len(self._distinct()) >= self.scheme.needed

    def combination(self) -> Combination:
        s = self.scheme
        keys = self._distinct()
        if len(keys) < s.needed:
            if not keys:
                return Combination([], np.zeros((s.plan.parts, 0)), False, 1.0)
            rows = s.matrix[[w for w, _ in keys]]
            comb = least_squares_combination(rows, keys, s.plan.chunks, s.plan.parts)
            comb.exact = False  # fewer than m − s evaluations never pin down the top coefficients
            return comb
        chosen = sorted(keys[: s.needed])
        weights, cond, err = s.solve(tuple(w for w, _ in chosen))
        return Combination(chosen, weights, True, err, cond)
