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
#: bytes of a float64 result header on the wire (float32 runs: half)
HEADER_BYTES = 8 * RESULT_HEADER


def pack(grad: np.ndarray, loss: float, parts: int) -> np.ndarray:
    """Lay a chunk's gradient and loss out as l parts with one extra slot each.

    Part k holds gradient coordinates k·L … (k+1)·L − 1 (L = ⌈d/l⌉, zero
    padded) and then one slot: the loss in part 0, zero elsewhere. Decoding is
    linear, so the decoded vector carries Σ_i f_i exactly; and since every
    part's slot sits at the same offset, the rounding error that decoding
    mixes between parts at the loss's position lands only in the other parts'
    (discarded) slots, never on a gradient coordinate. The vector has the
    gradient's dtype.
    """
    out = np.empty(parts * packed_part_length(grad.shape[0], parts), dtype=grad.dtype)
    pack_into(out, grad, loss, parts)
    return out


def pack_into(out: np.ndarray, grad: np.ndarray, loss: float, parts: int) -> None:
    """:func:`pack` written into ``out`` (length l·(⌈d/l⌉ + 1)): one copy of the gradient, no temporaries."""
    d = grad.shape[0]
    rows = out.reshape(parts, -1)
    length = rows.shape[1] - 1
    if parts == 1:
        rows[0, :d] = grad
    else:
        full, rest = divmod(d, length)
        rows[:full, :length] = grad[:full * length].reshape(full, length)
        if rest:
            rows[full, :rest] = grad[full * length:]
        if full < parts:  # zero padding up to l·L coordinates
            rows[full, rest:length] = 0.0
            rows[full + 1:, :length] = 0.0
    write_loss(out, loss, parts)


def write_loss(packed: np.ndarray, loss: float, parts: int) -> None:
    """Set the loss slot of a packed vector (and zero the other parts' slots): the rest of :func:`pack_into`."""
    rows = packed.reshape(parts, -1)
    rows[:, -1] = 0.0
    rows[0, -1] = loss


def gradient_view(packed: np.ndarray, dim: int, parts: int) -> np.ndarray | None:
    """Return the gradient inside a packed vector as a writable view when contiguous (l = 1), else None."""
    return packed[:dim] if parts == 1 else None


def unpack(vector: np.ndarray, dim: int, parts: int) -> tuple[np.ndarray, float]:
    """Inverse of :func:`pack` on a decoded vector: (gradient of length ``dim``, loss)."""
    rows = vector.reshape(parts, -1)
    return rows[:, :-1].reshape(-1)[:dim], float(rows[0, -1])


def packed_part_length(dim: int, parts: int) -> int:
    """Length of one part of a packed vector (a message's payload)."""
    return -(-dim // parts) + 1
