"""Round engine of the sequential schemes, shared by the simulator and the MPI runtime.

docs/protocols.md#sequential-schemes: jobs t = 0..J−1 run over J + T_seq rounds back to back. In
every round the master notes t_min, the first worker's return; at
(1+μ)·t_min every worker still out is a straggler, unless recording them
would break the scheme's straggler model: then the master waits for all (a
*wait-out*, ``waitout = 1``, nothing recorded). A round lasts
min((1+μ)·t_min, t_max), or t_max on a wait-out. Stragglers' results are
discarded. Jobs decode the first round their results suffice (by round
t + T_seq at the latest).

Design choices (documented in docs/protocols.md#the-sequential-round-rule):

- **Safety wait-out** (``waitout = 2``): if the stragglers conform but the
  job due this round could then not decode, the master waits for all too,
  so a job is never silently lost. Under a conforming history this never
  happens (tests check it); on real traces it is counted apart.
- **Regime**: a config is sequential when any entry is a sequential scheme;
  ``uncoded`` then waits for every worker every round (``waitout = 0``).
- **Load**: every round charges the scheme's full load, idle slots included
  (jobs outside 0..J−1), except a round in which no worker has any task
  (SR-SGC's tail rounds, at or after job J, without a redo): it costs 0 s
  and records nothing, no straggler and no wait-out (:meth:`SequentialEngine.idle`).
  Both as P3's simulator does, for every scheme (it was cross-checked to
  1e-11 s on the Lambda traces); a round without work costs nothing in the
  paper too.
- **Failures** (``delays.failures``, ``fail_count``) are rejected: a silent
  worker would make a wait-out endless.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mpigc.codes.sgc import Decode, SequentialScheme, build_sequential
from mpigc.core.inputs import build_delays
from mpigc.delays import DelayModel
from mpigc.errors import InputError

NO_WAIT, MODEL_WAIT, SAFETY_WAIT = 0, 1, 2


@dataclass
class SeqEntry:
    """One scheme entry of a sequential config, checked before anything runs."""

    label: str
    code: object
    scheme: SequentialScheme
    models: int


@dataclass
class Closed:
    """Outcome of one round: stragglers, wait-out flag, jobs decoded and jobs lost."""

    round: int
    strag: np.ndarray
    waitout: int
    duration: float = float("nan")
    decodes: list[Decode] = field(default_factory=list)
    lost: list[int] = field(default_factory=list)
    idle: bool = False  # no worker had a task: nothing sent, 0 s


def plan_sequential(config, workers: int, delays: DelayModel | None = None) -> list[SeqEntry]:
    """Build and check every entry of a sequential config; raise InputError on bad input."""
    d = config.delays
    if d.failures > 0 or d.fail_count > 0:
        key = "delays.failures" if d.failures > 0 else "delays.fail_count"
        raise InputError(key, "silent workers are not supported by sequential schemes (a wait-out would never end)")
    delays = delays or build_delays(config, workers)
    entries = []
    for code in config.codes:
        scheme = build_sequential(code, workers, config.run.seed)
        models = config.workload.models or scheme.T + 1
        if models < scheme.T + 1:
            raise InputError("workload.models", f"{code.scheme} has T_seq = {scheme.T}, so it needs at least "
                                                f"{scheme.T + 1} models trained together, got {models}")
        delays.check_rounds(config.run.rounds + scheme.T)
        entries.append(SeqEntry(code.name or code.scheme, code, scheme, int(models)))
    return entries


def round_times(delays: DelayModel, rnd: int, scheme: SequentialScheme) -> np.ndarray:
    """Return every worker's time to finish all its mini-tasks of round ``rnd``, shape (m,).

    Trace with ``slope``: P3's affine model, load-0 value + L·slope at the
    scheme's normalised load L. Otherwise the sum over slots of the slot's
    modelled duration (position q of the delay model) times its size in
    chunks of 1/m of the data.
    """
    if delays.slope is not None:
        return delays.affine_round_time(rnd, scheme.load)
    dur = delays.durations(rnd, scheme.slots, 1.0 / scheme.m)
    return dur @ scheme.sizes


class SequentialEngine:
    """The (1+μ)·t_min rule, wait-outs and job bookkeeping for one scheme and J jobs."""

    def __init__(self, scheme: SequentialScheme, jobs: int, mu: float) -> None:
        self.scheme = scheme
        self.jobs = int(jobs)
        self.mu = float(mu)
        self.state = scheme.new_state(self.jobs)
        self.rounds = self.jobs + scheme.T
        self.done = np.full(self.jobs, -1, dtype=np.int64)  # round decoded; -1 pending, -2 lost

    def plan(self, r: int) -> tuple[np.ndarray, np.ndarray]:
        """Plan round r; return (jobs, kinds), each (m, slots), ``job = −1`` for an idle slot."""
        self.scheme.plan_round(self.state, r)
        return self.state.jobs[r], self.state.kinds[r]

    def idle(self, r: int) -> bool:
        """Whether planned round r gives no worker any task (only past job J): it costs 0 s, records nothing."""
        return r >= self.jobs and not bool((self.state.jobs[r] >= 0).any())

    def skip(self, r: int) -> Closed:
        """Close an :meth:`idle` round: no straggler, no wait-out, 0 s (jobs due may still decode)."""
        out = self.commit(r, np.zeros(self.scheme.m, dtype=bool), NO_WAIT)
        out.duration, out.idle = 0.0, True
        return out

    def cutoff(self, t_min: float) -> float:
        """Seconds after the round start at which unreturned workers straggle."""
        return (1.0 + self.mu) * t_min

    def verdict(self, r: int, strag: np.ndarray) -> int:
        """Whether stragglers ``strag`` may be recorded in round r: 0 yes, else the wait-out kind."""
        if not strag.any() or self.scheme.waits_for_all:  # uncoded: callers wait for every worker anyway
            return NO_WAIT
        if not self.scheme.conforms(self.state, r, strag):
            return MODEL_WAIT
        due = r - self.scheme.T
        if 0 <= due < self.jobs and self.done[due] < 0:
            self.state.strag[r] = strag
            ok = self.scheme.decode(self.state, due, r, solve=False) is not None
            self.state.strag[r] = False
            if not ok:
                return SAFETY_WAIT
        return NO_WAIT

    def commit(self, r: int, strag: np.ndarray, waitout: int) -> Closed:
        """Record round r's stragglers (none on a wait-out) and decode every job that now can."""
        recorded = np.zeros(self.scheme.m, dtype=bool) if waitout else np.asarray(strag, dtype=bool)
        self.state.strag[r] = recorded
        out = Closed(r, recorded, waitout)
        for t in range(max(0, r - self.scheme.T), min(r, self.jobs - 1) + 1):
            if self.done[t] == -1:
                dec = self.scheme.decode(self.state, t, r)
                if dec is not None:
                    self.done[t] = r
                    out.decodes.append(dec)
        due = r - self.scheme.T
        if 0 <= due < self.jobs and self.done[due] == -1:
            self.done[due] = -2
            out.lost.append(due)
        return out

    def close(self, r: int, times: np.ndarray) -> Closed:
        """Virtual time: apply the round rule to completion times ``times`` (m,) and commit."""
        if self.idle(r):
            return self.skip(r)
        t_max = float(times.max())
        if self.scheme.waits_for_all:
            out = self.commit(r, np.zeros(self.scheme.m, dtype=bool), NO_WAIT)
            out.duration = t_max
            return out
        cut = self.cutoff(float(times.min()))
        strag = times > cut
        waitout = self.verdict(r, strag)
        out = self.commit(r, strag, waitout)
        out.duration = t_max if waitout else min(cut, t_max)
        return out

    def model_of(self, job: int, models: int) -> int:
        """Model trained by job ``job``: job mod K."""
        return job % models
