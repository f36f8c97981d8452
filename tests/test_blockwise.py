"""Blockwise chunk gradients and the stop checks of a worker (serial: no ranks needed)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from mpigc.config import WorkloadConfig
from mpigc.mpi.protocol import BLOCK_TIME, sleep_until
from mpigc.mpi.worker import MIN_BLOCK_ROWS, rows_per_block
from mpigc.workloads import WORKLOADS, make_workload

MODELS = sorted(WORKLOADS)


def workload(model: str, samples: int = 46, chunks: int = 3):
    wl = make_workload(WorkloadConfig(model=model, samples=samples, features=6, hidden=3), chunks, seed=4)
    return wl, wl.initial_model() + 0.3 * np.random.default_rng(2).standard_normal(wl.dim)


def recorded(wl) -> list[int]:
    """Make ``wl.evaluate`` record the row count of every call; return the record."""
    sizes: list[int] = []
    evaluate = wl.evaluate

    def spy(model, x, y):
        sizes.append(len(y))
        return evaluate(model, x, y)

    wl.evaluate = spy
    return sizes


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("block_rows", [1, 2, 5, 14])
def test_blocks_sum_to_the_chunk_gradient(model, block_rows):
    wl, theta = workload(model)
    for chunk in range(wl.chunks):
        grad, loss = wl.chunk_gradient(theta, chunk)
        got = wl.chunk_gradient_blocks(theta, chunk, block_rows)
        assert got is not None
        assert np.linalg.norm(got[0] - grad) <= 1e-13 * np.linalg.norm(grad)
        assert abs(got[1] - loss) <= 1e-13 * abs(loss)


@pytest.mark.parametrize("model", MODELS)
def test_one_block_is_the_unblocked_gradient_bit_for_bit(model):
    wl, theta = workload(model)
    rows = wl.chunk_rows(0)
    grad, loss = wl.chunk_gradient(theta, 0)
    for block_rows in (None, rows, rows + 1, 10**9):
        got = wl.chunk_gradient_blocks(theta, 0, block_rows, should_stop=lambda: True)
        assert got is not None and np.array_equal(got[0], grad) and got[1] == loss


def test_blocks_are_near_equal_and_within_the_limit():
    wl, theta = workload("least-squares", samples=31, chunks=2)  # chunks of 16 and 15 rows
    rows = wl.chunk_rows(0)
    assert rows == len(wl.chunk_data(0)[1]) == 16
    for block_rows in (1, 3, 5, 7, 15):
        sizes = recorded(wl)
        wl.chunk_gradient_blocks(theta, 0, block_rows)
        assert sum(sizes) == rows and len(sizes) == math.ceil(rows / block_rows)
        assert max(sizes) <= block_rows and max(sizes) - min(sizes) <= 1
        del wl.evaluate


def test_should_stop_is_asked_between_blocks_only():
    wl, theta = workload("logistic")
    rows = wl.chunk_rows(1)
    calls = []
    got = wl.chunk_gradient_blocks(theta, 1, 4, should_stop=lambda: calls.append(1) or False)
    assert got is not None and len(calls) == math.ceil(rows / 4) - 1


@pytest.mark.parametrize("stop_at", [1, 2, 3])
def test_a_stop_abandons_the_chunk_before_the_next_block(stop_at):
    wl, theta = workload("mlp")
    calls = []
    sizes = recorded(wl)

    def should_stop() -> bool:
        calls.append(1)
        return len(calls) >= stop_at

    assert wl.chunk_gradient_blocks(theta, 2, 3, should_stop) is None
    assert len(calls) == stop_at and len(sizes) == stop_at  # the block after the stop never ran


def test_rows_per_block_targets_the_block_time():
    assert rows_per_block(BLOCK_TIME / 40) == 40
    assert rows_per_block(1e-9) == int(BLOCK_TIME / 1e-9)
    assert rows_per_block(10.0) == MIN_BLOCK_ROWS  # rows slower than a block: the floor
    assert rows_per_block(10.0, least=1) == 1
    assert rows_per_block(0.0) is None and rows_per_block(float("nan")) is None
    assert rows_per_block(1e-3, target=1e-1) == 100


def test_sleep_until_checks_for_a_stop_once_when_no_time_is_left():
    clock = iter(range(100)).__next__  # every reading is later than the deadline
    calls = []
    assert sleep_until(-1.0, clock, lambda: calls.append(1) or False) is False
    assert len(calls) == 1
    assert sleep_until(-1.0, clock, lambda: True) is True


def test_sleep_until_sleeps_to_the_deadline_and_notices_a_stop():
    import time

    calls = []
    start = time.perf_counter()
    assert sleep_until(start + 0.01, time.perf_counter, lambda: calls.append(1) or False) is False
    assert time.perf_counter() - start >= 0.01 and len(calls) >= 2  # once per slice, once at the deadline
    start = time.perf_counter()
    stops = iter([False, False, True])
    assert sleep_until(start + 10.0, time.perf_counter, lambda: next(stops)) is True
    assert time.perf_counter() - start < 1.0
