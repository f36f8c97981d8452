"""Scheme entries of a config, each planned and checked before anything runs."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mpigc.codes import Scheme, make_scheme
from mpigc.codes.sgc import is_sequential
from mpigc.config import Config
from mpigc.core.inputs import build_delays
from mpigc.core.policy import RoundPolicy
from mpigc.core.sgc_engine import plan_sequential
from mpigc.delays import DelayModel


@dataclass
class Entry:
    """One scheme entry, planned and checked before anything runs."""

    label: str
    code: object
    scheme: Scheme
    policy: RoundPolicy


def plan_entries(config: Config, workers: int, delays: DelayModel | None = None) -> list[Entry]:
    """Build every entry's scheme (raising InputError on bad combinations) before any output exists."""
    delays = delays or build_delays(config, workers)
    if is_sequential(config):  # one sequential entry makes the whole config sequential (docs/protocols.md)
        return [Entry(e.label, e.code, e.scheme, RoundPolicy(False, np.inf, np.inf))
                for e in plan_sequential(config, workers, delays)]
    entries = []
    for code in config.codes:
        scheme = make_scheme(code, workers, config.run.seed)
        policy = RoundPolicy.for_scheme(code, config.run, delays, scheme)
        entries.append(Entry(code.name or code.scheme, code, scheme, policy))
    return entries


def workers_of(config: Config) -> int:
    """Return the number of workers m (resolved by the config loader)."""
    return int(config.codes[0].workers)
