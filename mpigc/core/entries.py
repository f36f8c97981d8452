"""Scheme entries of a config, each planned and checked before anything runs."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mpigc.codes import Scheme, make_scheme
from mpigc.codes.sgc import is_sequential
from mpigc.config import Config
from mpigc.core.inputs import build_delays, workload_dim
from mpigc.core.payload import CONTROL_HEADER, RESULT_HEADER, packed_part_length
from mpigc.core.policy import RoundPolicy, round_message_seconds
from mpigc.core.sgc_engine import plan_sequential
from mpigc.delays import DelayModel


@dataclass
class Entry:
    """One scheme entry, planned and checked before anything runs."""

    label: str
    code: object
    scheme: Scheme
    policy: RoundPolicy


def plan_entries(config: Config, workers: int, delays: DelayModel | None = None, *,
                 assumed_bandwidth: float = 0.0, chunk_seconds: float = 0.0) -> list[Entry]:
    """Build every entry's scheme (raising InputError on bad combinations) before any output exists.

    The automatic round timeout counts a round's messages over ``[network]``
    (its bandwidth, else ``assumed_bandwidth``; 0: messages are free, as in
    the simulator without a network) and δ × ``chunk_seconds`` of real compute.
    """
    delays = delays or build_delays(config, workers)
    if is_sequential(config):  # one sequential entry makes the whole config sequential (docs/protocols.md)
        return [Entry(e.label, e.code, e.scheme, RoundPolicy(False, np.inf, np.inf))
                for e in plan_sequential(config, workers, delays)]
    entries = []
    dim = workload_dim(config) if config.run.round_timeout is None else 0
    for code in config.codes:
        scheme = make_scheme(code, workers, config.run.seed)
        messages = message_seconds(config, scheme, dim, assumed_bandwidth) if dim else 0.0
        policy = RoundPolicy.for_scheme(code, config.run, delays, scheme, chunk_seconds=chunk_seconds,
                                        message_seconds=messages)
        entries.append(Entry(code.name or code.scheme, code, scheme, policy))
    return entries


def message_seconds(config: Config, scheme: Scheme, dim: int, assumed_bandwidth: float = 0.0) -> float:
    """Seconds of one round's START and result traffic over ``[network]`` (or ``assumed_bandwidth``)."""
    itemsize = np.dtype(config.workload.dtype).itemsize
    vector = packed_part_length(dim, scheme.plan.parts) if scheme.carries_vectors else 0
    bandwidth = config.network.bandwidth or assumed_bandwidth
    return round_message_seconds(scheme, itemsize * (RESULT_HEADER + vector), itemsize * (CONTROL_HEADER + dim),
                                 config.network.latency, bandwidth)


def workers_of(config: Config) -> int:
    """Return the number of workers m (resolved by the config loader)."""
    return int(config.codes[0].workers)
