"""``fitted`` stragglers: a generative model of per-round, per-worker durations fitted to traces.

The model (fitted by :mod:`mpigc.delays.fit`, described in docs/your-cluster.md):

- every worker w has a persistent speed factor ``s_w = exp(speed_sigma · z_w)``,
  z_w standard normal, drawn once per run: worker w's factor is the w-th draw
  of ``stream(seed, "speed")``, so it does not depend on how many workers the
  run has and the model extends to any m;
- every worker carries a two-state (fast/slow) Markov chain across rounds,
  started from its stationary law, with P(fast → slow) = ``p_bad`` and
  P(slow → fast) = ``p_good`` (the same parameters as ``gilbert-elliott``);
- in round r a worker's value is ``s_w · (floor + exp(N(mu, sigma)))`` with
  (mu, sigma) = ``fast_mu, fast_sigma`` or ``slow_mu, slow_sigma`` by state:
  a shifted log-normal per state, the shift common to both.

Round r's chain transitions are the first m uniforms of
``stream(seed, "delays", r)`` and its log-normal draws the next m normals, so
round r's values are a function of (seed, r) only. The values are in the
fitted trace's unit (seconds); the simulator uses them exactly as ``trace``
replays a CSV of them (value / row median × ``chunk_time``, or P3's affine
model under ``delays.slope``): simulating under ``fitted`` and replaying the
trace ``mpigc trace sample`` writes with the same seed give the same durations.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mpigc.delays.models import MODELS, GilbertElliott
from mpigc.delays.replay import ValueReplay
from mpigc.errors import InputError
from mpigc.seeding import stream

#: the [delays] keys of the fitted model, in the order MODEL.toml writes them
FITTED_KEYS = ("speed_sigma", "p_bad", "p_good", "floor", "fast_mu", "fast_sigma", "slow_mu", "slow_sigma")


@dataclass(frozen=True)
class FittedParams:
    """Parameters of the fitted straggler model (see the module docstring)."""

    speed_sigma: float
    p_bad: float
    p_good: float
    floor: float
    fast_mu: float
    fast_sigma: float
    slow_mu: float
    slow_sigma: float

    @classmethod
    def from_config(cls, cfg: Any) -> FittedParams:
        """Return the parameters held by a ``[delays]`` table (a DelaysConfig or a mapping)."""
        get = cfg.get if isinstance(cfg, dict) else (lambda k: getattr(cfg, k))
        return cls(**{k: float(get(k)) for k in FITTED_KEYS})

    def as_dict(self) -> dict[str, float]:
        """Return the parameters by key name."""
        return {k: float(getattr(self, k)) for k in FITTED_KEYS}

    @property
    def p_slow(self) -> float:
        """Stationary probability of the slow state."""
        total = self.p_bad + self.p_good
        return self.p_bad / total if total > 0 else 0.0


class FittedValues:
    """Round-by-round values of the fitted model for m workers, from ``seed`` only."""

    def __init__(self, params: FittedParams, seed: int, workers: int) -> None:
        self.params = params
        self.seed = int(seed)
        self.workers = int(workers)
        self.speed = np.exp(params.speed_sigma * stream(self.seed, "speed").standard_normal(self.workers))
        self.chain = GilbertElliott(params.p_bad, params.p_good, self.seed, self.workers, start=params.p_slow)
        self._mu = np.array([params.fast_mu, params.slow_mu])
        self._sigma = np.array([params.fast_sigma, params.slow_sigma])

    def values(self, rnd: int) -> np.ndarray:
        """Return round ``rnd``'s value of every worker, shape (m,), in the trace's unit."""
        slow = self.chain.bad(rnd).astype(int)
        rng = stream(self.seed, "delays", rnd)
        rng.random(self.workers)  # the chain's transition uniforms: the first m draws of the round
        noise = rng.standard_normal(self.workers)
        return self.speed * (self.params.floor + np.exp(self._mu[slow] + self._sigma[slow] * noise))

    def trace(self, rounds: int) -> np.ndarray:
        """Return rounds 0..rounds-1 as a (rounds, m) matrix (what ``mpigc trace sample`` writes)."""
        return np.stack([self.values(r) for r in range(int(rounds))]) if rounds else np.empty((0, self.workers))


@MODELS.register("fitted")
class Fitted(ValueReplay):
    """A straggler model fitted to traces by ``mpigc trace fit`` (speed factors, fast/slow chain, log-normals)."""

    config_keys = tuple(f"delays.{k}" for k in FITTED_KEYS) + ("delays.slope",)

    def __init__(self, cfg: Any, seed: int, workers: int, reader: Any = None) -> None:
        super().__init__(cfg, seed, workers, reader)
        params = FittedParams.from_config(cfg)
        if params.fast_sigma <= 0 or params.slow_sigma <= 0:
            raise InputError("delays.fast_sigma", "the fitted model's sigmas must be > 0")
        self.generator = FittedValues(params, seed, workers)
        slope = getattr(cfg, "slope", None)
        if isinstance(slope, str):
            raise InputError("delays.slope", 'a fitted model takes seconds per unit load, not "fit"')
        self.slope = None if slope is None else float(slope)

    def seconds(self, rnd: int) -> np.ndarray:
        """Return round ``rnd``'s values (the model's load-0 seconds), shape (m,)."""
        return self.generator.values(rnd)

    def ratios(self, rnd: int) -> np.ndarray:
        """Return round ``rnd``'s values over their median (as trace replay of a sampled trace)."""
        values = self.generator.values(rnd)
        return values / np.median(values)


__all__ = ["FITTED_KEYS", "Fitted", "FittedParams", "FittedValues"]
