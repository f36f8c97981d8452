"""Large gradients without the MPI runtime: float32 in the simulator, the timeout rule, the step rule, no copies.

The MPI side of float32 is ``test_float32_mpi.py``; the benchmark against
the minimal loop is ``benchmarks/large_gradients.py``.
"""
from __future__ import annotations

import io
import tracemalloc
from types import SimpleNamespace

import numpy as np
import pytest

from mpigc.codes import make_scheme
from mpigc.codes.inplace import add_scaled, scratch_for, step_into
from mpigc.config import load_config
from mpigc.core.inputs import build_delays
from mpigc.core.metrics import EXACT_RTOL
from mpigc.core.payload import CONTROL_HEADER, RESULT_HEADER, pack, pack_into, packed_part_length
from mpigc.core.policy import RoundPolicy, auto_timeout, round_message_seconds
from mpigc.errors import InputError
from mpigc.results import read_runs
from mpigc.sim.driver import simulate
from mpigc.workloads import make_workload

SCHEMES = ('["crc", "uncoded", {scheme = "partial", parts = 2, name = "p2"}, '
           '{scheme = "poly", parts = 2, name = "poly2"}]')


def _simulate(tmp_path, dtype: str) -> dict:
    config = load_config(None, ["run.rounds=12", "run.verify=true", 'run.detail="full"', "code.load=2",
                                f"code.scheme={SCHEMES}", "workload.features=3000", "workload.samples=400",
                                f'workload.dtype="{dtype}"'], backend="sim")
    out = str(tmp_path / f"{dtype}.h5")
    simulate(config, out, log=io.StringIO())
    return {run.name: run for run in read_runs(out)}


def test_float32_simulator_exact_and_half_the_bytes(tmp_path):
    runs32, runs64 = _simulate(tmp_path, "float32"), _simulate(tmp_path, "float64")
    assert list(runs32) == ["crc", "uncoded", "p2", "poly2"] == list(runs64)
    for name, run in runs32.items():
        rounds = run.tables["rounds"]
        assert len(rounds) == 12
        exact = rounds["status"] == 0
        assert exact.sum() >= 6, name
        err = rounds["grad_error"][exact]
        assert np.all(err <= EXACT_RTOL["float32"]), (name, err.max())
        # float32 rounding is real: a float64 tolerance would not hold for every scheme's rounds
        events32, events64 = run.tables["events"], runs64[name].tables["events"]
        assert len(events32) > 0 and len(events32) == len(events64)
        assert np.array_equal(2 * events32["nbytes"], events64["nbytes"]), name
        # same delays, same decode times: the dtype changes the numbers, not the rounds
        assert np.array_equal(rounds["latency"], runs64[name].tables["rounds"]["latency"])
        assert np.allclose(rounds["loss"], runs64[name].tables["rounds"]["loss"], rtol=1e-4)
    worst = max(float(np.nanmax(r.tables["rounds"]["grad_error"])) for r in runs32.values())
    assert worst > EXACT_RTOL["float64"], "float32 runs decoded to float64 accuracy: not float32 at all?"


def test_float32_workload_types():
    wl = make_workload(SimpleNamespace(model="least-squares", samples=40, features=30, hidden=4, dataset="synthetic",
                                       step=None, noise=0.1, dtype="float32"), 4, seed=3)
    wl64 = make_workload(SimpleNamespace(model="least-squares", samples=40, features=30, hidden=4,
                                         dataset="synthetic", step=None, noise=0.1, dtype="float64"), 4, seed=3)
    model = wl.initial_model()
    assert model.dtype == np.float32
    g, f = wl.chunk_gradient(model, 1)
    assert g.dtype == np.float32
    x32, _ = wl.chunk_data(1)
    x64, _ = wl64.chunk_data(1)
    assert np.array_equal(x32, x64.astype(np.float32))  # the same data, rounded once
    assert wl.update(model, g).dtype == np.float32


def test_float32_limits_refused():
    with pytest.raises(InputError, match="workload.dtype"):
        load_config(None, ['workload.dtype="float32"', f"run.rounds={2**24 + 1}"], backend="sim")
    with pytest.raises(InputError, match="sequential"):
        load_config(None, ['workload.dtype="float32"', 'code.scheme="m-sgc"'], backend="sim")
    with pytest.raises(InputError, match="workload.dtype"):
        load_config(None, ['workload.dtype="float16"'], backend="sim")


# ----------------------------------------------------------------------------- the timeout rule

def _crc(m: int = 8):
    config = load_config(None, ['code.scheme="crc"', f"code.workers={m}", "code.load=2"], backend="sim")
    return config, make_scheme(config.codes[0], m, 0), build_delays(config, m)


def test_auto_timeout_is_the_old_rule_without_compute_or_messages():
    config, scheme, delays = _crc()
    nominal = delays.nominal_seconds(scheme.plan.max_load, 1.0 / scheme.plan.chunks)
    assert auto_timeout(delays, scheme) == 10.0 * nominal  # bit for bit: simulations keep their timeouts
    policy = RoundPolicy.for_scheme(config.codes[0], config.run, delays, scheme)
    assert policy.timeout == 10.0 * nominal


def test_auto_timeout_counts_compute_and_messages():
    config, scheme, delays = _crc()
    nominal = delays.nominal_seconds(2, 1.0 / scheme.plan.chunks)
    assert auto_timeout(delays, scheme, chunk_seconds=0.5, message_seconds=3.0) == pytest.approx(
        10.0 * (nominal + 2 * 0.5 + 3.0))
    # crc: 8 STARTs out, one result per worker in: 16 messages through rank 0
    d, itemsize = 10**7, 8
    start, message = itemsize * (CONTROL_HEADER + d), itemsize * (RESULT_HEADER + d + 1)
    seconds = round_message_seconds(scheme, message, start, latency=1e-3, bandwidth=1e8)
    assert seconds == pytest.approx(16 * 1e-3 + (8 * start + 8 * message) / 1e8)
    assert round_message_seconds(scheme, message, start, latency=0.0, bandwidth=0.0) == 0.0


def test_explicit_timeout_wins():
    config = load_config(None, ['code.scheme="crc"', "run.round_timeout=2.5"], backend="sim")
    scheme = make_scheme(config.codes[0], 8, 0)
    policy = RoundPolicy.for_scheme(config.codes[0], config.run, build_delays(config, 8), scheme,
                                    chunk_seconds=9.0, message_seconds=9.0)
    assert policy.timeout == 2.5


# ----------------------------------------------------------------------------- the step rule

def _workload(model: str, samples: int, features: int, step=None):
    return make_workload(SimpleNamespace(model=model, samples=samples, features=features, hidden=4,
                                         dataset="synthetic", step=step, noise=0.1, dtype="float64"), 8, seed=1)


@pytest.mark.parametrize("model", ["least-squares", "logistic"])
def test_step_does_not_diverge_at_a_million_features(model):
    """samples = 16, d = 10^6: the old step 0.1 took least squares' loss from 0.5 to 3e16 in 5 rounds."""
    wl = _workload(model, 16, 10**6)
    assert 0 < wl.step < 0.1
    theta = wl.initial_model()
    losses = []
    for _ in range(5):
        grad, loss = wl.full_gradient(theta)
        losses.append(loss)
        theta = wl.update(theta, grad)
    losses.append(wl.full_gradient(theta)[1])
    assert len(losses) == 6
    assert all(np.isfinite(losses)) and all(b <= a for a, b in zip(losses, losses[1:])), losses
    # the bound is a bound: 1/step is at least the largest eigenvalue of the Hessian (Gram matrix, 16 x 16)
    x = np.vstack([wl.chunk_data(c)[0] for c in range(8)])
    top = float(np.linalg.eigvalsh(x @ x.T / 16)[-1]) * (0.25 if model == "logistic" else 1.0)
    assert top <= 1.0 / wl.step <= 1.5 * top


def test_step_unchanged_where_the_old_default_was_safe():
    assert _workload("least-squares", 2000, 100).step == 0.1  # the embedded default
    assert _workload("least-squares", 4000, 1000).step == 0.1  # the anchor
    assert _workload("least-squares", 16, 10**6, step=0.3).step == 0.3  # an explicit step is the user's
    assert _workload("mlp", 64, 10).step == 0.1  # no curvature bound: the old default


# ----------------------------------------------------------------------------- no d-sized copies

def _peak_bytes(fn) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_decode_and_step_accumulate_in_place_bit_for_bit():
    rng = np.random.default_rng(0)
    d = 1_000_003
    vecs, weights = rng.standard_normal((3, d)), [0.7, -1.3, 1.0]
    acc = np.zeros(d)
    scratch = scratch_for(acc)
    want = np.zeros(d)
    for w, v in zip(weights, vecs):
        want += w * v  # the expression the master used to evaluate, with its d-sized temporary
    peak = _peak_bytes(lambda: [add_scaled(acc, w, v, scratch) for w, v in zip(weights, vecs)])
    assert np.array_equal(acc, want)
    assert peak < d  # bytes: far below one d-vector of float64 (8 d)
    model = rng.standard_normal(d)
    nxt = np.empty(d)
    peak = _peak_bytes(lambda: step_into(nxt, model, 0.1, acc, scratch))
    assert np.array_equal(nxt, model - 0.1 * acc) and peak < d


def test_encode_into_writes_the_message_without_temporaries():
    config = load_config(None, ['code.scheme="crc"', "code.workers=8", "code.load=2"], backend="sim")
    scheme = make_scheme(config.codes[0], 8, 0)
    d = 500_000
    rng = np.random.default_rng(1)
    grads = {int(c): pack(rng.standard_normal(d), 0.25, 1) for c in scheme.plan.orders[3]}
    position = int(scheme.sends_after(3)[-1])
    out = np.empty(packed_part_length(d, 1))
    peak = _peak_bytes(lambda: scheme.encode_into(3, position, grads, out))
    assert peak < d
    row = scheme.message_row(3, position)
    want = sum(row[c] * grads[c] for c in grads)
    assert np.allclose(out, want, rtol=1e-15, atol=0)
    packed = np.empty_like(out)
    grad = rng.standard_normal(d)
    peak = _peak_bytes(lambda: pack_into(packed, grad, 1.5, 1))
    assert np.array_equal(packed, pack(grad, 1.5, 1)) and peak < d
