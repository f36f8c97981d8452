"""bcc, batched coupon's collector (docs/protocols.md#bcc): a plan that changes every round, in the simulator.

Draws are checked against ``stream(seed, "bcc", round)`` directly, decodes
against the true gradient and against the sum of the covered batches, and
the vectorised decode times against the per-round decoder.
"""
from __future__ import annotations

import io
import subprocess
import sys
from math import comb

import numpy as np
import pytest

from mpigc.codes import combine, make_scheme
from mpigc.codes.base import coef_error, least_squares_combination
from mpigc.codes.bcc import batch_draws
from mpigc.config import CodeConfig, load_config
from mpigc.core.inputs import build_workload
from mpigc.core.metrics import relative_error
from mpigc.delays import DelayModel
from mpigc.results import read_runs
from mpigc.seeding import stream
from mpigc.sim.driver import simulate


def bcc(m: int, chunks: int, batches: int | None, load: int = 2) -> object:
    return make_scheme(CodeConfig(scheme="bcc", workers=m, chunks=chunks, batches=batches, load=load), m, seed=11)


def rounds_of(overrides: list[str], tmp_path) -> tuple[np.ndarray, dict]:
    config = load_config(None, ['code.scheme="bcc"', *overrides], backend="sim")
    out = str(tmp_path / "r.h5")
    simulate(config, out, log=io.StringIO())
    (run,) = read_runs(out)
    return run.tables["rounds"], run.tables


def coverage_probability(m: int, b: int) -> float:
    """P(m uniform draws from b batches cover every batch), by inclusion-exclusion."""
    return sum((-1) ** k * comb(b, k) * (1 - k / b) ** m for k in range(b + 1))


def test_each_round_draws_from_its_own_stream_uniformly():
    scheme = bcc(6, 12, 4)
    counts = np.zeros(4)
    for rnd in range(300):
        draws = stream(11, "bcc", rnd).integers(4, size=6)
        assert np.array_equal(batch_draws(11, rnd, 6, 4), draws)
        assert np.array_equal(batch_draws(11, rnd, 3, 4), draws[:3])  # worker w's draw does not depend on m
        view = scheme.for_round(rnd)
        for w in range(6):
            assert np.array_equal(view.plan.orders[w], np.arange(3 * draws[w], 3 * draws[w] + 3))
            assert np.array_equal(np.flatnonzero(view.plan.assignment[:, w]), view.plan.orders[w])
        np.add.at(counts, draws, 1)
    assert np.array_equal(scheme.plan.orders[0], scheme.for_round(0).plan.orders[0])  # the plan is round 0's
    assert not all(np.array_equal(scheme.for_round(r).plan.orders[0], scheme.plan.orders[0]) for r in range(20))
    assert np.all(np.abs(counts - 450) < 4 * np.sqrt(450 * 0.75))  # 1800 draws, uniform on 4 batches
    assert all(np.array_equal(scheme.held_chunks(w), np.arange(12)) for w in range(6))


@pytest.mark.parametrize("name", ["uncoded", "frc", "crc", "partial"])
def test_fixed_plan_schemes_keep_one_plan(name):
    scheme = make_scheme(CodeConfig(scheme=name, workers=8, load=2), 8, seed=3)
    assert scheme.round_orders(5) is None and scheme.for_round(5) is scheme
    arrival = np.random.default_rng(0).exponential(size=(7, 8, scheme.plan.max_load))
    arrival[~np.broadcast_to(scheme.send_mask(), arrival.shape)] = np.inf
    assert np.array_equal(scheme.round_decode_times(arrival, range(40, 47)), scheme.decode_times(arrival))
    assert all(np.array_equal(scheme.held_chunks(w), scheme.plan.orders[w]) for w in range(8))


def test_decoder_sums_the_first_message_of_every_covered_batch():
    m, n, b = 8, 12, 4
    scheme = bcc(m, n, b)
    rng = np.random.default_rng(2)
    target = np.ones((1, n))
    exact_seen = approx_seen = 0
    for rnd in range(60):
        view = scheme.for_round(rnd)
        grads = {i: rng.standard_normal(9) * 10.0 ** rng.uniform(-2, 2) for i in range(n)}
        batch_sum = [sum(grads[i] for i in range(3 * q, 3 * q + 3)) for q in range(b)]
        heard = list(rng.permutation(m)[: rng.integers(0, m + 1)])
        decoder, vectors = view.decoder(), {}
        for w in heard:
            (last,) = view.sends_after(w)  # one message, after the batch's last chunk
            vectors[(w, last)] = view.encode(w, last, grads)
            decoder.add(w, last)
        comb_ = decoder.combination()
        draws = batch_draws(11, rnd, m, b)
        covered = sorted({int(draws[w]) for w in heard})
        expected = sum((batch_sum[q] for q in covered), np.zeros(9))
        assert np.allclose(combine(comb_, vectors, 9), expected, rtol=1e-12, atol=1e-12)
        assert comb_.exact == decoder.exact == (len(covered) == b)
        assert comb_.coef_error == pytest.approx((b - len(covered)) / b, abs=1e-15)
        if comb_.keys:  # the definition of coef_error (§5) and the least-squares decode agree
            rows = np.array([view.message_row(*k) for k in comb_.keys])
            assert comb_.coef_error == pytest.approx(coef_error(comb_.weights @ rows, target), abs=1e-12)
            best = least_squares_combination(rows, comb_.keys, n, 1)
            assert comb_.coef_error == pytest.approx(best.coef_error, abs=1e-9)
        if comb_.exact:
            exact_seen += 1
            assert relative_error(combine(comb_, vectors, 9), sum(grads.values())) <= 1e-12
        else:
            approx_seen += 1
    assert exact_seen > 5 and approx_seen > 5


def test_vectorised_decode_times_equal_the_decoder():
    m, scheme = 7, bcc(7, 6, 3)  # batches of 2 chunks
    rng = np.random.default_rng(4)
    rounds = range(100, 140)
    arrival = np.where(rng.random((len(rounds), m, 2)) < 0.15, np.inf, rng.exponential(size=(len(rounds), m, 2)))
    arrival[:, :, 0] = np.inf  # one message, after the last of its 2 chunks
    times = scheme.round_decode_times(arrival, rounds)
    assert np.isfinite(times).sum() > 3 and np.isinf(times).sum() > 3
    for j, rnd in enumerate(rounds):
        decoder = scheme.for_round(rnd).decoder()
        for w in np.argsort(arrival[j, :, 1], kind="stable"):
            if not np.isfinite(arrival[j, w, 1]):
                break
            before = decoder.exact
            decoder.add(int(w), 1)
            if decoder.exact and not before:
                assert arrival[j, w, 1] == times[j]
        assert decoder.exact == np.isfinite(times[j])
    assert np.array_equal(scheme.decode_times(arrival[:1]), scheme.round_decode_times(arrival[:1], range(1)))


def test_enough_workers_decode_exactly_in_most_rounds(tmp_path):
    m, b, rounds = 16, 4, 400
    r, _ = rounds_of([f"code.workers={m}", f"code.chunks={2 * m}", f"code.batches={b}", f"run.rounds={rounds}",
                      "run.verify=true", "workload.features=40", "workload.samples=320"], tmp_path)
    exact = r["status"] == 0
    assert m >= b * sum(1 / k for k in range(1, b + 1))
    assert np.nanmax(r["grad_error"][exact]) <= 1e-9
    assert np.all(r["coef_error"][exact] == 0)
    p = coverage_probability(m, b)  # no failures: a round is exact iff the m draws cover every batch
    assert abs(exact.mean() - p) < 4 * np.sqrt(p * (1 - p) / rounds) + 0.01
    assert exact.mean() > 0.9
    assert r["loss"][-1] < 0.5 * r["loss"][0]


def test_few_workers_end_approximate_with_the_covered_batches(tmp_path):
    m, n, b, rounds = 4, 8, 4, 60
    overrides = [f"code.workers={m}", f"code.chunks={n}", f"code.batches={b}", f"run.rounds={rounds}",
                 "run.verify=true", "workload.features=30", "workload.samples=160", "delays.failures=0.2",
                 "run.round_timeout=0.5", 'run.detail="full"', "workload.step=0.05"]
    r, tables = rounds_of(overrides, tmp_path)
    config = load_config(None, ['code.scheme="bcc"', *overrides], backend="sim")
    wl = build_workload(config, n)
    failed = DelayModel(config.delays, config.run.seed, m).failed
    model = wl.initial_model()
    events = tables["events"]
    approx = 0
    for row in r:
        rnd = int(row["round"])
        alive = [w for w in range(m) if not failed(rnd)[w]]
        draws = batch_draws(config.run.seed, rnd, m, b)
        covered = sorted({int(draws[w]) for w in alive})
        grads = [wl.chunk_gradient(model, i)[0] for i in range(n)]
        truth = np.sum(grads, axis=0)
        estimate = sum((grads[i] for q in covered for i in range(2 * q, 2 * q + 2)), np.zeros(wl.dim))
        assert row["coef_error"] == pytest.approx((b - len(covered)) / b, abs=1e-15)
        assert row["grad_error"] == pytest.approx(relative_error(estimate, truth), rel=1e-6, abs=1e-12)
        mine = events[events["round"] == rnd]
        used = sorted(int(draws[w]) for w in mine["worker"][mine["used"]])
        assert used == covered  # one message per covered batch enters the decode
        if len(covered) < b:
            approx += 1
            assert row["status"] == (1 if covered else 2) and row["latency"] == 0.5
            assert row["messages"] == len(alive)  # everyone alive was heard before the timeout
        else:
            assert row["status"] == 0 and row["grad_error"] <= 1e-9
        if covered:
            model = wl.update(model, estimate)
    assert approx > 0.7 * rounds


def test_fast_rows_equal_the_decoder_rows(tmp_path):
    base = ["code.workers=12", "code.chunks=24", "code.batches=6", "run.rounds=300", "delays.failures=0.05"]
    (tmp_path / "fast").mkdir()
    (tmp_path / "slow").mkdir()
    fast, _ = rounds_of(base, tmp_path / "fast")
    slow, _ = rounds_of(base + ['run.detail="workers"'], tmp_path / "slow")  # runs the decoder every round
    assert 0 < np.mean(fast["status"] == 0) < 1
    for field in ("round", "latency", "status", "messages", "chunks_done", "coef_error"):
        assert np.array_equal(fast[field], slow[field]), field


@pytest.mark.parametrize("args,key", [
    (["--set", "code.batches=3"], "code.batches"),   # N = 8 is not a multiple of 3
    (["--set", "code.batches=0"], "code.batches"),
    (["--set", "code.batches=9"], "code.batches"),
    (["--set", "code.batches=-2"], "code.batches"),
    (["--set", "code.parts=2"], "code.parts"),
    (["--set", 'code.ordering="random"'], "code.ordering"),
])
def test_bad_batches_are_one_line_exit_2(tmp_path, args, key):
    out = tmp_path / "r.h5"
    proc = subprocess.run([sys.executable, "-m", "mpigc", "simulate", "--set", 'code.scheme="bcc"', "--set",
                           "code.workers=8", "--set", "code.load=2", *args, "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and key in lines[0] and "Traceback" not in proc.stderr, proc.stderr
    assert not out.exists()


def test_batches_default_to_load_sized_batches():
    assert bcc(8, 8, None, load=2).batches == 4
    assert bcc(9, 9, None, load=2).batches == 3  # the smallest divisor of 9 that is >= 2 is 3
    assert bcc(5, 5, None, load=2).batches == 1
    assert bcc(8, 8, 8).plan.max_load == 1
