"""P3's (B, W, λ)-bursty straggler model, checked incrementally (docs/protocols.md#sequential-schemes).

Pure numpy, vectorised over any leading batch axes, so the sequential engine
(batch of one) and the parameter search of ``mpigc tune`` (a batch of λ
values) run the very same rule. A history is a boolean array of straggling
(round, worker) pairs; the check asks whether adding this round's stragglers
keeps the history inside the model, as P3's simulator does:

- spatial: at most λ distinct workers straggle in the W rounds ending now;
- temporal: a worker straggling now did not straggle in rounds r−W+1 … r−B
  (so within any window of W rounds its straggling rounds lie inside one
  burst of at most B consecutive rounds).
"""
from __future__ import annotations

import numpy as np

from mpigc.errors import InputError


def window(history: np.ndarray, rnd: int, width: int) -> np.ndarray:
    """Return rounds ``rnd − width … rnd − 1`` of ``history`` (..., R, m), oldest first, False before round 0."""
    lo = rnd - width
    past = history[..., max(lo, 0):rnd, :]
    if lo < 0:
        pad = np.zeros((*history.shape[:-2], -lo, history.shape[-1]), dtype=bool)
        past = np.concatenate([pad, past], axis=-2)
    return past


def bursty_ok(past: np.ndarray, now: np.ndarray, B: int, lam: int | np.ndarray) -> np.ndarray:
    """Whether stragglers ``now`` (..., m) conform given the previous W − 1 rounds ``past`` (..., W−1, m).

    ``lam`` may be an array broadcasting against the batch axes.
    """
    spatial = (past.any(axis=-2) | now).sum(axis=-1) <= lam
    early = past[..., : max(0, past.shape[-2] + 1 - B), :]  # rounds r−W+1 … r−B
    temporal = ~(early.any(axis=-2) & now).any(axis=-1)
    return spatial & temporal


def check_bursty(B: int, W: int, lam: int, workers: int | None, prefix: str = "code") -> None:
    """Raise InputError (keyed ``prefix.B``/``W``/``lambda``) for an impossible (B, W, λ)."""
    if B < 1:
        raise InputError(f"{prefix}.B", f"must be ≥ 1, got {B}")
    if B >= W:
        raise InputError(f"{prefix}.B", f"the burst B = {B} must be shorter than the window W = {W}")
    if lam < 0:
        raise InputError(f"{prefix}.lambda", f"must be ≥ 0, got {lam}")
    if workers is not None and lam >= workers:
        raise InputError(f"{prefix}.lambda", f"λ = {lam} must be less than the {workers} workers")
