"""The ``[network]`` model both backends agree on: per-message latency, and rank 0's ingest link.

A message of ``B`` bytes from a worker that is ready to send it at time ``r``
arrives at rank 0

- independently (``shared_ingest = false``, the model before issue 17):
  at ``r + latency + B / bandwidth``, whatever else is in flight;
- through one shared link (``shared_ingest = true``): messages into rank 0
  are served one at a time in the order they are ready (ties: worker, then
  position). Message k arrives at
  ``a_k = max(r_k + latency, a_{k-1}) + gap + B_k / bandwidth``: it waits
  until the link is free, then holds it for ``gap`` (LogGP's per-message
  gap: rank 0 matching and copying it, the sender waking up, on a
  crowded node) plus its bytes / bandwidth. The latency overlaps other
  messages' transfers (it is the pipeline's depth, not link time).

With ``gap = 0`` and ``bandwidth = 0`` (infinite) both rules give
``r + latency`` bit for bit, and the independent rule ignores ``gap``
(the model before issue 17 had none). Control traffic from rank 0 (START, STOP, INSTRUCT) is charged
per message with :meth:`Network.cost` as before; only traffic into rank 0
shares the link. Each round starts with the link free.

:func:`fit_ingest` inverts the shared rule on measurements where every
worker sends at once (``mpigc probe --network``): the k-th arrival of
messages of ``B`` bytes is at ``latency + k·(gap + B / bandwidth)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Network:
    """Latency (s per message), bandwidth (bytes/s, 0 = infinite), rank 0's ingest: one link or one per worker.

    ``gap`` (s) is how long the shared link is held per message beyond its bytes.
    """

    latency: float = 0.0
    bandwidth: float = 0.0
    shared_ingest: bool = False
    gap: float = 0.0

    def cost(self, nbytes: float) -> float:
        """Seconds one message of ``nbytes`` bytes takes on its own: latency + bytes / bandwidth."""
        return self.latency + self.transfer(nbytes)

    def transfer(self, nbytes: float) -> float:
        """Seconds the link is busy with ``nbytes`` bytes (0 with infinite bandwidth)."""
        return nbytes / self.bandwidth if self.bandwidth > 0 else 0.0

    def arrivals(self, ready: np.ndarray, nbytes: float) -> np.ndarray:
        """When messages of ``nbytes`` bytes, ready at ``ready``, reach rank 0.

        Parameters
        ----------
        ready
            Shape (R, ...): per round (axis 0), the time each message is
            ready to leave its worker; ``inf`` for a message never sent.
            The remaining axes are flattened in C order (worker, then
            position), which breaks ties between equal ready times.
        nbytes
            Bytes of every message (header and payload).

        Returns
        -------
        numpy.ndarray
            Arrival times, the shape of ``ready`` (``inf`` where ready is).
        """
        if not self.shared_ingest or (self.bandwidth <= 0 and self.gap <= 0):
            return ready + self.cost(nbytes)
        flat = ready.reshape(ready.shape[0], -1)
        order = np.argsort(flat, axis=1, kind="stable")
        queued = np.take_along_axis(flat, order, axis=1) + self.latency
        served = np.empty_like(queued)
        service = self.gap + self.transfer(nbytes)
        free = np.full(flat.shape[0], -np.inf)
        for k in range(flat.shape[1]):  # few messages per round; vectorised over the rounds
            free = np.maximum(queued[:, k], free) + service
            served[:, k] = free
        out = np.empty_like(flat)
        np.put_along_axis(out, order, served, axis=1)
        return out.reshape(ready.shape)

    def burst(self, count: int, nbytes: float) -> float:
        """When the last of ``count`` messages of ``nbytes`` bytes, all ready at 0, reaches rank 0.

        Independent links: one message's :meth:`cost`, whatever ``count``.
        """
        if not self.shared_ingest:
            return self.cost(nbytes)
        return self.latency + max(count, 0) * (self.gap + self.transfer(nbytes))


@dataclass(frozen=True)
class IngestFit:
    """Latency, per-message gap and bandwidth fitted to simultaneous sends, with the fit's quality."""

    latency: float
    gap: float
    bandwidth: float
    rel_residual: float  # median |measured - fitted| / measured over the points fitted
    points: int

    def seconds(self, rank: np.ndarray, nbytes: np.ndarray) -> np.ndarray:
        """Fitted arrival of the ``rank``-th message of ``nbytes`` bytes."""
        per_byte = 1.0 / self.bandwidth if self.bandwidth > 0 else 0.0
        return self.latency + np.asarray(rank) * (self.gap + np.asarray(nbytes) * per_byte)


def fit_ingest(rank: np.ndarray, nbytes: np.ndarray, seconds: np.ndarray) -> IngestFit:
    """Fit ``seconds = latency + rank · (gap + nbytes / bandwidth)`` by non-negative least squares.

    Relative residuals are minimised, so microsecond arrivals of small
    messages weigh as much as the seconds of large ones.

    Parameters
    ----------
    rank
        1-based order of each arrival within its burst (k-th message heard).
    nbytes
        Bytes of each message.
    seconds
        Arrival time of each message after the burst started.

    Returns
    -------
    IngestFit
        ``bandwidth`` is 0 (infinite) when the bytes explain none of the time.

    Raises
    ------
    ValueError
        With fewer than two message sizes (nothing separates latency from bandwidth).

    Notes
    -----
    With one sender (every ``rank`` is 1) the gap cannot be told from the
    latency: it is fitted as 0.
    """
    from scipy.optimize import nnls

    k = np.asarray(rank, dtype=float)
    b = np.asarray(nbytes, dtype=float)
    y = np.asarray(seconds, dtype=float)
    if np.unique(b).size < 2:
        raise ValueError("fit_ingest needs at least two message sizes")
    weight = 1.0 / np.maximum(y, 1e-9)
    columns = [np.ones_like(k), k, k * b] if np.unique(k).size > 1 else [np.ones_like(k), k * 0, k * b]
    (latency, gap, per_byte), _ = nnls(np.column_stack(columns) * weight[:, None], y * weight)
    fit = IngestFit(float(latency), float(gap), float(1.0 / per_byte) if per_byte > 0 else 0.0, 0.0, int(y.size))
    rel = float(np.median(np.abs(y - fit.seconds(k, b)) / np.maximum(y, 1e-12)))
    return IngestFit(fit.latency, fit.gap, fit.bandwidth, rel, fit.points)
