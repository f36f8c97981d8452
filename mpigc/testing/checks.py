"""The kit's checks of the decoding contract, each turned into one :class:`Result` line.

See :mod:`mpigc.testing` for what each check means; the instances come from
:mod:`mpigc.testing.decoding`.
"""
from __future__ import annotations

import contextlib
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from mpigc.codes import Combination, make_scheme
from mpigc.codes.base import coef_error
from mpigc.config import load_config
from mpigc.errors import InputError
from mpigc.testing.decoding import (
    COEF_ATOL,
    COEF_RTOL,
    EXACT_RTOL,
    ROUNDS,
    Instance,
    Replay,
    Tally,
    arrival_groups,
    decode,
    implied,
    instance_configs,
    make_instance,
    round_view,
    target,
    truth,
    vectorised_times,
)

PASS, FAIL, SKIP = "PASS", "FAIL", "N/A"
#: approximate decodes checked per round (cut after this fraction of the messages heard before the exact decode)
CUTS = (0.25, 0.6, 1.0)


@dataclass(frozen=True)
class Result:
    """One check's verdict: ``status`` is PASS, FAIL or N/A (not applicable), ``detail`` says what it saw."""

    check: str
    status: str
    detail: str

    @property
    def failed(self) -> bool:
        """Whether the check failed."""
        return self.status == FAIL

    def line(self) -> str:
        """Return the report line: ``PASS  exact decodes: ...``."""
        return f"{self.status:<4}  {self.check}: {self.detail}"


def verdict(check: str, tally: Tally, passed: str) -> Result:
    """PASS with ``passed`` if the tally saw no failure, else FAIL with the first ones."""
    if not tally.failures:
        return Result(check, PASS, passed)
    shown = "; ".join(f for f in tally.failures if f)
    return Result(check, FAIL, f"{len(tally.failures)} failure(s): {shown}")


def check_decoding(instances: list[Instance]) -> list[Result]:
    """Exact decodes, decode times, final blocks and coef_error over every round of every instance."""
    exact, times, blocks, coefs = Tally(), Tally(), Tally(), Tally()
    for inst in instances:
        try:
            vec = vectorised_times(inst.scheme, inst.arrival)
        except Exception as error:  # a crash in the author's code is a failed check, with what it raised
            times.fail(inst.label, f"decode_times raised {type(error).__name__}: {error}")
            vec = np.full(ROUNDS, np.nan)
        for r in range(ROUNDS):
            where = f"{inst.label} round {r}"
            try:
                _check_round(inst, r, vec[r], where, exact, times, blocks, coefs)
            except Exception as error:
                exact.fail(where, f"{type(error).__name__}: {error}")
    n = len(instances)
    return [
        verdict("exact decodes", exact, f"{exact.rounds} exact decodes on {n} instances equal the true gradient "
                                        f"(worst relative error {exact.worst:.1e} <= {EXACT_RTOL:g})"),
        verdict("decode times", times, f"decode_times equals the decoder's first exact moment in {times.rounds} "
                                       "rounds" + ("" if exact.rounds else " (no round ever decodes exactly)")),
        verdict("final blocks", blocks, f"{blocks.rounds} blocks returned by add() keep their weights in the "
                                        "final combination; needs() honoured"),
        verdict("coef_error", coefs, f"{coefs.rounds} combinations (approximate and exact): coef_error matches "
                                     f"||weights·rows - E||²/||E||² (worst gap {coefs.worst:.1e}) and the vectors "
                                     "match the rows"),
    ]


def _check_round(inst: Instance, r: int, t_vec: float, where: str, exact: Tally, times: Tally, blocks: Tally,
                 coefs: Tally) -> None:
    view = round_view(inst.scheme, r)
    groups = arrival_groups(inst.arrival[r])
    replay, first = Replay(view, groups), None
    for j, (_, keys) in enumerate(groups):
        replay.feed(keys)
        if replay.decoder.exact:
            first = j
            break
    t_dec = groups[first][0] if first is not None else np.inf
    times.rounds += 1
    if not (t_dec == t_vec or (np.isfinite(t_dec) and np.isclose(t_dec, t_vec, rtol=1e-12, atol=0))):
        times.fail(where, f"decode_times gives {t_vec:.6g}, the decoder is first exact at {t_dec:.6g}")
    before = first if first is not None else len(groups)  # groups heard while the decoder is not exact
    for upto in sorted({max(1, int(np.ceil(f * before))) for f in CUTS}) if before else []:
        cut = Replay(view, groups, upto)
        comb = cut.decoder.combination()
        if comb.exact:
            exact.fail(where, f"combination().exact after {upto} message group(s), while decoder.exact is False")
        _check_combination(cut, comb, inst, f"{where} after {upto} group(s)", blocks, coefs)
    if first is None:
        return
    comb = replay.decoder.combination()
    if not comb.exact:
        exact.fail(where, "decoder.exact is True but combination().exact is False")
    g = truth(inst.grads)
    err = float(np.linalg.norm(decode(replay, comb, inst.grads) - g) / np.linalg.norm(g))
    exact.rounds += 1
    exact.worst = max(exact.worst, err)
    if not err <= EXACT_RTOL:
        exact.fail(where, f"exact decode off the true gradient by {err:.3g} (relative)")
    _check_combination(replay, comb, inst, where, blocks, coefs)


def _check_combination(replay: Replay, comb: Combination, inst: Instance, where: str, blocks: Tally,
                       coefs: Tally) -> None:
    """coef_error and vectors against the rows; blocks and needs() against the combination."""
    view = replay.view
    plan = view.plan
    rows = replay.rows(comb)
    phi = np.asarray(comb.weights, dtype=float).reshape(plan.parts, len(comb.keys)) @ rows
    err = coef_error(phi, target(plan.chunks, plan.parts))
    gap = abs(err - float(comb.coef_error))
    coefs.rounds += 1
    coefs.worst = max(coefs.worst, gap)
    if not gap <= COEF_ATOL + COEF_RTOL * err:
        coefs.fail(where, f"coef_error reported {comb.coef_error:.9g}, the weights and rows give {err:.9g}")
    est, want = decode(replay, comb, inst.grads), implied(phi, inst.grads, plan.parts)
    scale = np.linalg.norm(want) + np.linalg.norm(truth(inst.grads))
    if not np.linalg.norm(est - want) <= EXACT_RTOL * scale:
        coefs.fail(where, "decoded vectors differ from weights·message_row (encode and message_row disagree)")
    if view.two_phase:
        return
    index = {key: j for j, key in enumerate(comb.keys)}
    in_blocks = set()
    for block in replay.blocks:
        blocks.rounds += 1
        for col, key in enumerate(block.keys):
            in_blocks.add(key)
            if key not in index:
                blocks.fail(where, f"block key {key} is missing from the final combination")
            elif not np.allclose(comb.weights[:, index[key]], block.weights[:, col], rtol=1e-12, atol=1e-14):
                blocks.fail(where, f"block weights of {key} are {block.weights[:, col]}, the combination's "
                                   f"{comb.weights[:, index[key]]}")
    for key in replay.decoder.keys:
        if key in index and key not in in_blocks and not replay.decoder.needs(key) \
                and np.any(comb.weights[:, index[key]] != 0):
            blocks.fail(where, f"needs{key} is False but the combination weighs it")


# -- wall clocks -------------------------------------------------------------------------------------------

CLOCKS = ("time", "perf_counter", "monotonic", "process_time", "thread_time")


def check_clocks(name: str, overrides: list[str], count: int = 3) -> Result:
    """Plan and decode a few instances twice, the second time with scrambled clocks and global RNGs."""
    configs = []
    for label, over in instance_configs(name, overrides, 2):
        try:
            config = load_config(None, over, backend="sim")
            make_scheme(config.codes[0], config.codes[0].workers, config.run.seed)
        except InputError:
            continue
        configs.append((label, config))
        if len(configs) == count:
            break
    if not configs:
        return Result("wall clocks", SKIP, "no instance could be planned")
    np.random.seed(1)
    random.seed(1)
    first = [_fingerprint(config) for _, config in configs]
    cls = type(make_scheme(configs[0][1].codes[0], configs[0][1].codes[0].workers, 1))
    np.random.seed(2)
    random.seed(2)
    with scrambled_clocks(cls):
        second = [_fingerprint(config) for _, config in configs]
    for (label, _), a, b in zip(configs, first, second):
        if len(a) != len(b) or not all(np.array_equal(x, y, equal_nan=True) for x, y in zip(a, b)):
            return Result("wall clocks", FAIL, f"{label}: plan or decodes changed when the clocks and the global "
                                               "random generators changed")
    return Result("wall clocks", PASS, f"{len(configs)} instances planned and decoded twice (clocks jumping, global "
                                       "numpy/random reseeded): identical, bit for bit")


def _fingerprint(config) -> list[np.ndarray]:
    code = config.codes[0]
    scheme = make_scheme(code, code.workers, config.run.seed)
    inst = make_instance("clocks", scheme, config.run.seed)
    out = [np.asarray(scheme.plan.assignment, dtype=float), vectorised_times(scheme, inst.arrival)]
    out += [np.asarray(o, dtype=float) for o in scheme.plan.orders]
    for r in range(ROUNDS):
        groups = arrival_groups(inst.arrival[r])
        replay = Replay(round_view(scheme, r), groups, len(groups))
        comb = replay.decoder.combination()
        out += [np.array(comb.keys, dtype=float).reshape(-1), np.asarray(comb.weights, dtype=float),
                np.array([comb.coef_error, float(comb.exact)]), decode(replay, comb, inst.grads)]
    return out


@contextlib.contextmanager
def scrambled_clocks(cls: type) -> Iterator[None]:
    """Make every clock of :mod:`time` jump by random amounts (also where ``cls``'s modules imported them)."""
    rng = random.Random(7)
    now = [1.7e9]

    def tick() -> float:
        now[0] += rng.uniform(1e-3, 1e3)
        return now[0]

    def tick_ns() -> int:
        return int(tick() * 1e9)

    fakes = {}
    for clock in CLOCKS:
        fakes[clock] = (getattr(time, clock), tick)
        fakes[clock + "_ns"] = (getattr(time, clock + "_ns"), tick_ns)
    patched = [(time, clock, orig) for clock, (orig, _) in fakes.items()]
    by_id = {id(orig): fake for orig, fake in fakes.values()}
    for module in {sys.modules.get(c.__module__) for c in cls.__mro__} - {None, sys.modules["builtins"]}:
        for attr, value in list(vars(module).items()):
            if id(value) in by_id:
                patched.append((module, attr, value))
    try:
        for module, attr, orig in patched:
            setattr(module, attr, by_id[id(orig)])
        yield
    finally:
        for module, attr, orig in patched:
            setattr(module, attr, orig)
