"""The config's tables as frozen dataclasses, and every key: type, range, choices, help (docs/config.md)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from mpigc._toml import Key as _Key
from mpigc.codes.assignments import ASSIGNMENTS
from mpigc.codes.ordering import ORDERINGS
from mpigc.codes.registry import SCHEMES
from mpigc.delays.models import MODELS as DELAY_MODELS
from mpigc.registry import Registry
from mpigc.workloads.base import WORKLOADS

BACKENDS = ("sim", "mpi")


@dataclass(frozen=True)
class RunConfig:
    """``[run]``: rounds, seeding, verification and output cadence."""

    rounds: int = 100
    seed: int = 0
    verify: bool = False
    round_timeout: float | None = None
    flush_every: int | None = None
    flush_seconds: float = 1.0
    detail: str | None = None
    eval_every: int = 0
    target_loss: float | None = None


@dataclass(frozen=True)
class CodeConfig:
    """One scheme entry: the ``[code]`` table with the entry's overrides applied."""

    scheme: str = "partial"
    name: str | None = None
    workers: int | None = None
    chunks: int | None = None
    load: int = 2
    parts: int = 1
    assignment: str | None = None
    ordering: str = "natural"
    decode: str = "exact"
    deadline: float | None = None
    transport: str = "stream"
    use_partial: bool = True
    rescale: bool = False
    points: str = "chebyshev"
    ladder: tuple[int, ...] = ()
    B: int = 1
    W: int = 2
    lam: int = 1
    mu: float = 1.0
    wait_for: int | None = None
    p: float | None = None
    batches: int | None = None


@dataclass(frozen=True)
class WorkloadConfig:
    """``[workload]``: model and data."""

    model: str = "least-squares"
    samples: int = 2000
    features: int = 100
    hidden: int = 16
    dataset: str = "synthetic"
    step: float | None = None
    dtype: str = "float64"
    models: int | None = None
    noise: float = 0.1


@dataclass(frozen=True)
class DelaysConfig:
    """``[delays]``: the straggler model and failures."""

    model: str = "shifted-exponential"
    chunk_time: float = 0.01
    failures: float = 0.0
    fail_count: int = 0
    compute: str = "emulated"
    shift: float = 1.0
    scale: float = 1.0
    per: str = "chunk"
    slow: tuple[int, ...] = ()
    factor: float = 2.0
    alpha: float = 2.0
    p: float = 0.1
    p_bad: float = 0.1
    p_good: float = 0.5
    B: int = 1
    W: int = 2
    lam: int = 1
    violate: float = 0.0
    trace: str | None = None
    slope: float | str | None = None
    wrap: bool = True
    speed_sigma: float = 0.0
    floor: float = 0.0
    fast_mu: float = 0.0
    fast_sigma: float = 0.1
    slow_mu: float = 1.0
    slow_sigma: float = 0.1


@dataclass(frozen=True)
class NetworkConfig:
    """``[network]``: simulated links (simulator only; ``mpigc probe --network`` measures them)."""

    latency: float = 0.0
    bandwidth: float = 0.0
    shared_ingest: bool = False
    gap: float = 0.0


@dataclass(frozen=True)
class Config:
    """A fully resolved configuration: one :class:`CodeConfig` per scheme entry."""

    run: RunConfig
    codes: tuple[CodeConfig, ...]
    workload: WorkloadConfig
    delays: DelaysConfig
    network: NetworkConfig
    backend: str


_PROB = dict(lo=0.0, hi=1.0)
_KEYS: dict[str, tuple[type, tuple[_Key, ...]]] = {
    "run": (RunConfig, (
        _Key("rounds", "int", "rounds to run (jobs for sequential schemes)", lo=1),
        _Key("seed", "int", "root seed of every random stream (below 2^64)", lo=0),
        _Key("verify", "bool", "compute the true gradient each round and record grad_error"),
        _Key("round_timeout", "float", "seconds before a round ends undecoded (at most 1e6); auto = 10 x "
             "(load*chunk_time + load*measured compute per chunk + a round's message time)", lo=0, lo_open=True),
        _Key("flush_every", "int", "rounds buffered per HDF5 write; auto = 1 (run) or 1000 (simulate)", lo=1),
        _Key("flush_seconds", "float", "run only: write to the file at most this often (s of wall time; 0 = at "
             "every flush_every); what is buffered is written at the end and on SIGTERM/SIGINT", lo=0),
        _Key("detail", "str", "what to record; auto = full (run) or rounds (simulate)",
             choices=("rounds", "workers", "full")),
        _Key("eval_every", "int", "evaluate the model on held-out rows every this many rounds (0 = never; "
             "needs verify = true)", lo=0),
        _Key("target_loss", "float", "summary: time and rounds until eval_loss <= this (needs eval_every)",
             unset="unset"),
    )),
    "code": (CodeConfig, (
        _Key("scheme", "str", "scheme name, or a list of names / inline tables of overrides"),
        _Key("name", "str", "run name in the result file; auto = the scheme"),
        _Key("workers", "int", "workers m; auto = world size - 1 (run) or 8 (simulate)", lo=1),
        _Key("chunks", "int", "data chunks N; auto = the scheme's natural N (m)", lo=1),
        _Key("load", "int", "chunks per worker (delta)", lo=1),
        _Key("parts", "int", "gradient split into l parts", lo=1),
        _Key("assignment", "str", "chunks held by each worker; auto = the scheme's own"),
        _Key("ordering", "str", "order of chunks inside a worker"),
        _Key("decode", "str", "exact, or approximate at the deadline", choices=("exact", "approx")),
        _Key("deadline", "float", "seconds (at most 1e6); approximate decoding deadline T_dl", lo=0,
             lo_open=True),
        _Key("transport", "str", "partial: send coded parts (stream) or notes then requests",
             choices=("stream", "request")),
        _Key("use_partial", "bool", "partial: count unfinished workers' chunks (false = ablation)"),
        _Key("rescale", "bool", "uncoded: scale by m/|F|, frc: by groups/groups heard, when approximate"),
        _Key("points", "str", "poly: evaluation points", choices=("chebyshev", "integers")),
        _Key("ladder", "ints", "nested: increasing straggler tolerances, e.g. [0, 1, 3]", lo=0),
        _Key("B", "int", "sequential: burst length", lo=1),
        _Key("W", "int", "sequential: window", lo=1),
        _Key("lambda", "int", "sequential: stragglers per window", lo=0),
        _Key("mu", "float", "sequential: round ends at (1+mu)*t_min", lo=0),
        _Key("wait_for", "int", "end a round once this many workers have sent their last message (1..m), "
             "decoding what arrived; unset = wait for the exact decode", lo=1, unset="unset"),
        _Key("p", "float", "stochastic: probability a worker misses the round's end, 0 <= p < 1 (weights "
             "1/(load*(1-p))); auto = 1 - wait_for/m, or 0 without wait_for", lo=0, hi=1),
        _Key("batches", "int", "bcc: batches b of N/b chunks (b divides N); auto = N / the smallest divisor "
             "of N that is >= load", lo=1),
    )),
    "workload": (WorkloadConfig, (
        _Key("model", "str", "model trained"),
        _Key("samples", "int", "samples in the dataset", lo=1),
        _Key("features", "int", "features per sample", lo=1),
        _Key("hidden", "int", "mlp: hidden units", lo=1),
        _Key("dataset", "str",
             '"synthetic", a directory of X.npy and y.npy (memory-mapped), or a .npz or .h5 file with X and y'),
        _Key("step", "float", "gradient step size; auto = min(0.1, 1/L), L a bound on the curvature from the "
             "data's shape (least-squares, logistic on synthetic data; 0.1 otherwise)", lo=0, lo_open=True),
        _Key("dtype", "str", "floating type of data, model, gradients, messages and decode",
             choices=("float64", "float32")),
        _Key("models", "int", "sequential: models trained together K; auto = T_seq + 1", lo=1),
        _Key("noise", "float", "synthetic: label noise", lo=0),
    )),
    "delays": (DelaysConfig, (
        _Key("model", "str", "straggler model"),
        _Key("chunk_time", "float", "seconds of modelled work per chunk", lo=0, lo_open=True),
        _Key("failures", "float", "probability a worker is silent for a round", **_PROB),
        _Key("fail_count", "int", "exactly this many random workers silent each round", lo=0),
        _Key("compute", "str", "sleep to the modelled time, or add delay to real compute",
             choices=("emulated", "real")),
        _Key("shift", "float", "shifted-exponential: shift", lo=0),
        _Key("scale", "float", "shifted-exponential: mean of the exponential", lo=0, lo_open=True),
        _Key("per", "str", "draw per chunk or once per worker-round", choices=("chunk", "worker")),
        _Key("slow", "ints", "constant: slow workers (0-based)", lo=0),
        _Key("factor", "float", "slowdown of slow workers / bad rounds", lo=1),
        _Key("alpha", "float", "pareto: shape", lo=1, lo_open=True,
             message="Pareto shape must be > 1 (infinite mean otherwise)"),
        _Key("p", "float", "bimodal: probability a worker-round is slow", **_PROB),
        _Key("p_bad", "float", "gilbert-elliott, fitted: good (fast) -> bad (slow) probability", **_PROB),
        _Key("p_good", "float", "gilbert-elliott, fitted: bad (slow) -> good (fast) probability", **_PROB),
        _Key("B", "int", "bursty: burst length", lo=1),
        _Key("W", "int", "bursty: window", lo=1),
        _Key("lambda", "int", "bursty: stragglers per window", lo=0),
        _Key("violate", "float", "bursty: probability a round breaks the model", **_PROB),
        _Key("trace", "str", "trace: CSV of per-round, per-worker seconds, or an HDF5 result file",
             unset="unset"),
        _Key("slope", "float", 'trace: seconds per unit of normalised load (P3\'s affine model), or "fit" '
             "(fitted to the trace's set)", unset="unset"),
        _Key("wrap", "bool", "trace: wrap rounds and workers around"),
        _Key("speed_sigma", "float", "fitted: log-sd of the workers' persistent speed factors", lo=0),
        _Key("floor", "float", "fitted: shift of both states' log-normals (trace units)", lo=0),
        _Key("fast_mu", "float", "fitted: fast state, mean of log(value/speed - floor)"),
        _Key("fast_sigma", "float", "fitted: fast state, sd of log(value/speed - floor)", lo=0, lo_open=True),
        _Key("slow_mu", "float", "fitted: slow state, mean of log(value/speed - floor)"),
        _Key("slow_sigma", "float", "fitted: slow state, sd of log(value/speed - floor)", lo=0, lo_open=True),
    )),
    "network": (NetworkConfig, (
        _Key("latency", "float", "seconds per message (simulator)", lo=0),
        _Key("bandwidth", "float", "bytes/s per link, 0 = infinite (simulator)", lo=0),
        _Key("shared_ingest", "bool", "messages into rank 0 share one link: each waits until it is free, then "
             "takes gap + bytes/bandwidth (false = independent links)"),
        _Key("gap", "float", "shared_ingest: seconds the link is held per message beyond its bytes (LogGP's g)",
             lo=0),
    )),
}
_SPECS = {t: {k.name: k for k in keys} for t, (_, keys) in _KEYS.items()}
#: keys whose values are names in a registry: checked by it (with its suggestions), listed from it
_NAMED: dict[str, Registry] = {"code.scheme": SCHEMES, "code.ordering": ORDERINGS, "code.assignment": ASSIGNMENTS,
                               "delays.model": DELAY_MODELS, "workload.model": WORKLOADS}
#: string values a numeric key also accepts
_WORDS: dict[str, tuple[str, ...]] = {"delays.slope": ("fit",)}


def _default(table: str, key: _Key) -> Any:
    cls = _KEYS[table][0]
    return {f.name: f.default for f in dataclasses.fields(cls)}[key.field]
