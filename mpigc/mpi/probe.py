"""``mpigc probe --network``: measure rank 0's ingest at the job's world size, print the ``[network]`` table.

Every burst is a round without compute: rank 0 sends each worker a small
START, exactly as a round begins, and every worker answers at once with one
result message of the size being probed, built and sent as the runtime
sends results (:func:`~mpigc.mpi.protocol.result`, :class:`Outbox`), while
rank 0 receives through the runtime's own :class:`Inbox` and poll loop. The
k-th message heard after the first START left is at time ``t_k``; the
shared-ingest rule of :mod:`mpigc.core.network` says
``t_k = latency + k · (gap + bytes / bandwidth)``, which
:func:`~mpigc.core.network.fit_ingest` fits over every burst and size (the
median per (size, k) first, so one descheduled burst does not move it).

Sizes: the header alone, then payloads up to one message of the configured
d at l = 1 (``packed_part_length(d, 1)`` values), geometrically spaced, in
the config's ``workload.dtype`` (float32 messages carry half the bytes).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass

import numpy as np
from mpi4py import MPI

from mpigc.config import load_config
from mpigc.core.inputs import workload_dim
from mpigc.core.network import IngestFit, fit_ingest
from mpigc.core.payload import CONTROL_HEADER, RESULT_HEADER, packed_part_length
from mpigc.errors import InputError
from mpigc.mpi.launch import install_abort_handler
from mpigc.mpi.mailbox import ControlInbox, Inbox, Outbox
from mpigc.mpi.protocol import POLL_SLEEP, TAG_CONTROL, TAG_RESULT, Kind, control, mpi_type, result

#: distinct message sizes probed (the header alone is one of them)
SIZES = 6
#: a burst that has not completed by then is a failure (a worker died or a link is stuck)
BURST_TIMEOUT = 120.0


@dataclass(frozen=True)
class Burst:
    """One burst: payload length (values), bytes per message, each arrival's time after the first START (s)."""

    length: int
    nbytes: int
    seconds: np.ndarray


def payload_lengths(dim: int, count: int = SIZES) -> list[int]:
    """Payload lengths probed: 0 (header only) and geometrically up to one l = 1 message of ``dim``."""
    top = packed_part_length(dim, 1)
    grid = np.unique(np.round(np.geomspace(1, top, max(count - 1, 1))).astype(int))
    return [0, *(int(n) for n in grid)]


def probe_ingest(comm: MPI.Comm, dim: int, bursts: int, dtype: str = "float64") -> list[Burst] | None:
    """Run the bursts on every rank of ``comm``; rank 0 returns them, the workers None.

    Parameters
    ----------
    comm
        The job's communicator: rank 0 receives, ranks 1.. send.
    dim
        Gradient length d of the config: the largest message is one l = 1 result of d values.
    bursts
        Bursts per size (the median over them is fitted).
    dtype
        ``workload.dtype`` of the runs modelled: the type of every value sent.
    """
    lengths = payload_lengths(dim)
    if comm.rank == 0:
        return _receive(comm, lengths, bursts, np.dtype(dtype))
    _send(comm, lengths, bursts, np.dtype(dtype))
    return None


def _receive(comm: MPI.Comm, lengths: list[int], bursts: int, dtype: np.dtype) -> list[Burst]:
    workers = comm.size - 1
    inbox = Inbox(comm, workers, RESULT_HEADER + max(lengths), dtype=dtype)
    out = []
    go = control(Kind.START, 0, dtype=dtype)
    for trial, length in enumerate(np.repeat(lengths, bursts)):
        comm.Barrier()  # the previous burst's receives are all done on every rank
        start = MPI.Wtime()
        sends = [comm.Isend([go, mpi_type(dtype)], dest=w + 1, tag=TAG_CONTROL) for w in range(workers)]
        seconds: list[float] = []
        while len(seconds) < workers:
            got = inbox.poll()
            now = MPI.Wtime()
            if not got:
                if now - start > BURST_TIMEOUT:
                    raise RuntimeError(f"probe: burst {trial} heard {len(seconds)} of {workers} workers "
                                       f"in {BURST_TIMEOUT:.0f} s")
                time.sleep(POLL_SLEEP)
                continue
            for w, buf, count in got:
                if count != RESULT_HEADER + length:
                    raise RuntimeError(f"probe: worker {w} sent {count} values, expected {RESULT_HEADER + length}")
                seconds.append(now - start)
                inbox.release(w, buf)
        MPI.Request.Waitall(sends)
        out.append(Burst(int(length), dtype.itemsize * (RESULT_HEADER + int(length)), np.sort(np.array(seconds))))
    comm.Barrier()
    inbox.drain(lambda w, buf, count: inbox.release(w, buf))  # every worker's FINAL
    return out


def _send(comm: MPI.Comm, lengths: list[int], bursts: int, dtype: np.dtype) -> None:
    outbox = Outbox(comm)
    control_inbox = ControlInbox(comm, CONTROL_HEADER, outbox, dtype=dtype)
    for trial, length in enumerate(np.repeat(lengths, bursts)):
        vector = np.full(int(length), float(comm.rank), dtype=dtype)
        # built before the burst: no compute on its clock
        buf = result(Kind.RESULT, trial, 0, 0, vector=vector, dtype=dtype)
        comm.Barrier()
        control_inbox.receive(block=True)
        outbox.send(buf, 0, TAG_RESULT)
        outbox.drain()
    comm.Barrier()
    comm.Send([result(Kind.FINAL, -1, dtype=dtype), mpi_type(dtype)], dest=0, tag=TAG_RESULT)


def fit_bursts(bursts: list[Burst]) -> IngestFit:
    """Fit latency, gap and bandwidth to the median arrival time of each (size, k)."""
    rank, nbytes, seconds = [], [], []
    for size, mid in medians(bursts).items():
        rank.extend(range(1, mid.size + 1))
        nbytes.extend([size] * mid.size)
        seconds.extend(mid)
    return fit_ingest(np.array(rank), np.array(nbytes), np.array(seconds))


def medians(bursts: list[Burst]) -> dict[int, np.ndarray]:
    """Bytes per message -> the median over its bursts of the k-th arrival, k = 1..workers."""
    runs: dict[int, list[np.ndarray]] = {}
    for burst in bursts:
        runs.setdefault(burst.nbytes, []).append(burst.seconds)
    return {size: np.median(np.vstack(times), axis=0) for size, times in runs.items()}


def report(bursts: list[Burst], fit: IngestFit, dim: int, world: int, dtype: str, log=sys.stderr) -> None:
    """Print the measured medians and the fit's quality to ``log`` (the TOML goes to stdout)."""
    workers = world - 1
    print(f"# probe --network: world size {world} ({workers} workers sending at once), d = {dim} {dtype}, "
          f"{len(bursts)} bursts", file=log)
    print("# bytes/message    first (ms)    last (ms)   last, fitted (ms)", file=log)
    for nbytes, mid in medians(bursts).items():
        fitted = float(fit.seconds(workers, nbytes))
        print(f"# {nbytes:>14d} {mid[0] * 1e3:>13.3f} {mid[-1] * 1e3:>12.3f} {fitted * 1e3:>19.3f}", file=log)
    bandwidth = f"{fit.bandwidth / 1e9:.3f} GB/s" if fit.bandwidth > 0 else "infinite"
    print(f"# fit: latency {fit.latency * 1e6:.1f} us, gap {fit.gap * 1e6:.1f} us, bandwidth {bandwidth} shared by "
          f"{workers} workers; median |relative residual| {fit.rel_residual:.1%} over {fit.points} points",
          file=log)


def network_toml(fit: IngestFit, dim: int, world: int, dtype: str, library: str) -> str:
    """Return the ``[network]`` table to use, how it was measured in comments (it loads as a config)."""
    return (f"# mpigc probe --network: world size {world} ({world - 1} workers sending at once), messages up to\n"
            f"# d = {dim} {dtype} values (l = 1); median |relative residual| of the fit {fit.rel_residual:.1%}; "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n# {library}\n"
            f"[network]\nlatency = {fit.latency!r}\nbandwidth = {fit.bandwidth!r}\ngap = {fit.gap!r}\n"
            "shared_ingest = true\n")


def _checked(comm: MPI.Comm, args: argparse.Namespace) -> tuple[int, int, str] | None:
    """Rank 0 checks the world, config and output; every rank learns (d, bursts, dtype), or None (exit 2)."""
    verdict = None
    if comm.rank == 0:
        try:
            if comm.size < 2:
                raise InputError("probe --network", "needs at least 2 ranks (rank 0 and a worker): "
                                 "mpiexec -n N python -m mpigc probe --network")
            if args.rounds < 1:
                raise InputError("--rounds", f"bursts per size must be >= 1, got {args.rounds}")
            config = load_config(args.config, args.overrides, backend="sim")
            if args.out:
                folder = os.path.dirname(os.path.abspath(args.out))
                if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
                    raise InputError("--out", f"cannot write {args.out}: {folder} is not a writable directory")
            verdict = (workload_dim(config), args.rounds, config.workload.dtype)
        except InputError as error:
            print(f"mpigc: error: {error}", file=sys.stderr, flush=True)
    return comm.bcast(verdict, root=0)


def main(args: argparse.Namespace, comm: MPI.Comm | None = None) -> int:
    """``mpigc probe --network`` on every rank; rank 0 prints (and with ``--out`` writes) the table."""
    world = comm if comm is not None else MPI.COMM_WORLD
    install_abort_handler(world)
    checked = _checked(world, args)
    if checked is None:
        return 2
    dim, bursts, dtype = checked
    measured = probe_ingest(world, dim, bursts, dtype)
    if world.rank != 0:
        return 0
    fit = fit_bursts(measured)
    report(measured, fit, dim, world.size, dtype)
    library = next((line.strip() for line in MPI.Get_library_version().replace("\0", "").splitlines()
                    if line.strip()), "unknown")
    text = network_toml(fit, dim, world.size, dtype, library)
    print(text, end="", flush=True)
    if args.out:
        tmp = f"{args.out}.tmp{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, args.out)  # never a half-written table
        print(f"# wrote {args.out}", file=sys.stderr, flush=True)
    return 0
