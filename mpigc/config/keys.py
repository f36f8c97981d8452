"""The config's tables as frozen dataclasses; each field declares one key (:func:`mpigc.config.spec.key`).

A key is declared once, on its field: default, type, range, choices and
help. Adding a key is one line here (the validator, the resolved TOML and
``mpigc validate --keys`` follow; docs/config.md lists them); a key whose
values are names in a registry also goes in :data:`REGISTRY_OF`.
"""
from __future__ import annotations

from dataclasses import dataclass

from mpigc.codes.assignments import ASSIGNMENTS
from mpigc.codes.ordering import ORDERINGS
from mpigc.codes.registry import SCHEMES
from mpigc.config.spec import Key, key, keys_of
from mpigc.delays.models import MODELS as DELAY_MODELS
from mpigc.registry import Registry
from mpigc.workloads.base import WORKLOADS

BACKENDS = ("sim", "mpi")
_PROBABILITY = dict(lo=0.0, hi=1.0)


@dataclass(frozen=True)
class RunConfig:
    """``[run]``: rounds, seeding, verification and output cadence."""

    rounds: int = key(100, "int", "rounds to run (jobs for sequential schemes)", lo=1)
    seed: int = key(0, "int", "root seed of every random stream (below 2^64)", lo=0)
    verify: bool = key(False, "bool", "compute the true gradient each round and record grad_error")
    round_timeout: float | None = key(None, "float", "seconds before a round ends undecoded (at most 1e6); auto = "
                                      "10 x (load*chunk_time + load*measured compute per chunk + a round's message "
                                      "time)", lo=0, lo_open=True)
    flush_every: int | None = key(None, "int", "rounds buffered per HDF5 write; auto = 1 (run) or 1000 (simulate)",
                                  lo=1)
    flush_seconds: float = key(1.0, "float", "run only: write to the file at most this often (s of wall time; 0 = "
                               "at every flush_every); what is buffered is written at the end and on SIGTERM/SIGINT",
                               lo=0)
    detail: str | None = key(None, "str", "what to record; auto = full (run) or rounds (simulate)",
                             choices=("rounds", "workers", "full"))
    eval_every: int = key(0, "int", "evaluate the model on held-out rows every this many rounds (0 = never; needs "
                          "verify = true)", lo=0)
    target_loss: float | None = key(None, "float", "summary: time and rounds until eval_loss <= this (needs "
                                    "eval_every)", unset="unset")


@dataclass(frozen=True)
class CodeConfig:
    """One scheme entry: the ``[code]`` table with the entry's overrides applied."""

    scheme: str = key("partial", "str", "scheme name, or a list of names / inline tables of overrides")
    name: str | None = key(None, "str", "run name in the result file; auto = the scheme")
    workers: int | None = key(None, "int", "workers m; auto = world size - 1 (run) or 8 (simulate)", lo=1)
    chunks: int | None = key(None, "int", "data chunks N; auto = the scheme's natural N (m)", lo=1)
    load: int = key(2, "int", "chunks per worker (delta)", lo=1)
    parts: int = key(1, "int", "gradient split into l parts", lo=1)
    assignment: str | None = key(None, "str", "chunks held by each worker; auto = the scheme's own")
    ordering: str = key("natural", "str", "order of chunks inside a worker")
    decode: str = key("exact", "str", "exact, or approximate at the deadline", choices=("exact", "approx"))
    deadline: float | None = key(None, "float", "seconds (at most 1e6); approximate decoding deadline T_dl",
                                 lo=0, lo_open=True)
    transport: str = key("stream", "str", "partial: send coded parts (stream) or notes then requests",
                         choices=("stream", "request"))
    use_partial: bool = key(True, "bool", "partial: count unfinished workers' chunks (false = ablation)")
    rescale: bool = key(False, "bool", "uncoded: scale by m/|F|, frc: by groups/groups heard, when approximate")
    points: str = key("chebyshev", "str", "poly: evaluation points", choices=("chebyshev", "integers"))
    ladder: tuple[int, ...] = key((), "ints", "nested: increasing straggler tolerances, e.g. [0, 1, 3]", lo=0)
    B: int = key(1, "int", "sequential: burst length", lo=1)
    W: int = key(2, "int", "sequential: window", lo=1)
    lam: int = key(1, "int", "sequential: stragglers per window", lo=0, name="lambda")
    mu: float = key(1.0, "float", "sequential: round ends at (1+mu)*t_min", lo=0)
    wait_for: int | None = key(None, "int", "end a round once this many workers have sent their last message "
                               "(1..m), decoding what arrived; unset = wait for the exact decode", lo=1, unset="unset")
    p: float | None = key(None, "float", "stochastic: probability a worker misses the round's end, 0 <= p < 1 "
                          "(weights 1/(load*(1-p))); auto = 1 - wait_for/m, or 0 without wait_for", lo=0, hi=1)
    batches: int | None = key(None, "int", "bcc: batches b of N/b chunks (b divides N); auto = N / the smallest "
                              "divisor of N that is >= load", lo=1)


@dataclass(frozen=True)
class WorkloadConfig:
    """``[workload]``: model and data."""

    model: str = key("least-squares", "str", "model trained")
    samples: int = key(2000, "int", "samples in the dataset", lo=1)
    features: int = key(100, "int", "features per sample", lo=1)
    hidden: int = key(16, "int", "mlp: hidden units", lo=1)
    dataset: str = key("synthetic", "str", '"synthetic", a directory of X.npy and y.npy (memory-mapped), or a .npz '
                       "or .h5 file with X and y")
    step: float | None = key(None, "float", "gradient step size; auto = min(0.1, 1/L), L a bound on the curvature "
                             "from the data's shape (least-squares, logistic on synthetic data; 0.1 otherwise)",
                             lo=0, lo_open=True)
    dtype: str = key("float64", "str", "floating type of data, model, gradients, messages and decode",
                     choices=("float64", "float32"))
    models: int | None = key(None, "int", "sequential: models trained together K; auto = T_seq + 1", lo=1)
    noise: float = key(0.1, "float", "synthetic: label noise", lo=0)


@dataclass(frozen=True)
class DelaysConfig:
    """``[delays]``: the straggler model and failures."""

    model: str = key("shifted-exponential", "str", "straggler model")
    chunk_time: float = key(0.01, "float", "seconds of modelled work per chunk", lo=0, lo_open=True)
    failures: float = key(0.0, "float", "probability a worker is silent for a round", **_PROBABILITY)
    fail_count: int = key(0, "int", "exactly this many random workers silent each round", lo=0)
    compute: str = key("emulated", "str", "sleep to the modelled time, or add delay to real compute",
                       choices=("emulated", "real"))
    shift: float = key(1.0, "float", "shifted-exponential: shift", lo=0)
    scale: float = key(1.0, "float", "shifted-exponential: mean of the exponential", lo=0, lo_open=True)
    per: str = key("chunk", "str", "draw per chunk or once per worker-round", choices=("chunk", "worker"))
    slow: tuple[int, ...] = key((), "ints", "constant: slow workers (0-based)", lo=0)
    factor: float = key(2.0, "float", "slowdown of slow workers / bad rounds", lo=1)
    alpha: float = key(2.0, "float", "pareto: shape",
                       lo=1, lo_open=True, message="Pareto shape must be > 1 (infinite mean otherwise)")
    p: float = key(0.1, "float", "bimodal: probability a worker-round is slow", **_PROBABILITY)
    p_bad: float = key(0.1, "float", "gilbert-elliott, fitted: good (fast) -> bad (slow) probability", **_PROBABILITY)
    p_good: float = key(0.5, "float", "gilbert-elliott, fitted: bad (slow) -> good (fast) probability", **_PROBABILITY)
    B: int = key(1, "int", "bursty: burst length", lo=1)
    W: int = key(2, "int", "bursty: window", lo=1)
    lam: int = key(1, "int", "bursty: stragglers per window", lo=0, name="lambda")
    violate: float = key(0.0, "float", "bursty: probability a round breaks the model", **_PROBABILITY)
    trace: str | None = key(None, "str", "trace: CSV of per-round, per-worker seconds, or an HDF5 result file",
                            unset="unset")
    slope: float | str | None = key(None, "float", "trace: seconds per unit of normalised load (P3's affine model), "
                                    "or \"fit\" (fitted to the trace's set)", unset="unset")
    wrap: bool = key(True, "bool", "trace: wrap rounds and workers around")
    speed_sigma: float = key(0.0, "float", "fitted: log-sd of the workers' persistent speed factors", lo=0)
    floor: float = key(0.0, "float", "fitted: shift of both states' log-normals (trace units)", lo=0)
    fast_mu: float = key(0.0, "float", "fitted: fast state, mean of log(value/speed - floor)")
    fast_sigma: float = key(0.1, "float", "fitted: fast state, sd of log(value/speed - floor)", lo=0, lo_open=True)
    slow_mu: float = key(1.0, "float", "fitted: slow state, mean of log(value/speed - floor)")
    slow_sigma: float = key(0.1, "float", "fitted: slow state, sd of log(value/speed - floor)", lo=0, lo_open=True)


@dataclass(frozen=True)
class NetworkConfig:
    """``[network]``: simulated links (simulator only; ``mpigc probe --network`` measures them)."""

    latency: float = key(0.0, "float", "seconds per message (simulator)", lo=0)
    bandwidth: float = key(0.0, "float", "bytes/s per link, 0 = infinite (simulator)", lo=0)
    shared_ingest: bool = key(False, "bool", "messages into rank 0 share one link: each waits until it is free, "
                              "then takes gap + bytes/bandwidth (false = independent links)")
    gap: float = key(0.0, "float", "shared_ingest: seconds the link is held per message beyond its bytes (LogGP's g)",
                     lo=0)


@dataclass(frozen=True)
class Config:
    """A fully resolved configuration: one :class:`CodeConfig` per scheme entry."""

    run: RunConfig
    codes: tuple[CodeConfig, ...]
    workload: WorkloadConfig
    delays: DelaysConfig
    network: NetworkConfig
    backend: str


#: each TOML table's dataclass, in the order the resolved config writes them
TABLES: dict[str, type] = {"run": RunConfig, "code": CodeConfig, "workload": WorkloadConfig,
                           "delays": DelaysConfig, "network": NetworkConfig}
#: table -> TOML key -> its :class:`Key`, in declaration order (derived from the dataclass fields)
KEYS: dict[str, dict[str, Key]] = {table: {k.name: k for k in keys_of(cls)} for table, cls in TABLES.items()}
#: keys whose values are names in a registry: checked by it (with its suggestions), listed from it
REGISTRY_OF: dict[str, Registry] = {"code.scheme": SCHEMES, "code.ordering": ORDERINGS,
                                    "code.assignment": ASSIGNMENTS, "delays.model": DELAY_MODELS,
                                    "workload.model": WORKLOADS}
#: string values a numeric key also accepts
WORDS: dict[str, tuple[str, ...]] = {"delays.slope": ("fit",)}
