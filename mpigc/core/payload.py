"""Layout of a coded message: the packed gradient parts and the header sizes both backends count.

The MPI runtime sends these bytes; the simulator charges their cost to the
network model, so a change to the layout changes both at once.
"""
from __future__ import annotations

import numpy as np

#: float64 slots of a control message (kind, round, argument)
CONTROL_HEADER = 3
#: float64 slots of a result message's header (kind, round, position, chunk, busy, injected, tasks, failed, overrun)
RESULT_HEADER = 9
#: bytes of a result header on the wire
HEADER_BYTES = 8 * RESULT_HEADER


def pack(grad: np.ndarray, loss: float, parts: int) -> np.ndarray:
    """Lay a chunk's gradient and loss out as l parts with one extra slot each.

    Part k holds gradient coordinates k·L … (k+1)·L − 1 (L = ⌈d/l⌉, zero
    padded) and then one slot: the loss in part 0, zero elsewhere. Decoding is
    linear, so the decoded vector carries Σ_i f_i exactly; and since every
    part's slot sits at the same offset, the rounding error that decoding
    mixes between parts at the loss's position lands only in the other parts'
    (discarded) slots, never on a gradient coordinate.
    """
    d = grad.shape[0]
    length = -(-d // parts)
    flat = np.zeros(parts * length)
    flat[:d] = grad
    out = np.zeros((parts, length + 1))
    out[:, :length] = flat.reshape(parts, length)
    out[0, length] = loss
    return out.reshape(-1)


def unpack(vector: np.ndarray, dim: int, parts: int) -> tuple[np.ndarray, float]:
    """Inverse of :func:`pack` on a decoded vector: (gradient of length ``dim``, loss)."""
    rows = vector.reshape(parts, -1)
    return rows[:, :-1].reshape(-1)[:dim], float(rows[0, -1])


def packed_part_length(dim: int, parts: int) -> int:
    """Length of one part of a packed vector (a message's payload)."""
    return -(-dim // parts) + 1
