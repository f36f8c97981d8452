"""A run as Chrome trace-event JSON (``mpigc timeline``), for Perfetto (ui.perfetto.dev) or chrome://tracing.

The result file records, per message rank 0 received, its round, worker,
position, chunk and arrival time (``events``, ``run.detail = "full"``), and
per round its latency; no send or start time. The timeline is rebuilt from
these, and says so in its metadata:

- Rounds run back to back: round r starts at the sum of the earlier rounds'
  latencies, plus, on MPI, rank 0's mean time between rounds (``master_wall_s``
  less the latencies, over the rounds: update, STOPs, writing). Times are µs
  from the run's start: rank 0's wall clock on MPI, virtual time in the simulator.
- A worker's slice for a message runs from the later of its round's start and
  the worker's previous message to the message's arrival at rank 0 (its
  transit included). A worker computes one task at a time, so its slices
  never overlap.
- A stale message's arrival is measured from the round in progress when rank 0
  heard it, which is the round of the next message in time in the events table
  (rows are written round by round); one drained after the last round (no
  arrival time) ends at the run's end.
"""
from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from mpigc.errors import InputError
from mpigc.viz.runs import PlotRun
from mpigc.viz.style import status_style

#: most messages (events rows) one timeline holds; past it the user picks rounds with --rounds
EVENT_LIMIT = 200_000
PID = 1
RANK0 = 0           # thread id of rank 0; worker w is thread w + 1
_NS = 3             # decimals of µs kept (ns)


def parse_rounds(text: str | None, first: int, stop: int) -> tuple[int, int]:
    """Parse ``--rounds A:B`` (rounds A to B - 1; either end may be left out) against the run's rounds.

    Raises
    ------
    InputError
        Keyed ``--rounds`` if it is not ``A:B`` with integers, or selects no round of the run.
    """
    if text is None:
        return first, stop
    lo_text, sep, hi_text = text.partition(":")
    try:
        lo = int(lo_text) if lo_text.strip() else first
        hi = int(hi_text) if hi_text.strip() else stop
    except ValueError:
        lo = hi = None
    if not sep or lo is None or hi is None:
        raise InputError("--rounds", f"expected A:B (rounds A to B - 1, e.g. 0:100), got {text!r}")
    lo, hi = max(lo, first), min(hi, stop)
    if lo >= hi:
        raise InputError("--rounds", f"{text!r} selects no round (the run has rounds {first} to {stop - 1})")
    return lo, hi


def _quantise(seconds: np.ndarray) -> np.ndarray:
    """Seconds to µs, rounded to ns: every timestamp is computed once, so slices that touch stay touching."""
    return np.round(np.asarray(seconds, dtype=float) * 1e6, _NS)


def round_clock(run: PlotRun) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Round numbers (sorted), their start and end (s from the run's start), and the gap between rounds (s)."""
    rounds = np.sort(run.tables["rounds"], order="round")
    lat = np.where(np.isfinite(rounds["latency"]), rounds["latency"], 0.0).astype(float)
    gap = 0.0
    wall = run.attrs.get("master_wall_s")
    if run.backend == "mpi" and isinstance(wall, (int, float)) and np.isfinite(wall) and rounds.size:
        gap = max(0.0, (float(wall) - float(lat.sum())) / rounds.size)
    start = np.concatenate([[0.0], np.cumsum(lat + gap)[:-1]]) if rounds.size else np.zeros(0)
    return np.asarray(rounds["round"], dtype=np.int64), start, start + lat, gap


def _index(numbers: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Positions of ``values`` among the sorted round ``numbers`` (-1 where absent)."""
    if not numbers.size:
        return np.full(np.shape(values), -1)
    pos = np.minimum(np.searchsorted(numbers, values), numbers.size - 1)
    return np.where(numbers[pos] == values, pos, -1)


def message_slices(run: PlotRun) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every events row's worker slice: start and end (µs), and the round rank 0 was in when it heard it.

    See the module's notes for how they are rebuilt.
    """
    events = run.tables["events"]
    numbers, start, end, _ = round_clock(run)
    stale = np.asarray(events["stale"], dtype=bool)
    own = np.asarray(events["round"], dtype=np.int64)
    heard = own.copy()
    timely = np.flatnonzero(~stale)
    later = np.searchsorted(timely, np.flatnonzero(stale))     # the next message in time after each stale row
    found = later < timely.size
    heard[np.flatnonzero(stale)[~found]] = -1                  # drained after the last round
    heard[np.flatnonzero(stale)[found]] = own[timely[later[found]]]
    run_end = float(end[-1]) if end.size else 0.0
    h = _index(numbers, heard)
    t = np.asarray(events["t_arrive"], dtype=float)
    arrive = np.where((h >= 0) & np.isfinite(t), start[np.maximum(h, 0)] + np.nan_to_num(t), run_end)
    o = _index(numbers, own)
    earliest = np.where(o >= 0, start[np.maximum(o, 0)], 0.0)
    arrive_us, earliest_us = _quantise(arrive), _quantise(earliest)
    workers = np.asarray(events["worker"], dtype=np.int64)
    order = np.lexsort((np.arange(events.size), arrive_us, workers))   # per worker, by arrival (ties: table order)
    # finish_k = max(arrival_k, earliest_k, finish_(k-1)): a running maximum along each worker's messages;
    # begin_k = max(earliest_k, finish_(k-1))
    begin, finish = np.empty_like(arrive_us), np.empty_like(arrive_us)
    sorted_workers = workers[order]
    cuts = np.flatnonzero(np.diff(sorted_workers)) + 1
    for part in np.split(order, cuts):
        done = np.maximum.accumulate(np.maximum(arrive_us[part], earliest_us[part]))
        previous = np.concatenate([[0.0], done[:-1]])
        begin[part], finish[part] = np.maximum(earliest_us[part], previous), done
    return begin, finish, heard


def _num(value: Any) -> float | None:
    """Return a float for JSON: None for NaN and infinities (JSON has neither)."""
    value = float(value)
    return value if np.isfinite(value) else None


def _slice_name(chunk: int, job: int, task: int) -> str:
    """Name a worker's slice by what its message carried."""
    if chunk >= 0:
        return f"chunk {chunk}"
    if job >= 0:
        return f"mini-tasks (job {job})"
    if task >= 0:
        return f"coded result (positions 0-{task})"
    return "answer"


def _meta(name: str, tid: int, args: dict) -> dict:
    return {"ph": "M", "pid": PID, "tid": tid, "name": name, "args": args}


def _rank0(run: PlotRun, numbers: np.ndarray, start: np.ndarray, end: np.ndarray, heard: np.ndarray,
           pick: np.ndarray) -> list[dict]:
    """Rank 0's slices (round, then "wait and decode" and "final decode"), STOP marks and counters.

    Rank 0 applies each message to the decode as it arrives, so waiting and
    decoding share one slice up to the last message heard in time; what the
    round spends after it (the request transport's second phase, the final
    combination) is the "final decode".
    """
    events = run.tables["events"]
    rounds = np.sort(run.tables["rounds"], order="round")
    timely = ~np.asarray(events["stale"], dtype=bool)
    last = np.full(numbers.size, -np.inf)
    own = _index(numbers, np.asarray(events["round"], dtype=np.int64))
    ok = timely & (own >= 0)
    np.maximum.at(last, own[ok], np.asarray(events["t_arrive"], dtype=float)[ok])
    s_us, e_us = _quantise(start), _quantise(end)
    gathered = _quantise(np.where(np.isfinite(last), start + np.clip(last, 0, end - start), end))
    stale_heard = np.bincount(np.maximum(_index(numbers, heard[~timely]), 0), minlength=numbers.size)
    out: list[dict] = []
    for j in pick:
        r, row = int(numbers[j]), rounds[j]
        head = {"ph": "X", "pid": PID, "tid": RANK0}
        out.append({**head, "name": f"round {r}", "cat": "round", "ts": s_us[j], "dur": round(e_us[j] - s_us[j], _NS),
                    "args": {"round": r, "status": status_style(row["status"])[0],
                             "latency_ms": _num(row["latency"] * 1e3), "messages": int(row["messages"]),
                             "chunks_done": int(row["chunks_done"]), "coef_error": _num(row["coef_error"]),
                             "waitout": int(row["waitout"])}})
        out.append({**head, "name": "wait and decode", "cat": "rank0", "ts": s_us[j],
                    "dur": round(gathered[j] - s_us[j], _NS), "args": {"round": r}})
        if e_us[j] > gathered[j]:
            out.append({**head, "name": "final decode", "cat": "rank0", "ts": gathered[j],
                        "dur": round(e_us[j] - gathered[j], _NS), "args": {"round": r}})
        out.append({"ph": "i", "pid": PID, "tid": RANK0, "name": "STOP", "cat": "control", "ts": e_us[j], "s": "t",
                    "args": {"round": r}})
        out.append({"ph": "C", "pid": PID, "tid": RANK0, "name": "messages per round", "ts": s_us[j],
                    "args": {"heard in time": int(row["messages"]), "stale heard": int(stale_heard[j])}})
    return out


def _workers(run: PlotRun, pick: np.ndarray, begin: np.ndarray, finish: np.ndarray, heard: np.ndarray,
             round_start: dict[int, float]) -> list[dict]:
    """Return a slice per message on its worker's thread; a flow from each used one into rank 0's decode."""
    rows = run.tables["events"][pick]
    cols = {f: rows[f].tolist() for f in ("worker", "round", "chunk", "task", "job", "stale", "used", "nbytes")}
    arrive = [_num(t) for t in (rows["t_arrive"] * 1e3).tolist()]
    names = [_slice_name(c, j, t) for c, j, t in zip(cols["chunk"], cols["job"], cols["task"])]
    b_us, f_us, heard_in = begin[pick].tolist(), finish[pick].tolist(), heard[pick].tolist()
    out: list[dict] = []
    for i, k in enumerate(pick.tolist()):
        w, r, stale = cols["worker"][i], cols["round"][i], cols["stale"][i]
        dur = round(f_us[i] - b_us[i], _NS)
        out.append({"ph": "X", "pid": PID, "tid": w + 1, "name": names[i], "cat": "stale" if stale else "message",
                    "ts": b_us[i], "dur": dur,
                    "args": {"round": r, "chunk": cols["chunk"][i], "position": cols["task"][i], "job": cols["job"][i],
                             "stale": stale, "used": cols["used"][i], "nbytes": cols["nbytes"][i],
                             "heard_in_round": heard_in[i], "t_arrive_ms": arrive[i]}})
        if cols["used"][i] and r in round_start:
            # both ends just inside their slices: the message's, and rank 0's "wait and decode" as it arrives
            ident, inside = k + 1, round(f_us[i] - min(1e-3, dur / 2), _NS)
            out.append({"ph": "s", "pid": PID, "tid": w + 1, "name": "message", "cat": "message", "id": ident,
                        "ts": inside})
            out.append({"ph": "f", "pid": PID, "tid": RANK0, "name": "message", "cat": "message", "id": ident,
                        "ts": max(inside, round_start[r]), "bp": "e"})
    workers = run.tables.get("workers")
    if workers is not None and workers.size:
        for k in np.flatnonzero(np.asarray(workers["failed"], dtype=bool)):
            r = int(workers["round"][k])
            if r in round_start:
                out.append({"ph": "i", "pid": PID, "tid": int(workers["worker"][k]) + 1, "name": "failed (silent)",
                            "cat": "control", "ts": round_start[r], "s": "t", "args": {"round": r}})
    return out


def build_trace(run: PlotRun, lo: int, hi: int, source: str = "") -> dict:
    """Return the trace-event JSON object of rounds ``lo`` to ``hi - 1`` of a run with an ``events`` table."""
    events = run.tables["events"]
    numbers, start, end, gap = round_clock(run)
    begin, finish, heard = message_slices(run)
    own = np.asarray(events["round"], dtype=np.int64)
    m = max(int(run.attrs.get("workers", 0) or 0), int(events["worker"].max()) + 1 if events.size else 0)
    out: list[dict] = [_meta("process_name", RANK0, {"name": f"{run.name} ({run.scheme}, {run.backend})"}),
                       _meta("process_labels", RANK0, {"labels": run.clock}),
                       _meta("thread_name", RANK0, {"name": "rank 0 (decoder)"}),
                       _meta("thread_sort_index", RANK0, {"sort_index": 0})]
    for w in range(m):
        out += [_meta("thread_name", w + 1, {"name": f"worker {w}"}),
                _meta("thread_sort_index", w + 1, {"sort_index": w + 1})]
    rounds_in = np.flatnonzero((numbers >= lo) & (numbers < hi))
    out += _rank0(run, numbers, start, end, heard, rounds_in)
    round_start = dict(zip(numbers[rounds_in].tolist(), _quantise(start[rounds_in]).tolist()))
    out += _workers(run, np.flatnonzero((own >= lo) & (own < hi)), begin, finish, heard, round_start)
    return {"traceEvents": out, "displayTimeUnit": "ms", "otherData": {
        "run": run.name, "file": source, "scheme": run.scheme, "backend": run.backend, "clock": run.clock,
        "rounds": f"{lo}:{hi}", "workers": m, "between_rounds_s": gap,
        "note": "times are µs from the run's start; worker slices are rebuilt from message arrivals at rank 0 "
                "(see docs/plotting.md)"}}


def check_size(run: PlotRun, lo: int, hi: int, limit: int | None = None) -> int:
    """Count the messages in rounds ``lo:hi``; refuse (naming ``--rounds``) above ``limit``.

    Raises
    ------
    InputError
        Keyed ``--rounds`` with a slice that fits, when there are more than ``limit``.
    """
    limit = EVENT_LIMIT if limit is None else limit
    own = np.asarray(run.tables["events"]["round"], dtype=np.int64)
    count = int(np.count_nonzero((own >= lo) & (own < hi)))
    if count > limit:
        per_round = max(1.0, count / max(hi - lo, 1))
        fit = max(1, int(limit / per_round))
        raise InputError("--rounds", f"rounds {lo}:{hi} of run {run.name!r} hold {count} messages, more than the "
                                     f"{limit} one timeline takes; choose fewer rounds, e.g. --rounds {lo}:{lo + fit}")
    return count


def write_trace(trace: dict, out: str | os.PathLike) -> Path:
    """Write the trace as JSON (gzip-compressed if ``out`` ends in ``.gz``) via a temporary file."""
    path = Path(out)
    tmp = path.with_name(f".{path.name}.tmp")
    data = json.dumps(trace, separators=(",", ":"), allow_nan=False).encode()
    try:
        with (gzip.open(tmp, "wb", compresslevel=6) if path.suffix == ".gz" else open(tmp, "wb")) as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
