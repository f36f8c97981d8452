"""The ``[network]`` model both backends agree on: per-message latency, and rank 0's ingest link.

A message of ``B`` bytes from a worker that is ready to send it at time ``r``
arrives at rank 0

- independently (``shared_ingest = false``, the model before issue 17):
  at ``r + latency + B / bandwidth``, whatever else is in flight;
- through one shared link (``shared_ingest = true``): messages into rank 0
  are served one at a time in the order they are ready (ties: worker, then
  position). Message k arrives at
  ``a_k = max(r_k + latency, a_{k-1}) + B_k / bandwidth``: it waits until
  the link is free, then takes its bytes / bandwidth. The latency overlaps
  other messages' transfers (it is the pipeline's depth, not link time).

``bandwidth = 0`` means infinite: then both rules give ``r + latency``
bit for bit. Control traffic from rank 0 (START, STOP, INSTRUCT) is charged
per message with :meth:`Network.cost` as before; only traffic into rank 0
shares the link. Each round starts with the link free.

:func:`fit_ingest` inverts the shared rule on measurements where every
worker sends at once (``mpigc probe --network``): the k-th arrival of
messages of ``B`` bytes is at ``latency + k·B / bandwidth``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Network:
    """Latency (s per message), bandwidth (bytes/s, 0 = infinite) and whether rank 0's ingest is one link."""

    latency: float = 0.0
    bandwidth: float = 0.0
    shared_ingest: bool = False

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
        if not self.shared_ingest or self.bandwidth <= 0:
            return ready + self.cost(nbytes)
        flat = ready.reshape(ready.shape[0], -1)
        order = np.argsort(flat, axis=1, kind="stable")
        queued = np.take_along_axis(flat, order, axis=1) + self.latency
        served = np.empty_like(queued)
        service = self.transfer(nbytes)
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
        return self.latency + max(count, 0) * self.transfer(nbytes)


@dataclass(frozen=True)
class IngestFit:
    """Latency and bandwidth fitted to simultaneous sends, with the fit's quality."""

    latency: float
    bandwidth: float
    rel_residual: float  # median |measured - fitted| / measured over the points fitted
    points: int


def fit_ingest(rank: np.ndarray, nbytes: np.ndarray, seconds: np.ndarray) -> IngestFit:
    """Fit ``seconds = latency + rank · nbytes / bandwidth`` by non-negative least squares.

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
        ``bandwidth`` is ``inf`` when the bytes explain none of the time.

    Raises
    ------
    ValueError
        With fewer than two distinct ``rank · nbytes`` values.
    """
    from scipy.optimize import nnls

    x = np.asarray(rank, dtype=float) * np.asarray(nbytes, dtype=float)
    y = np.asarray(seconds, dtype=float)
    if np.unique(x).size < 2:
        raise ValueError("fit_ingest needs at least two distinct rank * bytes values")
    # relative least squares: small messages (microseconds) weigh as much as large ones (seconds)
    weight = 1.0 / np.maximum(y, 1e-9)
    design = np.column_stack([np.ones_like(x), x]) * weight[:, None]
    (latency, per_byte), _ = nnls(design, y * weight)
    fitted = latency + per_byte * x
    rel = float(np.median(np.abs(y - fitted) / np.maximum(y, 1e-12)))
    return IngestFit(float(latency), float(1.0 / per_byte) if per_byte > 0 else float("inf"), rel, int(y.size))
