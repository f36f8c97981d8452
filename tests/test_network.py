"""The ``[network]`` model: rank 0's shared ingest link, its fit, and that the defaults change nothing."""
from __future__ import annotations

import io
import os
import subprocess
import sys

import numpy as np
import pytest

from mpigc import results
from mpigc.config import load_config
from mpigc.core.network import Network, fit_ingest
from mpigc.sim.driver import simulate


def test_shared_link_serialises_simultaneous_messages():
    net = Network(latency=1e-3, bandwidth=1e6, shared_ingest=True)
    ready = np.zeros((1, 4, 1))
    got = net.arrivals(ready, 2000)  # 2 ms on the link each
    assert np.allclose(np.sort(got.ravel()), [3e-3, 5e-3, 7e-3, 9e-3], rtol=0, atol=1e-15)
    # ties go in worker order
    assert np.all(np.diff(got.ravel()) > 0)


def test_shared_link_waits_only_when_busy():
    net = Network(latency=0.5, bandwidth=1.0, shared_ingest=True)  # 1 byte = 1 s on the link
    # ready at 0, 10 (link idle again), 10.2 (queues behind the second), inf (never sent)
    ready = np.array([[[0.0], [10.0], [10.2], [np.inf]]])
    got = net.arrivals(ready, 1.0).ravel()
    assert got[0] == pytest.approx(1.5)  # latency + transfer
    assert got[1] == pytest.approx(11.5)  # the link was free: no wait
    assert got[2] == pytest.approx(12.5)  # waits for the link (free at 11.5), then 1 s
    assert got[3] == np.inf


def test_independent_links_do_not_queue():
    net = Network(latency=1e-3, bandwidth=1e6)
    got = net.arrivals(np.zeros((2, 3, 2)), 2000)
    assert np.all(got == 1e-3 + 2000 / 1e6)


def test_rounds_are_independent_and_order_is_by_ready_time():
    net = Network(latency=0.0, bandwidth=1.0, shared_ingest=True)
    ready = np.array([[[3.0], [0.0]], [[0.0], [0.0]]])
    got = net.arrivals(ready, 2.0)
    assert got[0].ravel().tolist() == [5.0, 2.0]  # worker 1 is ready first and goes first
    assert got[1].ravel().tolist() == [2.0, 4.0]  # the second round starts with the link free


@pytest.mark.parametrize("latency", [0.0, 2e-3])
def test_infinite_bandwidth_makes_both_rules_identical(latency):
    rng = np.random.default_rng(1)
    ready = rng.exponential(size=(50, 8, 3))
    ready[rng.random(ready.shape) < 0.1] = np.inf
    a = Network(latency, 0.0, shared_ingest=True).arrivals(ready, 8e6)
    b = Network(latency, 0.0, shared_ingest=False).arrivals(ready, 8e6)
    assert np.array_equal(a, b)


def test_fit_recovers_latency_and_bandwidth():
    rng = np.random.default_rng(0)
    rank = np.tile(np.arange(1, 9), 5)
    nbytes = np.repeat([72.0, 8e3, 8e4, 8e5, 8e6], 8)
    seconds = 3e-4 + rank * nbytes / 2e9
    fit = fit_ingest(rank, nbytes, seconds * (1 + 0.01 * rng.standard_normal(seconds.size)))
    assert fit.latency == pytest.approx(3e-4, rel=0.05)
    assert fit.bandwidth == pytest.approx(2e9, rel=0.05)
    assert fit.gap == pytest.approx(0.0, abs=2e-6)
    assert fit.rel_residual < 0.03 and fit.points == 40


def test_fit_separates_the_per_message_gap():
    rank = np.tile(np.arange(1, 9), 4)
    nbytes = np.repeat([72.0, 8e4, 8e5, 8e6], 8)
    fit = fit_ingest(rank, nbytes, 1e-3 + rank * (1.5e-3 + nbytes / 7e8))
    assert (fit.latency, fit.gap, fit.bandwidth) == pytest.approx((1e-3, 1.5e-3, 7e8), rel=1e-6)
    # the rule the simulator applies reproduces what was fitted
    net = Network(fit.latency, fit.bandwidth, shared_ingest=True, gap=fit.gap)
    got = np.sort(net.arrivals(np.zeros((1, 8)), 8e5).ravel())
    assert np.allclose(got, fit.seconds(np.arange(1, 9), 8e5), rtol=1e-9)


def test_fit_with_one_sender_has_no_gap():
    fit = fit_ingest(np.ones(3), np.array([72.0, 8e3, 8e6]), 2e-4 + np.array([72.0, 8e3, 8e6]) / 1e9)
    assert fit.gap == 0.0 and fit.bandwidth == pytest.approx(1e9, rel=1e-6)


def test_gap_holds_the_shared_link():
    net = Network(latency=0.0, bandwidth=0.0, shared_ingest=True, gap=1e-3)  # infinite bandwidth, gap only
    got = net.arrivals(np.zeros((1, 3)), 8e6).ravel()
    assert np.allclose(got, [1e-3, 2e-3, 3e-3], rtol=0, atol=1e-15)
    assert Network(latency=0.0, gap=1e-3).arrivals(np.zeros((1, 3)), 8e6).tolist() == [[0.0, 0.0, 0.0]]


def test_fit_refuses_a_single_size():
    with pytest.raises(ValueError):
        fit_ingest(np.ones(3), np.full(3, 100.0), np.full(3, 1e-3))


def _latencies(overrides: list[str], tmp_path, name: str) -> dict[str, np.ndarray]:
    out = str(tmp_path / f"{name}.h5")
    simulate(load_config(None, overrides, backend="sim"), out, log=io.StringIO())
    return {r.name: r.tables["rounds"] for r in results.read_runs(out)}


SCHEMES = 'code.scheme=["partial", "crc", "uncoded", {scheme = "partial", transport = "request", name = "request"}]'


def test_defaults_are_bit_identical_to_the_independent_rule(tmp_path):
    base = [SCHEMES, "code.workers=8", "run.rounds=200", "delays.failures=0.05", "network.latency=1e-3"]
    a = _latencies(base, tmp_path, "a")
    b = _latencies(base + ["network.shared_ingest=false"], tmp_path, "b")
    c = _latencies(base + ["network.shared_ingest=true"], tmp_path, "c")  # infinite bandwidth: nothing queues
    assert len(a) == 4
    for run in a:
        assert a[run].tobytes() == b[run].tobytes() == c[run].tobytes(), run


def test_shared_ingest_slows_rounds_by_the_queue(tmp_path):
    base = ['code.scheme="crc"', "code.workers=8", "run.rounds=300", "delays.shift=0.0", "network.latency=1e-4",
            "workload.features=100000", "network.bandwidth=1e9"]
    alone = _latencies(base, tmp_path, "alone")["crc"]
    shared = _latencies(base + ["network.shared_ingest=true"], tmp_path, "shared")["crc"]
    exact = (alone["status"] == 0) & (shared["status"] == 0)
    assert exact.sum() == 300
    gap = shared["latency"] - alone["latency"]
    transfer = 8 * (100000 + 1 + 9) / 1e9
    assert np.all(gap >= -1e-12)
    # crc decodes from 7 of 8 messages: at most 6 transfers queued ahead of the decoding one
    assert np.all(gap <= 6 * transfer + 1e-12) and np.any(gap > 0.5 * transfer)


def _mpigc(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "HYDRA_", "MPI_LOCALNRANKS"))}
    return subprocess.run([sys.executable, "-m", "mpigc", *args], capture_output=True, text=True, timeout=120,
                          env=env)


def test_probe_without_network_is_refused_in_one_line():
    proc = _mpigc("probe")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "not built yet" in proc.stderr and "--network" in proc.stderr


def test_probe_network_on_one_rank_is_bad_input(tmp_path):
    out = tmp_path / "net.toml"
    proc = _mpigc("probe", "--network", "--out", str(out))
    assert proc.returncode == 2 and "needs at least 2 ranks" in proc.stderr
    assert proc.stderr.count("\n") == 1 and not out.exists()
