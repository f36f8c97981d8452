"""Discrete-event simulator: the same schemes as the MPI runtime, on a virtual clock.

Per batch of rounds the straggler model gives every (round, worker, position)
duration at once; finish times are cumulative sums, message arrival times
add the network model, and the scheme's vectorised ``decode_times`` gives
when each round can decode exactly. Only rounds that need more than a time
(an approximate decode, verification, or per-message detail) run a decoder.
A scheme whose plan changes per round (``bcc``) is asked for the batch's
decode times with their rounds and decodes each round with
``scheme.for_round(rnd)`` (:mod:`mpigc.codes.base`).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from mpigc.codes import Scheme, combine
from mpigc.core.evaluation import NO_EVAL
from mpigc.core.gradients import chunk_gradient
from mpigc.core.metrics import relative_error
from mpigc.core.network import Network
from mpigc.core.payload import RESULT_HEADER, pack, packed_part_length, unpack
from mpigc.core.policy import NONFINITE, UNDECODABLE, RoundPolicy, Soundness, finite, status_of
from mpigc.core.tables import RoundTables
from mpigc.delays import DelayModel
from mpigc.results import EventRow, RoundRow, new_rows

BATCH = 1000


class Simulator:
    """Runs one scheme for ``rounds`` rounds on the realisation of ``delays``."""

    def __init__(self, scheme: Scheme, delays: DelayModel, policy: RoundPolicy, *, network: Network,
                 workload=None, detail: str = "rounds", vector_bytes: int = 0, evaluator=None,
                 itemsize: int = 8) -> None:
        self.scheme = scheme
        self.delays = delays
        self.policy = policy
        self.network = network
        self.workload = workload
        self.detail = detail
        self.vector_bytes = vector_bytes
        self.header_bytes = itemsize * RESULT_HEADER  # the MPI runtime's header, in the run's dtype (workload.dtype)
        self.message_bytes = vector_bytes + self.header_bytes if scheme.carries_vectors else self.header_bytes
        # request transport: instructions (chunk, l weights) down, then one vector up per instructed worker
        self.instruction_cost = network.cost(self.header_bytes
                                             + itemsize * (1 + scheme.plan.parts) * scheme.plan.max_load)
        self.model = workload.initial_model() if workload is not None else None
        self.evaluator = evaluator  # mpigc.core.evaluation: held-out metrics after the update, on no clock
        # what "exact" may mean numerically, in the run's dtype (workload.dtype) whether or not it computes
        self.soundness = Soundness(np.float32 if itemsize == 4 else np.float64)
        self.send_mask = scheme.send_mask()

    def arrivals(self, rounds: range) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Finish times (R, m, P), message arrivals (R, m, P) and failures (R, m)."""
        plan = self.scheme.plan
        dur, failed = self.delays.block(rounds, plan.max_load, 1.0 / plan.chunks)
        finish = np.cumsum(dur, axis=2)
        beyond = np.arange(plan.max_load)[None, :] >= plan.loads[:, None]
        finish[:, beyond] = np.inf
        silent = np.where(failed[:, :, None] | ~self.send_mask[None], np.inf, 0.0)
        arrival = self.network.arrivals(finish + silent, self.message_bytes)
        return finish, arrival, failed

    def second_phase(self, answers: int | np.ndarray) -> float | np.ndarray:
        """Request transport: seconds from the decision to the last of ``answers`` answers (0 otherwise)."""
        if not self.scheme.two_phase:
            return 0.0
        return self.instruction_cost + self.network.burst(answers, self.vector_bytes + self.header_bytes)

    def batches(self, rounds: int) -> Iterator[RoundTables]:
        """Simulate ``rounds`` rounds; yield their rows, :data:`BATCH` rounds at a time."""
        for start in range(0, rounds, BATCH):
            yield self._batch(range(start, min(rounds, start + BATCH)))

    def run(self, rounds: int, emit: Callable[[RoundTables], None],
            progress: Callable[[int], None] | None = None) -> None:
        """Simulate ``rounds`` rounds, passing each batch's rows to ``emit``."""
        done = 0
        for batch in self.batches(rounds):
            emit(batch)
            done += len(batch.rounds)
            if progress is not None:
                progress(done)

    def _batch(self, batch: range) -> RoundTables:
        finish, arrival, failed = self.arrivals(batch)
        exact_at = self.scheme.round_decode_times(arrival, batch)  # a per-round plan uses each round's own
        stop = self.policy.stop_times(self.scheme, arrival, exact_at)  # exact decode, cutoff or wait_for
        exact = exact_at <= stop
        out = RoundTables()
        fast = self._fast_rows(batch, arrival, stop, exact)
        for j, rnd in enumerate(batch):
            if fast is not None and exact[j]:
                out.rounds.append(fast[j])
            else:
                self._round(rnd, float(stop[j]), bool(exact[j]), finish[j], arrival[j], failed[j], out)
        out.rounds.sort(key=lambda row: row[0])
        return out

    def _fast_rows(self, batch: range, arrival: np.ndarray, stop: np.ndarray, exact: np.ndarray) -> list | None:
        """Rows of exactly decoded rounds without running a decoder, where nothing else is needed."""
        stats = getattr(self.scheme, "exact_stats", None)
        if stats is None or self.scheme.two_phase or self.workload is not None or self.detail != "rounds" \
                or not exact.any():
            return None
        err, cond = np.zeros(len(batch)), np.full(len(batch), np.nan)
        err[exact], cond[exact] = stats(arrival[exact])
        heard = arrival <= stop[:, None, None]
        messages = heard.sum(axis=(1, 2))
        positions = np.arange(1, arrival.shape[2] + 1)
        chunks_done = (heard * positions).max(axis=2).sum(axis=1)
        latency = stop + self.second_phase(0)  # never two-phase here
        status = self.soundness.judge_exact(cond)   # exact on paper; unsound if ill-conditioned
        return [RoundRow(round=rnd, latency=latency[j], status=status[j], messages=messages[j],
                         chunks_done=chunks_done[j], coef_error=err[j], grad_error=np.nan, loss=np.nan, waitout=0,
                         level=-1, cond=cond[j])
                for j, rnd in enumerate(batch)]

    def _round(self, rnd: int, t_stop: float, exact: bool, finish, arrival, failed, out: RoundTables) -> None:
        scheme = self.scheme.for_round(rnd)  # the round's plan: the scheme itself unless it changes per round
        w_idx, p_idx = np.nonzero(arrival <= t_stop)
        order = np.argsort(arrival[w_idx, p_idx], kind="stable")
        decoder = scheme.decoder()
        for k in order:
            decoder.add(int(w_idx[k]), int(p_idx[k]))
        comb = decoder.combination()
        if exact != comb.exact:
            raise AssertionError(f"round {rnd}: decode_times and the decoder disagree ({exact} vs {comb.exact})")
        status = status_of(comb)
        grad_error, loss, estimate, sound = self._verify(decoder, comb)
        status = self.soundness.judge(status, comb.cond, grad_error, sound, rnd)
        if estimate is not None and status not in (UNDECODABLE, NONFINITE):
            self.model = self.workload.update(self.model, estimate)
        eval_loss, eval_accuracy = self.evaluator.fields(rnd, self.model) if self.evaluator is not None else NO_EVAL
        done = np.where(failed, 0, np.sum(finish <= t_stop, axis=1))  # a silent worker did nothing (as on MPI)
        heard = np.zeros(scheme.plan.workers, dtype=int)
        np.maximum.at(heard, w_idx, p_idx + 1)
        answers = len(comb.keys) if scheme.two_phase else 0
        out.rounds.append(RoundRow(
            round=rnd, latency=t_stop + self.second_phase(answers), status=status, messages=len(w_idx) + answers,
            chunks_done=int(heard.sum()), coef_error=comb.coef_error, grad_error=grad_error, loss=loss, waitout=0,
            level=comb.level, cond=comb.cond, eval_loss=eval_loss, eval_accuracy=eval_accuracy))
        if self.detail in ("workers", "full"):
            busy = np.where(failed, 0.0, np.minimum(np.where(np.isfinite(finish), finish, 0.0).max(axis=1), t_stop))
            rows = new_rows("workers", scheme.plan.workers)  # column by column: one row per worker
            rows["round"], rows["worker"], rows["busy"], rows["injected"] = rnd, np.arange(rows.size), busy, busy
            rows["tasks_done"], rows["failed"], rows["overrun"] = done, failed, 0.0
            out.workers.append(rows)
        if self.detail == "full":
            used = comb.used
            for k in order:
                w, p = int(w_idx[k]), int(p_idx[k])
                chunk = int(scheme.plan.orders[w][p]) if len(scheme.sends_after(w)) > 1 else -1
                out.events.append(EventRow(round=rnd, job=-1, worker=w, task=p, chunk=chunk,
                                           t_arrive=float(arrival[w, p]), nbytes=self.message_bytes, stale=False,
                                           used=(w, p) in used))

    def _verify(self, decoder, comb) -> tuple[float, float, np.ndarray | None, bool]:
        """With a workload: encode real messages as the MPI workers do, decode, compare.

        Returns the gradient error, the loss, the estimate (None without a
        workload) and whether everything computed is finite.
        """
        if self.workload is None:
            return float("nan"), float("nan"), None, True
        wl, scheme = self.workload, decoder.scheme  # the round's plan (Scheme.for_round)
        parts = scheme.plan.parts
        grads, truth, loss = {}, np.zeros(wl.dim), 0.0
        for chunk in range(scheme.plan.chunks):
            g, f = chunk_gradient(wl, self.model, chunk)  # a plug-in's failure named
            grads[chunk] = pack(g, f, parts)
            truth += g
            loss += f
        if scheme.two_phase:
            orders = decoder.instructions()
            vectors = {(w, -1): scheme.answer(orders[w], grads) for w, _ in comb.keys}
        else:
            vectors = {k: scheme.encode(k[0], k[1], grads) for k in comb.keys}
        estimate, _ = unpack(combine(comb, vectors, parts * packed_part_length(wl.dim, parts)), wl.dim, parts)
        return relative_error(estimate, truth), loss, estimate, finite(estimate, truth, loss)
