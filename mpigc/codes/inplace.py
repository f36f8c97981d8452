"""Weighted sums of long vectors without d-sized temporaries: one pass over memory, cache-sized blocks.

``acc += w * vec`` in numpy makes a d-vector ``w * vec``, writes it and reads
it back: at d = 10^7 that is 80 MB of fresh memory (page faults included)
and two extra passes per term. Here the product goes through a block of
:data:`BLOCK` elements that stays in cache, so each term costs one read of
``vec`` and one read-modify-write of ``acc``. Every element is computed by
the same numpy operation as the unblocked expression, so results are equal
bit for bit (a product added to a fresh zero may keep the sign of a
negative zero, which ``0.0 + x`` would clear).
"""
from __future__ import annotations

import numpy as np

#: elements per block: 256 kB of float64, well inside a core's L2 cache
BLOCK = 1 << 15


def scratch_for(out: np.ndarray) -> np.ndarray:
    """Return a block-sized scratch buffer of ``out``'s dtype."""
    return np.empty(min(BLOCK, max(out.shape[-1], 1)), dtype=out.dtype)


def scale_into(out: np.ndarray, weight: float, vec: np.ndarray) -> None:
    """``out[:] = weight * vec`` (1-D, same length), no temporary."""
    np.multiply(vec, out.dtype.type(weight), out=out)


def add_scaled(out: np.ndarray, weight: float, vec: np.ndarray, scratch: np.ndarray) -> None:
    """``out += weight * vec`` (1-D, same length) through ``scratch`` a block at a time."""
    w = out.dtype.type(weight)
    if w == 1:
        np.add(out, vec, out=out)
        return
    step = len(scratch)
    for lo in range(0, len(out), step):
        hi = min(lo + step, len(out))
        tmp = scratch[:hi - lo]
        np.multiply(vec[lo:hi], w, out=tmp)
        np.add(out[lo:hi], tmp, out=out[lo:hi])


def combine_into(out: np.ndarray, coefs: np.ndarray, parts: np.ndarray, scratch: np.ndarray, add: bool) -> None:
    """``out (+)= coefs @ parts`` with ``parts`` of shape (l, L) and ``out`` of length L, a block at a time.

    One part (l = 1) is a scaled copy; more go through ``np.matmul`` on
    column blocks, the same computation per element as the whole product.
    """
    if parts.shape[0] == 1:
        if add:
            add_scaled(out, coefs[0], parts[0], scratch)
        else:
            scale_into(out, coefs[0], parts[0])
        return
    coefs = np.asarray(coefs, dtype=out.dtype)
    step = len(scratch)
    for lo in range(0, out.shape[0], step):
        hi = min(lo + step, out.shape[0])
        if add:
            tmp = scratch[:hi - lo]
            np.matmul(coefs, parts[:, lo:hi], out=tmp)
            np.add(out[lo:hi], tmp, out=out[lo:hi])
        else:
            np.matmul(coefs, parts[:, lo:hi], out=out[lo:hi])


def step_into(out: np.ndarray, model: np.ndarray, step: float, grad: np.ndarray, scratch: np.ndarray) -> None:
    """``out[:] = model - step * grad`` a block at a time (``out`` may be ``model``)."""
    s = out.dtype.type(step)
    n = len(out)
    size = len(scratch)
    for lo in range(0, n, size):
        hi = min(lo + size, n)
        tmp = scratch[:hi - lo]
        np.multiply(grad[lo:hi], s, out=tmp)
        np.subtract(model[lo:hi], tmp, out=out[lo:hi])
