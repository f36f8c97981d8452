"""The runtime at realistic gradient sizes: ``mpigc run`` against a minimal mpi4py loop doing the same work.

The floor is this file run under ``mpiexec`` with ``--floor``: rank 0
``Isend``s the model to 8 workers, each computes the least-squares gradient
of its 2 chunks (2 rows of d features each: ``workload.samples = 16``) and
``Send``s one d-vector, rank 0 sums the first 7 with ``Waitany`` and updates
the model; no files, no bookkeeping, one receive per worker posted at all
times (a late vector of an earlier round is recognised by its tag and
dropped). ``mpigc run`` runs the same configuration (``crc``, s = 1, 8
workers, load 2, ``delays.model = "none"``, ``delays.compute = "real"``, no
``round_timeout``). BLAS is pinned to one thread in both (the
``*_NUM_THREADS`` variables of every job).

For every d and dtype the two run interleaved, ``--repeat`` times each
(floor, mpigc, floor, mpigc, ...), so other load on the machine hits both
alike; the table gives the best of the repeats of each side (wall of the
round loop per round: the floor's own timer, ``mpigc``'s ``summary_loop``),
their ratio, and rank 0's peak resident set (``VmHWM``; the floor reports
its own ``ru_maxrss``). Every ``mpigc`` run's result file is kept under
``--raw`` and one summary run per (d, dtype) goes to ``--out``.

Usage::

    python benchmarks/large_gradients.py [--sizes 1e3 1e5 1e6 1e7] [--dtypes float64 float32]
        [--rounds N ...] [--repeat 2] [--out FILE.h5] [--set KEY=VALUE ...]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

WORKERS, LOAD, SAMPLES, WAIT = 8, 2, 16, 7
END_TAG = 32767  # tags carry the round modulo this; END is the one tag no round uses
BLAS = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def default_rounds(d: int) -> int:
    """Rounds per run: fewer at larger d, so each run takes seconds, not minutes."""
    return 200 if d <= 10**3 else 60 if d <= 10**5 else 20 if d <= 10**6 else 6


# ----------------------------------------------------------------------------- the floor (under mpiexec)

def floor_chunks(d: int, w: int, dtype: np.dtype) -> list[tuple[np.ndarray, np.ndarray]]:
    """Worker w's two chunks (crc: chunks w and w+1 mod 8) of 2 rows each, Gaussian, as mpigc's are."""
    out = []
    for chunk in (w, (w + 1) % WORKERS):
        rng = np.random.default_rng([1, chunk])
        rows = SAMPLES // WORKERS
        out.append((rng.standard_normal((rows, d)).astype(dtype), rng.standard_normal(rows).astype(dtype)))
    return out


def floor_worker(comm, d: int, dtype: np.dtype) -> None:
    """Receive the model, send the gradient of both chunks, until END."""
    from mpi4py import MPI

    chunks = floor_chunks(d, comm.rank - 1, dtype)  # built before the barrier, as mpigc's prepare does
    model = np.empty(d, dtype)
    status = MPI.Status()
    comm.Barrier()
    while True:
        comm.Recv(model, source=0, tag=MPI.ANY_TAG, status=status)
        if status.Get_tag() == END_TAG:
            return
        grad = None
        for x, y in chunks:
            g = x.T @ (x @ model - y)
            grad = g if grad is None else grad.__iadd__(g)
        grad /= SAMPLES
        comm.Send(grad, dest=0, tag=status.Get_tag())


def floor_master(comm, d: int, dtype: np.dtype, rounds: int, step: float) -> dict:
    """Run ``rounds`` rounds; return the loop's wall time per round and rank 0's peak RSS."""
    from mpi4py import MPI

    model = np.zeros(d, dtype)
    acc = np.empty(d, dtype)
    bufs = [np.empty(d, dtype) for _ in range(WORKERS)]
    reqs = [comm.Irecv(bufs[w], source=w + 1, tag=MPI.ANY_TAG) for w in range(WORKERS)]
    received = [0] * WORKERS
    status = MPI.Status()
    comm.Barrier()
    start = time.perf_counter()
    for rnd in range(rounds):
        sends = [comm.Isend(model, dest=w + 1, tag=rnd % END_TAG) for w in range(WORKERS)]
        acc.fill(0)
        heard = 0
        while heard < WAIT:
            w = MPI.Request.Waitany(reqs, status)
            received[w] += 1
            if status.Get_tag() == rnd % END_TAG:
                acc += bufs[w]
                heard += 1
            reqs[w] = comm.Irecv(bufs[w], source=w + 1, tag=MPI.ANY_TAG)
        MPI.Request.Waitall(sends)  # the model buffer is updated next: its sends must be done
        model -= dtype.type(step) * acc
    wall = time.perf_counter() - start
    for w in range(WORKERS):  # the late vectors of the last round, then END
        while received[w] < rounds:
            reqs[w].Wait()
            received[w] += 1
            if received[w] < rounds:
                reqs[w] = comm.Irecv(bufs[w], source=w + 1, tag=MPI.ANY_TAG)
        if received[w] == rounds and reqs[w] != MPI.REQUEST_NULL and not reqs[w].Test():
            reqs[w].Cancel()  # the receive posted after the worker's last vector
            reqs[w].Wait()
        comm.Send(model, dest=w + 1, tag=END_TAG)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"ms_per_round": wall / rounds * 1e3, "peak_rss_mb": peak_mb,
            "model_finite": bool(np.isfinite(model).all())}


def floor_main(d: int, dtype: str, rounds: int) -> None:
    """``--floor``: one job of the minimal loop; rank 0 prints its numbers as one JSON line."""
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    kind = np.dtype(dtype)
    if comm.size != WORKERS + 1:
        raise SystemExit(f"large_gradients: the floor needs {WORKERS + 1} ranks, not {comm.size}")
    if comm.rank == 0:
        print(json.dumps(floor_master(comm, d, kind, rounds, step=0.1)), flush=True)
    else:
        floor_worker(comm, d, kind)


# ----------------------------------------------------------------------------- the driver

def job_env() -> dict[str, str]:
    """Every job's environment: ours with BLAS pinned to one thread."""
    return {**os.environ, **BLAS}


def run_floor(args, d: int, dtype: str, rounds: int) -> dict:
    """One floor job; its rank 0's JSON line."""
    cmd = [*args.mpiexec.split(), "-n", str(WORKERS + 1), sys.executable, str(Path(__file__).resolve()),
           "--floor", "--sizes", str(d), "--dtypes", dtype, "--rounds", str(rounds)]
    proc = subprocess.run(cmd, env=job_env(), capture_output=True, text=True, timeout=args.timeout)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"large_gradients: floor job failed (exit {proc.returncode}): {' '.join(cmd)}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def mpigc_sets(d: int, dtype: str, rounds: int, extra: list[str]) -> list[str]:
    """The ``--set`` overrides of the configuration the floor does."""
    sets = ['code.scheme="crc"', f"code.workers={WORKERS}", f"code.load={LOAD}", f"workload.samples={SAMPLES}",
            f"workload.features={d}", 'delays.model="none"', 'delays.compute="real"', f"run.rounds={rounds}"]
    if dtype != "float64":
        sets.append(f'workload.dtype="{dtype}"')
    return sets + list(extra)


def run_mpigc(args, d: int, dtype: str, rounds: int, out: Path) -> dict:
    """One ``mpigc run`` job watched for rank 0's peak RSS; its loop time, rounds decoded and RSS."""
    from mpi_scale import run_watching_rank0
    from mpibench import mpi_command

    from mpigc import results

    out.unlink(missing_ok=True)
    bench = argparse.Namespace(mpiexec=args.mpiexec, timeout=args.timeout, env=[f"{k}={v}" for k, v in BLAS.items()])
    _, peak = run_watching_rank0(bench, mpi_command(bench, None, WORKERS + 1, out, mpigc_sets(d, dtype, rounds,
                                                                                              args.set)))
    run = results.read_runs(out)[0]
    rounds_table = run.tables["rounds"]
    return {"ms_per_round": float(run.attrs["summary_loop"]) * 1e3, "peak_rss_mb": peak,
            "exact_share": float(np.mean(rounds_table["status"] == 0)),
            "round_timeout_s": float(run.attrs.get("round_timeout_s", float("nan"))),
            "final_loss": float(rounds_table["loss"][-1])}


def measure(args, d: int, dtype: str, rounds: int, raw: Path) -> dict:
    """Floor and mpigc interleaved ``--repeat`` times; the best of each side and every repeat."""
    floors, mine = [], []
    load = [os.getloadavg()[0]]
    for rep in range(args.repeat):
        floors.append(run_floor(args, d, dtype, rounds))
        mine.append(run_mpigc(args, d, dtype, rounds, raw / f"mpigc-d{d}-{dtype}-{rep}.h5"))
        load.append(os.getloadavg()[0])
    floor_ms = min(f["ms_per_round"] for f in floors)
    mpigc_ms = min(m["ms_per_round"] for m in mine)
    return {"d": d, "dtype": dtype, "rounds": rounds, "floor_ms": floor_ms, "mpigc_loop_ms": mpigc_ms,
            "ratio": mpigc_ms / floor_ms, "floor_ms_all": [f["ms_per_round"] for f in floors],
            "mpigc_loop_ms_all": [m["ms_per_round"] for m in mine],
            "floor_rank0_rss_mb": max(f["peak_rss_mb"] for f in floors),
            "mpigc_rank0_rss_mb": max(m["peak_rss_mb"] for m in mine),
            "mpigc_exact_share": min(m["exact_share"] for m in mine),
            "mpigc_round_timeout_s": mine[0]["round_timeout_s"], "load_1min": load}


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["1e3", "1e5", "1e6", "1e7"],
                        help="gradient lengths d (e.g. 1e6)")
    parser.add_argument("--dtypes", nargs="+", default=["float64", "float32"], choices=("float64", "float32"))
    parser.add_argument("--rounds", nargs="+", type=int, default=None,
                        help="rounds per run: one number for all sizes, or one per size (default: fewer at larger d)")
    parser.add_argument("--repeat", type=int, default=2, help="floor/mpigc pairs per (d, dtype), interleaved")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "large_gradients.h5"))
    parser.add_argument("--raw", default=None, help="directory of the mpigc result files (default: <out>-raw/)")
    parser.add_argument("--mpiexec", default="mpiexec")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per job")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="extra mpigc override (e.g. run.round_timeout=5)")
    parser.add_argument("--floor", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        args.sizes = [int(float(s)) for s in args.sizes]
    except ValueError:
        parser.error(f"--sizes: not numbers: {' '.join(args.sizes)}")
    if args.rounds is not None and len(args.rounds) not in (1, len(args.sizes)):
        parser.error("--rounds: give one number, or one per size")
    if min(args.sizes) < 1 or args.repeat < 1 or (args.rounds and min(args.rounds) < 1):
        parser.error("--sizes, --rounds and --repeat must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.floor:
        floor_main(args.sizes[0], args.dtypes[0], args.rounds[0])
        return 0
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from mpibench import Table, loadavg, mpi_versions, store

    from mpigc import results

    out = Path(args.out)
    raw = Path(args.raw) if args.raw else out.with_name(out.stem + "-raw")
    raw.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    library, mpi4py_version = mpi_versions()
    info = {"mpi_library": library, "mpi4py": mpi4py_version, "numpy": np.__version__, "cores": os.cpu_count(),
            "load_average": loadavg(), "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])}
    for key, value in info.items():
        print(f"# {key}: {value}", flush=True)
    print(f"# crc, s = 1, {WORKERS} workers, load {LOAD}, samples {SAMPLES}, delays none, compute real, BLAS 1 thread;"
          f" best of {args.repeat} interleaved floor/mpigc pairs; ms = round loop wall / rounds", flush=True)
    table = Table([("d", 9), ("dtype", 7), ("rounds", 6), ("floor_ms", 9), ("mpigc_loop_ms", 13), ("ratio", 5),
                   ("exact_%", 7), ("timeout_s", 9), ("floor_rss_mb", 12), ("rank0_rss_mb", 12), ("load_1m", 7)])
    summary = results.ResultFile(str(out))
    try:
        for i, d in enumerate(args.sizes):
            rounds = default_rounds(d) if args.rounds is None else args.rounds[min(i, len(args.rounds) - 1)]
            for dtype in args.dtypes:
                row = measure(args, d, dtype, rounds, raw)
                table.row(f"{d:.0e}", dtype, rounds, row["floor_ms"], row["mpigc_loop_ms"], row["ratio"],
                          row["mpigc_exact_share"] * 100, f"{row['mpigc_round_timeout_s']:.3g}",
                          row["floor_rank0_rss_mb"], row["mpigc_rank0_rss_mb"], f"{max(row['load_1min']):.1f}")
                store(summary, f"d{d}-{dtype}", info, {"measurement": "large_gradients", **row})
    finally:
        summary.close()
    print(f"# wrote {out} (mpigc result files under {raw})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
