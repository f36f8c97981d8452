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
from mpigc.core.entries import Entry, RunPlan, message_seconds
from mpigc.core.evaluation import eval_attrs, make_evaluator
from mpigc.core.inputs import build_delays, build_workload
from mpigc.core.lifecycle import SingleRound
from mpigc.core.policy import ASSUMED_BANDWIDTH, RoundPolicy
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
        # one number for the job: the slowest worker's median chunk, timed while all prepared at once
        chunk_seconds = comm.allreduce(0.0, op=MPI.MAX)
        policy, self.timeout_info = round_policy(config, entry.code, plan.delays, entry.scheme, workload.dim,
                                                 chunk_seconds)
        self.step = workload.step
        self.master = Master(comm, entry.scheme, policy, workload, config.run.verify)
        self.master.evaluator = make_evaluator(config.run, workload)
        # builds the held-out rows before the clock starts
        self.evaluation = eval_attrs(config.run, self.master.evaluator)

    def attrs(self) -> dict:
        """Return the held-out evaluation's attributes, how the timeout was set, and the step."""
        return {**self.evaluation, **self.timeout_info, "step": self.step}

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
        real = config.delays.compute == "real"
        comm.allreduce(worker.chunk_seconds if real else 0.0, op=MPI.MAX)  # rank 0's automatic timeout
        comm.Barrier()
        worker.run()


def round_policy(config: Config, code, delays, scheme, dim: int, chunk_seconds: float) -> tuple[RoundPolicy, dict]:
    """Return the entry's round policy on MPI and the attributes that say how its timeout was set.

    An automatic timeout (:func:`~mpigc.core.policy.auto_timeout`) counts
    the measured compute per chunk (``chunk_seconds``, 0 unless
    ``compute = "real"``) and the round's messages over ``[network]``'s
    bandwidth, or :data:`~mpigc.core.policy.ASSUMED_BANDWIDTH` when none is set.
    """
    messages = message_seconds(config, scheme, dim, ASSUMED_BANDWIDTH)
    policy = RoundPolicy.for_scheme(code, config.run, delays, scheme, chunk_seconds=chunk_seconds,
                                    message_seconds=messages)
    auto = config.run.round_timeout is None
    info = {"round_timeout_s": policy.timeout, "round_timeout_auto": auto,
            "chunk_compute_s": chunk_seconds, "round_message_s": messages if auto else float("nan"),
            "message_bandwidth": config.network.bandwidth or ASSUMED_BANDWIDTH}
    return policy, info
