"""Round policy ``code.wait_for = k`` (docs/protocols.md#wait_for), simulator: ignoring stragglers, ErasureHead."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from helpers import simulate_estimates, z_scores

from mpigc.codes import combine, make_scheme
from mpigc.config import load_config
from mpigc.core.entries import plan_entries
from mpigc.core.inputs import build_delays
from mpigc.core.policy import LastMessages, RoundPolicy, last_sends
from mpigc.errors import InputError
from mpigc.sim import Network, Simulator

M = 8


def _config(*overrides: str, m: int = M):
    return load_config(None, [f"code.workers={m}", "code.load=2", "workload.samples=160", "workload.features=4",
                              *overrides])


def _rounds(config) -> np.ndarray:
    """Rows of every round of the config's single entry, as an array (the simulator's own order)."""
    delays = build_delays(config, config.codes[0].workers)
    (entry,) = plan_entries(config, config.codes[0].workers, delays)
    sim = Simulator(entry.scheme, delays, entry.policy, network=Network(), detail="full")
    rows: list = []
    sim.run(config.run.rounds, lambda batch: rows.extend(batch.rounds))
    return np.array(rows, dtype=float)


@pytest.mark.parametrize("scheme", ["uncoded", "frc", "crc", "partial", "poly", "nested", "stochastic"])
@pytest.mark.parametrize("delays", ["delays.failures=0.2", "delays.model=\"pareto\""])
def test_waiting_for_everyone_changes_nothing(scheme, delays):
    extra = ["code.ladder=[0, 1]"] if scheme == "nested" else []
    base = [f'code.scheme="{scheme}"', "run.rounds=300", delays, *extra]
    if scheme == "uncoded":
        base.append("code.rescale=true")
    today, waiting = _rounds(_config(*base)), _rounds(_config(*base, f"code.wait_for={M}"))
    assert np.array_equal(today, waiting, equal_nan=True)  # bit for bit


def test_the_round_ends_at_the_kth_worker_to_finish():
    slow = "delays.slow=[0, 3, 5]"
    for k, latency in [(5, 0.01), (6, 0.03), (7, 0.03)]:
        rows = _rounds(_config('code.scheme="uncoded"', 'delays.model="constant"', slow, "delays.factor=3",
                               "run.rounds=5", f"code.wait_for={k}"))
        assert np.allclose(rows[:, 1], latency)  # one chunk each: 5 workers take 0.01 s, the slow three 0.03 s
        assert np.all(rows[:, 2] == (0 if k >= 6 else 1))  # 6 and 7 wait for the (tied) slow three
        assert np.all(rows[:, 3] == (5 if k == 5 else 8))  # ties at the k-th arrival are heard together


def test_the_rule_counts_a_workers_last_message_only():
    scheme = make_scheme(_config('code.scheme="partial"', "code.load=3").codes[0], M, 1)
    last = last_sends(scheme)
    assert last.tolist() == [2] * M  # partial streams after every chunk: only the third is the last
    waiting = LastMessages(2, last)
    for w, p in [(0, 0), (0, 1), (1, 0), (1, 1), (2, 1)]:
        waiting.add(w, p)
    assert not waiting.done
    waiting.add(1, 2)
    assert not waiting.done
    waiting.add(4, 2)
    assert waiting.done and waiting.finished == {1, 4}
    arrival = np.full((1, M, 3), np.inf)
    arrival[0, :, :] = np.arange(M)[:, None] + np.array([0.1, 0.2, 0.3])
    policy = RoundPolicy(False, np.inf, 100.0, wait_for=2)
    assert policy.stop_times(scheme, arrival, np.array([np.inf]))[0] == pytest.approx(1.3)
    assert RoundPolicy(False, np.inf, 100.0).stop_times(scheme, arrival, np.array([np.inf]))[0] == 100.0


IGNORE = ('code.scheme="uncoded"', "code.rescale=true", "code.wait_for=6", "run.verify=true", "run.rounds=1500")


@pytest.mark.parametrize("delays", [("delays.shift=0", "code.chunks=16"), ('delays.model="pareto"', "run.seed=5")])
def test_ignoring_stragglers_is_unbiased_under_iid_delays(delays):
    estimates, truth, status = simulate_estimates(_config(*IGNORE, *delays))
    assert np.all(status == 1)  # the fastest 6 of 8 never decode exactly
    z = z_scores(estimates, truth)
    assert np.all(np.abs(z[:1]) < 3) and np.all(np.abs(z[1:]) < 3.5), z
    # without the m/k rescaling the same test sees the bias (mean 6/8 of the gradient)
    biased, truth, _ = simulate_estimates(_config(*IGNORE, *delays, "code.rescale=false"))
    assert abs(z_scores(biased, truth)[0]) > 10


def test_erasurehead_sums_the_groups_heard_and_tolerates_load_minus_one():
    # k = m - (load - 1): any k workers cover every group of frc, so every round is exact
    rows = _rounds(_config('code.scheme="frc"', "code.wait_for=7", "run.rounds=200"))
    assert np.all(rows[:, 2] == 0) and np.all(rows[:, 3] <= 7)  # (often earlier: every group heard)
    # k = 3 < 4 groups: never exact; the coefficient error is the share of chunks of the groups not heard
    rows = _rounds(_config('code.scheme="frc"', "code.wait_for=3", "run.rounds=200"))
    assert np.all(rows[:, 2] == 1) and np.all(rows[:, 3] == 3)
    assert set(np.round(rows[:, 5] * M).tolist()) <= {2, 4} and np.any(rows[:, 5] == 0.25)
    for rescale in ("false", "true"):
        scheme = make_scheme(_config('code.scheme="frc"', f"code.rescale={rescale}").codes[0], M, 1)
        rng = np.random.default_rng(7)
        grads = {i: rng.standard_normal(5) for i in range(M)}
        for heard in ([0, 2, 3], [1], [0, 1, 2, 3, 4, 5, 6, 7], [6, 7, 4]):
            decoder = scheme.decoder()
            for w in heard:
                decoder.add(w, 1)
            comb = decoder.combination()
            groups = {w // 2 for w in heard}
            scale = 4 / len(groups) if rescale == "true" else 1.0
            expected = scale * sum(grads[i] for i in range(M) if i // 2 in groups)
            got = combine(comb, {k: scheme.encode(*k, grads) for k in comb.keys}, 5)
            assert np.allclose(got, expected)
            assert comb.exact == (len(groups) == 4)
            assert comb.coef_error == pytest.approx((2 * (4 - len(groups)) + 2 * len(groups) * (scale - 1) ** 2) / M)


@pytest.mark.parametrize("value", [0, M + 1, -3])
def test_wait_for_outside_one_to_m_is_refused(value):
    with pytest.raises(InputError) as err:
        _config(f"code.wait_for={value}")
    assert err.value.key == "code.wait_for"


def test_wait_for_on_a_sequential_scheme_is_refused():
    with pytest.raises(InputError) as err:
        _config('code.scheme="sr-sgc"', "code.wait_for=3")
    assert err.value.key == "code.wait_for"


def test_bad_wait_for_exits_2_with_one_line(tmp_path):
    out = tmp_path / "r.h5"
    proc = subprocess.run([sys.executable, "-m", "mpigc", "simulate", "--out", str(out), "--set", "code.workers=4",
                           "--set", "code.wait_for=5"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "code.wait_for: must be at most code.workers = 4" in lines[0], proc.stderr
    assert not out.exists()
