"""The single-round regime on MPI: rank 0's rounds (:class:`MpiRounds`) and the workers' side.

Rank 0 decodes (:class:`~mpigc.mpi.master.Master`), ranks 1..m serve
(:class:`~mpigc.mpi.worker.Worker`); everything around the rounds is
:class:`~mpigc.core.lifecycle.RunLifecycle`'s.
"""
from __future__ import annotations

from collections.abc import Iterator

from mpi4py import MPI

from mpigc.codes import make_scheme
from mpigc.config import Config
from mpigc.core.entries import Entry, RunPlan
from mpigc.core.evaluation import eval_attrs, make_evaluator
from mpigc.core.inputs import build_delays, build_workload
from mpigc.core.lifecycle import SingleRound
from mpigc.core.tables import RoundTables
from mpigc.mpi.master import Master
from mpigc.mpi.worker import Worker


class MpiRounds(SingleRound):
    """Rank 0's rounds of one single-round entry on ``comm``.

    The summary's ``loop`` (the lifecycle's, ``Backend.timed``) is rank 0's
    wall time of the round loop per round: everything between rounds
    included (model update, held-out evaluation, STOP, reports, the write),
    the measure of a training loop's iteration; ``latency`` stops at the decode.
    """

    def __init__(self, plan: RunPlan, entry: Entry, comm: MPI.Comm) -> None:
        super().__init__(plan, entry)
        config = self.config
        workload = build_workload(config, entry.scheme.plan.chunks, check=False)
        self.comm = comm
        self.master = Master(comm, entry.scheme, entry.policy, workload, config.run.verify)
        self.master.evaluator = make_evaluator(config.run, workload)
        # builds the held-out rows before the clock starts
        self.evaluation = eval_attrs(config.run, self.master.evaluator)

    def attrs(self) -> dict:
        """Return the held-out evaluation's attributes."""
        return self.evaluation

    def prepare(self) -> None:
        """Build rank 0's data; wait for every rank's: round 0 measures the scheme, not start-up."""
        self.master.prepare()
        self.comm.Barrier()

    def batches(self) -> Iterator[RoundTables]:
        """Each round's rows (and stale traffic seen meanwhile), as the master decodes it."""
        for rnd in range(self.config.run.rounds):
            yield self.master.round(rnd)

    def finish(self) -> RoundTables:
        """End the workers' loop; the late results and reports drained until every FINAL."""
        drained: list[RoundTables] = []
        self.master.finish(drained.append)
        return drained[0]

    @staticmethod
    def serve(comm: MPI.Comm, config: Config, code) -> None:
        """Serve the entry ``code`` as a worker: build its data, then serve rounds until END."""
        m = int(code.workers)
        scheme = make_scheme(code, m, config.run.seed)
        worker = Worker(comm, scheme, build_delays(config, m), build_workload(config, scheme.plan.chunks, check=False),
                        config.delays.compute)
        worker.prepare()
        comm.Barrier()
        worker.run()
