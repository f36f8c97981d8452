"""``mpigc simulate``: every scheme entry of a config on one realisation, into HDF5.

The simulator backend: :func:`simulate` drives the run through
:class:`~mpigc.core.lifecycle.RunLifecycle`; :class:`SimRounds` supplies the
single-round regime's rounds (:mod:`mpigc.sim.sgc` the sequential one's).
"""
from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import TextIO

import numpy as np

from mpigc import interrupts
from mpigc.config import Config
from mpigc.core.entries import SEQUENTIAL, SINGLE_ROUND, Entry, RunPlan, plan_run
from mpigc.core.evaluation import eval_attrs, make_evaluator
from mpigc.core.inputs import build_workload, workload_dim
from mpigc.core.lifecycle import Backend, Rounds, RunLifecycle, SingleRound, Summary
from mpigc.core.network import Network
from mpigc.core.payload import packed_part_length
from mpigc.core.provenance import plain
from mpigc.core.tables import RoundTables
from mpigc.sim import Simulator
from mpigc.sim.sgc import SimSequential


def network_of(config: Config) -> Network:
    """Return the ``[network]`` model of ``config``."""
    net = config.network
    return Network(net.latency, net.bandwidth, net.shared_ingest, net.gap)


class SimRounds(SingleRound):
    """Single-round rounds in virtual time: :class:`~mpigc.sim.Simulator` batches."""

    def __init__(self, plan: RunPlan, entry: Entry) -> None:
        super().__init__(plan, entry)
        config = self.config
        workload = build_workload(config, entry.scheme.plan.chunks) if config.run.verify else None
        itemsize = np.dtype(config.workload.dtype).itemsize
        part_bytes = itemsize * packed_part_length(workload_dim(config), entry.scheme.plan.parts)  # as MPI sends
        self.evaluator = make_evaluator(config.run, workload)
        self.sim = Simulator(entry.scheme, plan.delays, entry.policy, network=network_of(config), workload=workload,
                             detail=config.run.detail, vector_bytes=part_bytes, evaluator=self.evaluator,
                             itemsize=itemsize)

    def attrs(self) -> dict:
        """Return the scheme's plan and the held-out evaluation's attributes."""
        return {"plan": {k: plain(v) for k, v in self.entry.scheme.describe().items()},
                "round_timeout_s": self.entry.policy.timeout, **eval_attrs(self.config.run, self.evaluator)}

    def batches(self) -> Iterator[RoundTables]:
        """Yield the simulator's batches of rounds."""
        return self.sim.batches(self.config.run.rounds)


#: the simulator's rounds of each regime
REGIMES: dict[str, type[Rounds]] = {SINGLE_ROUND: SimRounds, SEQUENTIAL: SimSequential}


def simulate(config: Config, out: str | None, name: str | None = None, log: TextIO = sys.stderr,
             plan: RunPlan | None = None) -> list[Summary]:
    """Run every entry; write runs to ``out``; return summary rows (name, scheme, stats).

    ``plan`` is the preflight's (:func:`mpigc.core.preflight.check_run`); without
    it the config is planned here. On :class:`~mpigc.interrupts.Interrupted`
    the running run is marked and every run written is merged before the
    exception goes on, its ``note`` saying where the runs are.
    """
    plan = plan or plan_run(config, name)
    life = RunLifecycle(plan, Backend("sim", "simulating"), out, log)
    life.open()
    try:
        for entry in plan.entries:
            life.run(REGIMES[plan.regime](plan, entry))
        life.close()
    except interrupts.Interrupted as stop:
        stop.note = life.interrupted(stop)
        raise
    except BaseException:
        life.close()  # what was written is kept (after a failed write: the file as it was)
        raise
    return life.summaries
