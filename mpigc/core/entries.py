"""Scheme entries of a config, each planned and checked before anything runs, and the run's plan."""
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

#: the regimes a run can be in (one sequential entry makes the whole config sequential: docs/protocols.md)
SINGLE_ROUND, SEQUENTIAL = "single-round", "sequential"


@dataclass
class Entry:
    """One scheme entry, planned and checked before anything runs.

    ``models`` is the number of models a sequential entry trains together
    (0 in the single-round regime).
    """

    label: str
    code: object
    scheme: Scheme
    policy: RoundPolicy
    models: int = 0


@dataclass
class RunPlan:
    """Everything a run decides before its first round: built once (by the preflight) and handed on.

    Attributes
    ----------
    config : Config
        The resolved config.
    workers : int
        m, the number of workers.
    delays : DelayModel
        The straggler model, checked to cover the rounds.
    regime : str
        :data:`SINGLE_ROUND` or :data:`SEQUENTIAL` (the only place a config's regime is decided).
    entries : list of Entry
        Every scheme entry, planned, in config order.
    name : str or None
        ``--name``: the run name of a config with a single entry.
    """

    config: Config
    workers: int
    delays: DelayModel
    regime: str
    entries: list[Entry]
    name: str | None = None

    def label(self, entry: Entry) -> str:
        """Return the run name ``entry`` is stored under (before ``-2``, ``-3``... for taken names)."""
        return self.name if (self.name and len(self.entries) == 1) else entry.label


def plan_run(config: Config, name: str | None = None) -> RunPlan:
    """Plan every entry of ``config`` (raising InputError on bad combinations); no output, no MPI."""
    m = workers_of(config)
    delays = build_delays(config, m)
    delays.check_rounds(config.run.rounds)
    regime = regime_of(config)
    return RunPlan(config, m, delays, regime, plan_entries(config, m, delays, regime), name)


def regime_of(config: Config) -> str:
    """Return the config's regime, :data:`SEQUENTIAL` or :data:`SINGLE_ROUND`: the one place it is decided."""
    return SEQUENTIAL if is_sequential(config) else SINGLE_ROUND


def plan_entries(config: Config, workers: int, delays: DelayModel | None = None,
                 regime: str | None = None, *, assumed_bandwidth: float = 0.0,
                 chunk_seconds: float = 0.0) -> list[Entry]:
    """Build every entry's scheme (raising InputError on bad combinations) before any output exists.

    The automatic round timeout counts a round's messages over ``[network]``
    (its bandwidth, else ``assumed_bandwidth``; 0: messages are free, as in
    the simulator without a network) and δ × ``chunk_seconds`` of real compute.
    """
    delays = delays or build_delays(config, workers)
    if (regime or regime_of(config)) == SEQUENTIAL:
        return [Entry(e.label, e.code, e.scheme, RoundPolicy(False, np.inf, np.inf), e.models)
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
