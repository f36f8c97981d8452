"""TOML config → validated, frozen dataclasses (DESIGN.md "Config (TOML)").

``load_config`` reads a file (or the embedded ``default.toml``), applies
``--set key=value`` overrides, checks every key's type and range and raises
:class:`~mpigc.errors.InputError` naming the dotted key on the first problem.
``to_toml`` writes a resolved config back (re-loadable); ``describe_keys``
prints the table of every key.
"""
from __future__ import annotations

import dataclasses
import difflib
import importlib.resources
import textwrap
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mpigc._toml import Key as _Key
from mpigc._toml import check as _check
from mpigc._toml import format_key, format_value, show
from mpigc.codes.assignments import ASSIGNMENTS
from mpigc.codes.ordering import ORDERINGS
from mpigc.codes.registry import SCHEMES
from mpigc.delays.models import MODELS as DELAY_MODELS
from mpigc.errors import InputError
from mpigc.limits import check_memory
from mpigc.registry import Registry
from mpigc.report import format_table
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
    step: float = 0.1
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


@dataclass(frozen=True)
class NetworkConfig:
    """``[network]``: simulated link (simulator only)."""

    latency: float = 0.0
    bandwidth: float = 0.0


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
        _Key("round_timeout", "float", "seconds before a round ends undecoded (at most 1e6); "
             "auto = 10*load*chunk_time", lo=0, lo_open=True),
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
        _Key("step", "float", "gradient step size", lo=0, lo_open=True),
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
        _Key("p_bad", "float", "gilbert-elliott: good -> bad probability", **_PROB),
        _Key("p_good", "float", "gilbert-elliott: bad -> good probability", **_PROB),
        _Key("B", "int", "bursty: burst length", lo=1),
        _Key("W", "int", "bursty: window", lo=1),
        _Key("lambda", "int", "bursty: stragglers per window", lo=0),
        _Key("violate", "float", "bursty: probability a round breaks the model", **_PROB),
        _Key("trace", "str", "trace: CSV of per-round, per-worker seconds, or an HDF5 result file",
             unset="unset"),
        _Key("slope", "float", 'trace: seconds per unit of normalised load (P3\'s affine model), or "fit" '
             "(fitted to the trace's set)", unset="unset"),
        _Key("wrap", "bool", "trace: wrap rounds and workers around"),
    )),
    "network": (NetworkConfig, (
        _Key("latency", "float", "seconds per message (simulator)", lo=0),
        _Key("bandwidth", "float", "bytes/s per link, 0 = infinite (simulator)", lo=0),
    )),
}
_SPECS = {t: {k.name: k for k in keys} for t, (_, keys) in _KEYS.items()}
#: keys whose values are names in a registry: checked by it (with its suggestions), listed from it
_NAMED: dict[str, Registry] = {"code.scheme": SCHEMES, "code.ordering": ORDERINGS, "code.assignment": ASSIGNMENTS,
                               "delays.model": DELAY_MODELS, "workload.model": WORKLOADS}
#: string values a numeric key also accepts
_WORDS: dict[str, tuple[str, ...]] = {"delays.slope": ("fit",)}

#: seeds must fit numpy's SeedSequence and a 64-bit HDF5 attribute (run attrs store the seed)
SEED_LIMIT = 2**64
#: longest wait a config may ask for (s): a finite bound, not a hang (sleep() overflows near 9e9 s)
MAX_SECONDS = 1e6


def _default(table: str, key: _Key) -> Any:
    cls = _KEYS[table][0]
    return {f.name: f.default for f in dataclasses.fields(cls)}[key.field]


def _unknown_key(table: str, name: str, prefix: str) -> InputError:
    homes = [t for t in _SPECS if name in _SPECS[t]]
    if homes:
        return InputError(f"{prefix}.{name}", f"unknown key in [{table}]; did you mean '{homes[0]}.{name}'?")
    close = difflib.get_close_matches(name, list(_SPECS[table]), n=1)
    if close:
        return InputError(f"{prefix}.{name}", f"unknown key; did you mean '{prefix}.{close[0]}'?")
    return InputError(f"{prefix}.{name}", f"unknown key (keys of [{table}]: {', '.join(_SPECS[table])})")


def _check_tables(raw: Mapping[str, Any]) -> None:
    for name, value in raw.items():
        if name not in _SPECS:
            close = difflib.get_close_matches(name, list(_SPECS), n=1)
            homes = [t for t in _SPECS if name in _SPECS[t]]
            if homes:
                problem = f"unknown table; did you mean '{homes[0]}.{name}' (keys belong under [{homes[0]}])?"
            elif close:
                problem = f"unknown table; did you mean '{close[0]}'?"
            else:
                problem = f"unknown table (tables: {', '.join(_SPECS)})"
            raise InputError(name, problem)
        if not isinstance(value, dict):
            raise InputError(name, f"must be a table [{name}], got {show(value)}")


def _values(table: str, raw: Mapping[str, Any], prefix: str, skip: Sequence[str] = ()) -> dict[str, Any]:
    """Check every key of one raw table; return dataclass field → value."""
    out = {}
    for name, value in raw.items():
        if name in skip:
            continue
        if name not in _SPECS[table]:
            raise _unknown_key(table, name, prefix)
        key = _SPECS[table][name]
        label = f"{prefix}.{name}"
        if isinstance(value, str) and value in _WORDS.get(f"{table}.{name}", ()):
            out[key.field] = value
            continue
        out[key.field] = _check(key, label, value)
        registry = _NAMED.get(f"{table}.{name}")
        if registry is not None and registry is not ASSIGNMENTS:   # assignments take arguments: checked when planned
            registry.lookup(value, label)
    return out


def _resolve_codes(raw: Mapping[str, Any], base: dict[str, Any]) -> tuple[CodeConfig, ...]:
    """Expand ``code.scheme`` (a name or a list of entries) into one CodeConfig per entry.

    ``base`` holds the checked values of the other ``[code]`` keys (workers resolved).
    """
    scheme = raw.get("scheme", CodeConfig.scheme)
    entries: list[tuple[str, dict[str, Any]]] = []
    if isinstance(scheme, str):
        entries.append(("code", {"scheme": scheme}))
    elif isinstance(scheme, list):
        if not scheme:
            raise InputError("code.scheme", "must name at least one scheme, got an empty list")
        for i, entry in enumerate(scheme):
            label = f"code.scheme[{i}]"
            if isinstance(entry, str):
                entries.append((label, {"scheme": entry}))
            elif isinstance(entry, dict):
                if "scheme" not in entry:
                    raise InputError(label, "an inline table needs a scheme key, "
                                            'e.g. {scheme = "partial", use_partial = false}')
                if "workers" in entry:
                    raise InputError(f"{label}.workers", "must be the same for every entry; set code.workers")
                entries.append((label, _values("code", entry, label)))
            else:
                raise InputError(label, f"must be a scheme name or an inline table, got {show(entry)}")
    else:
        raise InputError("code.scheme", f"must be a scheme name or a list of them, got {show(scheme)}")
    codes = []
    for label, over in entries:
        code = CodeConfig(**{**base, **over})
        SCHEMES.lookup(code.scheme, "code.scheme" if label == "code" else label)
        if code.deadline is not None and code.deadline > MAX_SECONDS:
            key = f"{label}.deadline" if "deadline" in over else "code.deadline"
            raise InputError(key, f"must be at most {MAX_SECONDS:g} s, got {code.deadline:g}")
        if code.decode == "approx" and code.deadline is None:
            key = f"{label}.deadline" if "decode" in over else "code.deadline"
            raise InputError(key, 'required when code.decode = "approx"')
        _check_wait_for(code, label, over)
        if any(b <= a for a, b in zip(code.ladder, code.ladder[1:])):
            key = f"{label}.ladder" if "ladder" in over else "code.ladder"
            raise InputError(key, f"must be strictly increasing, got {show(list(code.ladder))}")
        codes.append(code)
    return tuple(codes)


def _check_wait_for(code: CodeConfig, label: str, over: Mapping[str, Any]) -> None:
    """``code.wait_for`` within 1..m and on a single-round scheme; ``code.p`` below 1 (PROTOCOLS §6)."""
    if code.wait_for is not None:
        key = f"{label}.wait_for" if "wait_for" in over else "code.wait_for"
        if code.wait_for > code.workers:
            raise InputError(key, f"must be at most code.workers = {code.workers}, got {code.wait_for}")
        if getattr(SCHEMES.lookup(code.scheme), "sequential", False):
            raise InputError(key, f"{code.scheme} is a sequential scheme: its rounds end by code.mu, "
                                  "not by code.wait_for")
    if code.p is not None and code.p >= 1:
        key = f"{label}.p" if "p" in over else "code.p"
        raise InputError(key, f"must be below 1 (the weights are 1/(load*(1-p))), got {code.p:g}")


def _check_run(run: RunConfig) -> None:
    """Limits of ``[run]`` beyond each key's own range: seeds that fit, waits that end."""
    if run.seed >= SEED_LIMIT:
        raise InputError("run.seed", f"must be below 2^64 = {SEED_LIMIT} (numpy's seeds are stored as 64-bit "
                                     f"integers in the result file), got {run.seed}")
    for key in ("round_timeout", "flush_seconds"):
        value = getattr(run, key)
        if value is not None and value > MAX_SECONDS:
            raise InputError(f"run.{key}", f"must be at most {MAX_SECONDS:g} s, got {value:g}")
    if run.target_loss is not None and not run.eval_every:
        raise InputError("run.target_loss", "needs run.eval_every > 0 (the time to target is read from the "
                                            "evaluated rounds' eval_loss)")
    if run.eval_every and not run.verify:
        raise InputError("run.eval_every", "needs run.verify = true (the model trains only when the true "
                                           "gradient is computed: the simulator computes none otherwise)")


def _check_eval(run: RunConfig, codes: tuple[CodeConfig, ...]) -> None:
    """Refuse eval_every with sequential schemes: they train K models at once, evaluation follows one."""
    if run.eval_every and any(getattr(SCHEMES.lookup(c.scheme, "code.scheme"), "sequential", False) for c in codes):
        raise InputError("run.eval_every", "not supported with sequential schemes (they train several models "
                                           "at once; see the jobs table's loss instead)")


def _check_delays(d: DelaysConfig, workers: int) -> None:
    if d.failures > 0 and d.fail_count > 0:
        raise InputError("delays.fail_count", f"cannot be combined with delays.failures = {d.failures:g}; "
                                              "use one or the other")
    if d.fail_count >= workers:
        raise InputError("delays.fail_count",
                         f"must be less than code.workers = {workers}, got {d.fail_count}")
    bad = [w for w in d.slow if w >= workers]
    if bad:
        raise InputError("delays.slow", f"worker {bad[0]} does not exist (workers are 0..{workers - 1})")
    if d.model == "trace" and d.trace is None:
        raise InputError("delays.trace", 'required when delays.model = "trace"')
    if d.slope == "fit" and d.model != "trace":
        raise InputError("delays.slope", f'"fit" fits the slope to a trace: it needs delays.model = "trace", '
                                         f"got {d.model!r}")


def _parse_override(item: str) -> tuple[str, str, Any]:
    """Split ``table.key=value``; the value is a TOML value or else the raw string."""
    if "=" not in item:
        raise InputError("--set", f"expected key=value, got {item!r}")
    key, text = (s.strip() for s in item.split("=", 1))
    parts = key.split(".")
    if len(parts) != 2 or not all(parts):
        homes = [f"{t}.{key}" for t in _SPECS if key in _SPECS[t]]
        hint = f"; did you mean '{homes[0]}'?" if homes else " (e.g. code.parts=2)"
        raise InputError("--set", f"expected table.key=value, got {item!r}{hint}")
    try:
        parsed = tomllib.loads("v = " + text)
        value = parsed["v"] if list(parsed) == ["v"] else text
    except tomllib.TOMLDecodeError:
        value = text
    return parts[0], parts[1], value


def _read(path: str | None) -> dict[str, Any]:
    if path is None:
        text = importlib.resources.files("mpigc").joinpath("default.toml").read_text(encoding="utf-8")
        label = "default.toml"
    else:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise InputError(path, "no such file") from None
        except OSError as exc:
            raise InputError(path, f"cannot read: {exc.strerror or exc}") from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(path, "invalid TOML: not UTF-8 text") from None
        label = path
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(label, f"invalid TOML: {exc}") from None


def load_config(path: str | None, overrides: Sequence[str] = (), backend: str = "sim",
                world_size: int | None = None) -> Config:
    """Read, override, check and resolve a config.

    Parameters
    ----------
    path : TOML file, or None for the embedded ``mpigc/default.toml``.
    overrides : ``"table.key=value"`` strings (``--set``), applied in order.
    backend : ``"sim"`` or ``"mpi"``; sets the defaults of workers, flush_every and detail.
    world_size : MPI world size (master + workers); under ``"mpi"`` it must be workers + 1.

    Raises
    ------
    InputError
        Naming the dotted key and the problem, for any bad input.
    """
    if backend not in BACKENDS:
        raise InputError("backend", f"must be one of {', '.join(BACKENDS)}, got {backend!r}")
    raw = _read(path)
    overridden = set()
    for item in overrides:
        table, key, value = _parse_override(item)
        overridden.add(f"{table}.{key}")
        if isinstance(raw.get(table), dict):
            raw[table][key] = value
        elif table in raw:
            raise InputError(table, f"must be a table [{table}], got {show(raw[table])}")
        else:
            raw[table] = {key: value}
    _check_tables(raw)
    parts = {t: _values(t, raw.get(t, {}), t) for t in ("run", "workload", "delays", "network")}
    mpi = backend == "mpi"
    run = RunConfig(**parts["run"])
    _check_run(run)
    run = dataclasses.replace(run, flush_every=run.flush_every or (1 if mpi else 1000),
                              detail=run.detail or ("full" if mpi else "rounds"))
    raw_code = raw.get("code", {})
    base = _values("code", raw_code, "code", skip=("scheme",))
    workers = base.get("workers")
    if mpi and world_size is not None and world_size < 2:
        raise InputError("code.workers", f"mpiexec started {world_size} rank; a run needs a master and at "
                                         f"least one worker; run with -n {(workers or 8) + 1}")
    if workers is None:
        workers = world_size - 1 if (mpi and world_size is not None) else 8
    if mpi and world_size is not None and workers + 1 != world_size:
        raise InputError("code.workers", f"the config asks for {workers} workers but mpiexec started "
                                         f"{world_size} ranks; run with -n {workers + 1}")
    if path is None and "code.load" not in overridden and base.get("load", 0) > workers:
        # the embedded default experiment runs at any world size: with fewer workers than its
        # load, every worker holds every chunk (a user's own config is never changed)
        base["load"] = workers
    codes = _resolve_codes(raw_code, {**base, "workers": workers})
    _check_eval(run, codes)
    delays = DelaysConfig(**parts["delays"])
    _check_delays(delays, workers)
    config = Config(run=run, codes=codes, workload=WorkloadConfig(**parts["workload"]), delays=delays,
                    network=NetworkConfig(**parts["network"]), backend=backend)
    check_memory(config)     # before any command builds an m x N plan or a dataset
    return config


def _line(key: _Key, value: Any) -> str:
    if value is None:
        return f"# {key.name} = ({key.unset})"
    return f"{format_key(key.name)} = {format_value(value)}"


def _code_lines(codes: tuple[CodeConfig, ...]) -> list[str]:
    keys = [k for k in _KEYS["code"][1] if k.name != "scheme"]
    if len(codes) == 1:
        first = codes[0]
        lines = [_line(_SPECS["code"]["scheme"], first.scheme)]
        return lines + [_line(k, getattr(first, k.field)) for k in keys]
    base = {}
    for k in keys:
        vals = [getattr(c, k.field) for c in codes]
        base[k.field] = None if any(v is None for v in vals) else vals[0]
    lines = ["scheme = ["]
    for c in codes:
        over = {k.name: getattr(c, k.field) for k in keys
                if getattr(c, k.field) is not None and getattr(c, k.field) != base[k.field]}
        lines.append(f"  {format_value({'scheme': c.scheme, **over}) if over else format_value(c.scheme)},")
    lines.append("]")
    return lines + [_line(k, base[k.field]) for k in keys]


def to_toml(config: Config) -> str:
    """Write the resolved config as TOML; ``load_config`` reads it back to an equal Config.

    None values (resolved later, per scheme) are written as ``# key = (auto)`` comments.
    """
    out = [f"# mpigc resolved config (backend {config.backend!r}); every default written out.", ""]
    for table, (_, keys) in _KEYS.items():
        out.append(f"[{table}]")
        if table == "code":
            out += _code_lines(config.codes)
        else:
            obj = getattr(config, table)
            out += [_line(k, getattr(obj, k.field)) for k in keys]
        out.append("")
    return "\n".join(out)


def describe_keys() -> str:
    """Return a text table of every key: default, allowed values and meaning."""
    rows = [("key", "default", "allowed", "meaning")]
    for table, (_, keys) in _KEYS.items():
        for k in keys:
            default = _default(table, k)
            shown = f"({k.unset})" if default is None else format_value(default)
            name = f"{table}.{k.name}"
            if name in _NAMED:
                k = dataclasses.replace(k, choices=_NAMED[name].names())
            allowed = " | ".join([k.rule(), *(f'"{w}"' for w in _WORDS.get(name, ()))])
            rows.append((name, shown, allowed, k.doc))
    lines = []
    for row in rows:  # "allowed" wrapped to a 30-character column, continued on lines of its own
        allowed = textwrap.wrap(row[2], 30, break_on_hyphens=False) or [""]
        lines += [(*(row[:2] if i == 0 else ("", "")), part.ljust(30), row[3] if i == 0 else "")
                  for i, part in enumerate(allowed)]
    return format_table(lines, left=range(4))
