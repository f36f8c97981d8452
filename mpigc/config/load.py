"""Read a TOML config, apply ``--set`` overrides, check every key; :func:`load_config`."""
from __future__ import annotations

import dataclasses
import difflib
import importlib.resources
import tomllib
from collections.abc import Mapping, Sequence
from typing import Any

from mpigc.codes.assignments import ASSIGNMENTS
from mpigc.codes.registry import SCHEMES
from mpigc.config.keys import (
    BACKENDS,
    KEYS,
    REGISTRY_OF,
    WORDS,
    CodeConfig,
    Config,
    DelaysConfig,
    NetworkConfig,
    RunConfig,
    WorkloadConfig,
)
from mpigc.config.limits import check_memory
from mpigc.config.spec import check_value
from mpigc.config.toml import show
from mpigc.errors import InputError

#: seeds must fit numpy's SeedSequence and a 64-bit HDF5 attribute (run attrs store the seed)
SEED_LIMIT = 2**64
#: longest wait a config may ask for (s): a finite bound, not a hang (sleep() overflows near 9e9 s)
MAX_SECONDS = 1e6


def _unknown_key(table: str, name: str, prefix: str) -> InputError:
    homes = [t for t in KEYS if name in KEYS[t]]
    if homes:
        return InputError(f"{prefix}.{name}", f"unknown key in [{table}]; did you mean '{homes[0]}.{name}'?")
    close = difflib.get_close_matches(name, list(KEYS[table]), n=1)
    if close:
        return InputError(f"{prefix}.{name}", f"unknown key; did you mean '{prefix}.{close[0]}'?")
    return InputError(f"{prefix}.{name}", f"unknown key (keys of [{table}]: {', '.join(KEYS[table])})")


#: tables a config may carry for the reader's information; never read (``[fit]``: how ``mpigc trace fit`` fitted)
INFORMATIONAL = ("fit",)


def _check_tables(raw: Mapping[str, Any]) -> None:
    for name, value in raw.items():
        if name in INFORMATIONAL:
            if not isinstance(value, dict):
                raise InputError(name, f"must be a table [{name}], got {show(value)}")
            continue
        if name not in KEYS:
            close = difflib.get_close_matches(name, list(KEYS), n=1)
            homes = [t for t in KEYS if name in KEYS[t]]
            if homes:
                problem = f"unknown table; did you mean '{homes[0]}.{name}' (keys belong under [{homes[0]}])?"
            elif close:
                problem = f"unknown table; did you mean '{close[0]}'?"
            else:
                problem = f"unknown table (tables: {', '.join(KEYS)})"
            raise InputError(name, problem)
        if not isinstance(value, dict):
            raise InputError(name, f"must be a table [{name}], got {show(value)}")


def _values(table: str, raw: Mapping[str, Any], prefix: str, skip: Sequence[str] = ()) -> dict[str, Any]:
    """Check every key of one raw table; return dataclass field → value."""
    out = {}
    for name, value in raw.items():
        if name in skip:
            continue
        if name not in KEYS[table]:
            raise _unknown_key(table, name, prefix)
        key = KEYS[table][name]
        label = f"{prefix}.{name}"
        if isinstance(value, str) and value in WORDS.get(f"{table}.{name}", ()):
            out[key.field] = value
            continue
        out[key.field] = check_value(key, label, value)
        registry = REGISTRY_OF.get(f"{table}.{name}")
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
    """``code.wait_for`` in 1..m on a single-round scheme; ``code.p`` < 1 (docs/protocols.md#practical-baselines)."""
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


#: rounds a float32 run may have: message headers carry the round as a float32, exact up to 2^24
FLOAT32_ROUNDS = 2**24


def _check_dtype(workload: WorkloadConfig, run: RunConfig, codes: tuple[CodeConfig, ...]) -> None:
    """float32: rounds that fit a float32 header; not the sequential schemes (they run in float64)."""
    if workload.dtype != "float32":
        return
    if run.rounds > FLOAT32_ROUNDS:
        raise InputError("workload.dtype", f"float32 messages number rounds up to 2^24 = {FLOAT32_ROUNDS}; "
                                           f"run.rounds = {run.rounds}")
    if any(getattr(SCHEMES.lookup(c.scheme, "code.scheme"), "sequential", False) for c in codes):
        raise InputError("workload.dtype", "float32 is not supported with sequential schemes (they run in float64)")


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
    table_and_key = key.split(".")
    if len(table_and_key) != 2 or not all(table_and_key):
        homes = [f"{t}.{key}" for t in KEYS if key in KEYS[t]]
        hint = f"; did you mean '{homes[0]}'?" if homes else " (e.g. code.parts=2)"
        raise InputError("--set", f"expected table.key=value, got {item!r}{hint}")
    try:
        parsed = tomllib.loads("v = " + text)
        value = parsed["v"] if list(parsed) == ["v"] else text
    except tomllib.TOMLDecodeError:
        value = text
    return table_and_key[0], table_and_key[1], value


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
    checked = {t: _values(t, raw.get(t, {}), t) for t in ("run", "workload", "delays", "network")}
    mpi = backend == "mpi"
    run = RunConfig(**checked["run"])
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
    delays = DelaysConfig(**checked["delays"])
    _check_delays(delays, workers)
    workload = WorkloadConfig(**checked["workload"])
    _check_dtype(workload, run, codes)
    config = Config(run=run, codes=codes, workload=workload, delays=delays,
                    network=NetworkConfig(**checked["network"]), backend=backend)
    check_memory(config)     # before any command builds an m x N plan or a dataset
    return config
