"""What every test shares: the ``world_sizes`` marker of the MPI suite.

``tests/run-all.sh`` runs every ``mpi``-marked test at each of ``MPI_SIZES``
(default 3, 6, 9 and 13 ranks). A test whose checks do not depend on the
world size, or that costs much and gains nothing from being repeated, says
where it runs::

    pytestmark = [pytest.mark.mpi(min_size=3), pytest.mark.world_sizes(3, 9)]

and is skipped, with that reason in the ``-ra`` summary, at the other sizes.
``tests/test_suite_rules.py`` holds every use to at least two of run-all's
default sizes, one of them odd. ``MPIGC_ALL_WORLD_SIZES=1`` runs every test
at every size. Also the ``trace_problems`` check of ``mpigc timeline``'s JSON (a fixture).
Shared helpers are modules: ``helpers.py``
(serial) and ``mpitools.py`` (under ``mpiexec``).
"""
from __future__ import annotations

import os
from collections import Counter, defaultdict

import numpy as np
import pytest

#: set to 1 to run world_sizes-marked tests at every world size
ALL_SIZES_ENV = "MPIGC_ALL_WORLD_SIZES"


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip a ``world_sizes``-marked MPI test at the world sizes it does not list (every rank alike)."""
    mark = item.get_closest_marker("world_sizes")
    if mark is None or not item.config.getoption("with_mpi", default=False) or os.environ.get(ALL_SIZES_ENV) == "1":
        return
    from mpi4py import MPI  # only under --with-mpi: the serial suite never initialises MPI here

    size = MPI.COMM_WORLD.size
    if size not in mark.args:
        sizes = ", ".join(map(str, mark.args))
        pytest.skip(f"runs at world sizes {sizes} ({size} ranks here; {ALL_SIZES_ENV}=1 runs it at every size)")


_KINDS = {"M", "X", "i", "s", "f", "C"}


def _inside(slices: list[tuple[float, float]], ts: float) -> bool:
    return any(b <= ts <= e for b, e in slices)


def trace_problems(trace: dict, events: np.ndarray, lo: int, hi: int, workers: int) -> list[str]:
    """Check a Chrome trace-event JSON object against the run's ``events`` rows of rounds lo:hi.

    Returns the problems found (empty if none): the object's keys, every
    event's kind and fields, thread names and sort indices, one complete
    event per message row in the slice, strict nesting of complete events
    per thread (no partial overlap), flows that pair up (one start on a
    worker's slice, one end on rank 0's), STOP marks and counters per round.
    """
    problems: list[str] = []
    if set(trace) < {"traceEvents", "displayTimeUnit"} or trace.get("displayTimeUnit") != "ms":
        return [f"top-level keys {sorted(trace)}, displayTimeUnit {trace.get('displayTimeUnit')!r}"]
    evs = trace["traceEvents"]
    for e in evs:
        if e.get("ph") not in _KINDS or not isinstance(e.get("pid"), int) or not isinstance(e.get("tid"), int) \
                or not isinstance(e.get("name"), str):
            problems.append(f"malformed event {e}")
        elif e["ph"] != "M" and not (isinstance(e.get("ts"), (int, float)) and e["ts"] >= 0):
            problems.append(f"bad ts {e}")
        elif e["ph"] == "X" and not (isinstance(e.get("dur"), (int, float)) and e["dur"] >= 0):
            problems.append(f"bad dur {e}")
    names = {e["tid"]: e["args"]["name"] for e in evs if e["ph"] == "M" and e["name"] == "thread_name"}
    expected = {0: "rank 0 (decoder)", **{w + 1: f"worker {w}" for w in range(workers)}}
    if names != expected:
        problems.append(f"thread names {names} != {expected}")
    sort = {e["tid"]: e["args"]["sort_index"] for e in evs if e["ph"] == "M" and e["name"] == "thread_sort_index"}
    if sort != {tid: tid for tid in expected}:
        problems.append(f"thread sort indices {sort}")
    rows = events[(events["round"] >= lo) & (events["round"] < hi)]
    chunks = [e for e in evs if e["ph"] == "X" and e["tid"] > 0]
    if len(chunks) != rows.size:
        problems.append(f"{len(chunks)} worker slices for {rows.size} events rows")
    got = Counter((e["args"]["round"], e["tid"] - 1, e["args"]["position"], e["args"]["chunk"], e["args"]["stale"],
                   e["args"]["used"]) for e in chunks)
    want = Counter((int(r["round"]), int(r["worker"]), int(r["task"]), int(r["chunk"]), bool(r["stale"]),
                    bool(r["used"])) for r in rows)
    if got != want:
        problems.append(f"worker slices differ from the events rows: {list((got - want).items())[:3]} "
                        f"vs {list((want - got).items())[:3]}")
    by_thread: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for e in evs:
        if e["ph"] == "X":
            by_thread[e["tid"]].append((e["ts"], e["ts"] + e["dur"]))
    for tid, slices in by_thread.items():
        stack: list[float] = []
        for b, end in sorted(slices, key=lambda s: (s[0], -s[1])):
            while stack and b >= stack[-1] - 1e-6:
                stack.pop()
            if stack and end > stack[-1] + 1e-6:
                problems.append(f"thread {tid}: slice [{b}, {end}] overlaps its parent ending at {stack[-1]}")
                break
            stack.append(end)
    flows: dict[int, dict[str, dict]] = defaultdict(dict)
    for e in evs:
        if e["ph"] in ("s", "f"):
            if e["ph"] in flows[e["id"]]:
                problems.append(f"flow {e['id']}: two {e['ph']!r} events")
            flows[e["id"]][e["ph"]] = e
    if len(flows) != int(rows["used"].sum()):
        problems.append(f"{len(flows)} flows for {int(rows['used'].sum())} used messages")
    for ident, pair in flows.items():
        s, f = pair.get("s"), pair.get("f")
        if s is None or f is None:
            problems.append(f"flow {ident} unpaired: {pair}")
        elif f["tid"] != 0 or f.get("bp") != "e" or s["tid"] == 0 or s["ts"] > f["ts"] + 1e-6 \
                or not _inside(by_thread[s["tid"]], s["ts"]) or not _inside(by_thread[0], f["ts"]):
            problems.append(f"flow {ident} not from a worker's slice into rank 0's: {pair}")
    rounds = hi - lo
    for kind, name in (("i", "STOP"), ("C", "messages per round")):
        count = sum(1 for e in evs if e["ph"] == kind and e["name"] == name)
        if count != rounds:
            problems.append(f"{count} {name!r} events for {rounds} rounds")
    return problems


@pytest.fixture
def check_trace():
    """:func:`trace_problems`: the problems of a trace-event JSON object against a run's events rows."""
    return trace_problems
