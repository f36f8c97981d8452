"""Workloads: chunk sums, gradients, seeding, descent and user datasets."""
from __future__ import annotations

import dataclasses
import re

import h5py
import numpy as np
import pytest

from mpigc import results
from mpigc.config import WorkloadConfig
from mpigc.errors import InputError
from mpigc.workloads import WORKLOADS, gradient_dim, make_workload
from mpigc.workloads.data import NPZ_TO_NPY

MODELS = sorted(WORKLOADS)
SMALL = dict(samples=60, features=5, hidden=4)


def small(model: str, **kw) -> WorkloadConfig:
    return WorkloadConfig(model=model, **{**SMALL, **kw})


def point(wl, seed: int = 11) -> np.ndarray:
    """A generic parameter vector (away from the symmetric initial point)."""
    return wl.initial_model() + 0.3 * np.random.default_rng(seed).standard_normal(wl.dim)


def all_data(wl) -> tuple[np.ndarray, np.ndarray]:
    parts = [wl.chunk_data(c) for c in range(wl.chunks)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def write(path, X=None, y=None):
    """Write X and/or y to ``path``: a .h5 file, a .npz, or else a directory of X.npy and y.npy."""
    arrays = {k: v for k, v in (("X", X), ("y", y)) if v is not None}
    if str(path).endswith(".npz"):
        np.savez(path, **arrays)
    elif str(path).endswith(".h5"):
        with h5py.File(path, "w") as f:
            for k, v in arrays.items():
                f[k] = v
    else:
        path.mkdir()
        for k, v in arrays.items():
            np.save(path / f"{k}.npy", v)
    return str(path)


def build(dataset: str, chunks: int, model: str = "least-squares", **kw):
    """Build a workload on a user dataset, reading .h5 through mpigc.results as the backends do."""
    return make_workload(WorkloadConfig(model=model, dataset=dataset), chunks, seed=0, reader=results, **kw)


def regression_data(n: int = 50, d: int = 4, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    return X, (X @ rng.standard_normal(d) > 0).astype(float)


# ----------------------------------------------------------------------------- gradients

@pytest.mark.parametrize("model", MODELS)
def test_chunk_gradients_sum_to_full_gradient(model):
    wl = make_workload(small(model), 7, seed=3)
    theta = point(wl)
    grads, losses = zip(*(wl.chunk_gradient(theta, c) for c in range(7)))
    full, loss = wl.full_gradient(theta)
    assert rel(np.sum(grads, axis=0), full) <= 1e-12 and abs(sum(losses) - loss) <= 1e-12 * abs(loss)
    # ... and both equal the gradient over all rows at once
    X, y = all_data(wl)
    g_all, f_all = wl.evaluate(theta, X, y)
    assert rel(full, g_all / wl.samples) <= 1e-12 and abs(loss - f_all / wl.samples) <= 1e-12 * abs(loss)
    assert full.shape == (wl.dim,) and wl.name == model


@pytest.mark.parametrize("model", MODELS)
def test_gradient_matches_central_differences(model):
    wl = make_workload(small(model, samples=30, features=4, hidden=3), 3, seed=1)
    theta = point(wl)
    grad, _ = wl.full_gradient(theta)
    h = 1e-6
    fd = np.array([(wl.full_gradient(theta + h * e)[1] - wl.full_gradient(theta - h * e)[1]) / (2 * h)
                   for e in np.eye(wl.dim)])
    assert rel(grad, fd) < 1e-6


def test_mlp_dimension_and_layout():
    cfg = small("mlp", features=6, hidden=5)
    wl = make_workload(cfg, 4, seed=0)
    assert wl.dim == 6 * 5 + 5 + 5 + 1 == gradient_dim(cfg)
    assert np.array_equal(wl.initial_model(), make_workload(cfg, 2, seed=0).initial_model())
    assert not np.array_equal(wl.initial_model(), make_workload(cfg, 4, seed=1).initial_model())


def test_logistic_is_stable_at_large_scores():
    wl = make_workload(small("logistic"), 2, seed=0)
    grad, loss = wl.full_gradient(np.full(wl.dim, 1e4))
    assert np.all(np.isfinite(grad)) and np.isfinite(loss) and loss > 0
    X, y = all_data(wl)
    assert set(np.unique(y)) == {0.0, 1.0}


# ----------------------------------------------------------------------------- seeding

@pytest.mark.parametrize("model", MODELS)
def test_reproducible_by_seed(model):
    a, b, c = (make_workload(small(model), 5, seed=s) for s in (4, 4, 5))
    assert np.array_equal(a.chunk_data(2)[0], b.chunk_data(2)[0])
    assert np.array_equal(a.chunk_data(2)[1], b.chunk_data(2)[1])
    assert not np.array_equal(a.chunk_data(2)[0], c.chunk_data(2)[0])
    assert np.array_equal(a.full_gradient(point(a))[0], b.full_gradient(point(b))[0])


@pytest.mark.parametrize("model", MODELS)
def test_chunks_are_independent(model):
    fresh = make_workload(small(model), 6, seed=2)
    other = make_workload(small(model), 6, seed=2)
    other.chunk_data(2)
    for got, want in zip(other.chunk_data(3), fresh.chunk_data(3)):
        assert np.array_equal(got, want)
    # Only the row count ties a chunk to N: 60/6 and 120/12 both give 10 rows per chunk ...
    doubled = make_workload(small(model, samples=120), 12, seed=2)
    for got, want in zip(doubled.chunk_data(3), fresh.chunk_data(3)):
        assert np.array_equal(got, want)
    # ... and a longer chunk extends a shorter one row by row.
    longer = make_workload(small(model, samples=66), 6, seed=2)
    assert len(longer.chunk_data(3)[0]) == 11
    for got, want in zip(longer.chunk_data(3), fresh.chunk_data(3)):
        assert np.array_equal(got[:10], want)


@pytest.mark.parametrize("model", MODELS)
def test_default_step_descends(model):
    wl = make_workload(WorkloadConfig(model=model), 8, seed=0)
    theta = wl.initial_model()
    _, first = wl.full_gradient(theta)
    losses = []
    for _ in range(50):
        grad, loss = wl.full_gradient(theta)
        losses.append(loss)
        theta = wl.update(theta, grad)
    assert wl.full_gradient(theta)[1] < 0.9 * first
    assert np.all(np.diff(losses) <= 1e-12)


def test_bad_model_and_too_few_samples():
    with pytest.raises(InputError) as err:
        make_workload(small("nope"), 2, seed=0)
    assert err.value.key == "workload.model"
    with pytest.raises(InputError) as err:
        make_workload(small("mlp", samples=3), 4, seed=0)
    assert err.value.key == "workload.samples"


# ----------------------------------------------------------------------------- user data

@pytest.mark.parametrize("ext,order", [("", "C"), ("", "F"), (".h5", "C")])
@pytest.mark.parametrize("model", MODELS)
def test_user_dataset(tmp_path, model, ext, order):
    X, y = regression_data(n=53, d=4)
    X = np.asarray(X, order=order)
    path = write(tmp_path / f"data{ext}", X.astype(np.float32), y)
    cfg = WorkloadConfig(model=model, dataset=path, samples=7, features=99, hidden=3)
    wl = make_workload(cfg, 5, seed=0, reader=results)
    assert (wl.samples, wl.features) == (53, 4) and wl.dim == gradient_dim(cfg, reader=results)
    bounds = np.linspace(0, 53, 6).round().astype(int)
    x3, y3 = wl.chunk_data(3)
    assert np.array_equal(x3, X.astype(np.float32)[bounds[3]:bounds[4]]) and np.array_equal(y3, y[bounds[3]:bounds[4]])
    assert x3.dtype == np.float64 and x3.flags.c_contiguous
    assert set(wl._cache) == {3}  # only the chunk asked for was read
    theta = point(wl)
    full, loss = wl.full_gradient(theta)
    g_all, f_all = wl.evaluate(theta, X.astype(np.float32).astype(float), y)
    assert rel(full, g_all / 53) <= 1e-12 and abs(loss - f_all / 53) <= 1e-12 * loss


def test_h5_column_targets_and_integer_features(tmp_path):
    X = np.arange(24).reshape(8, 3)
    path = write(tmp_path / "d.h5", X, np.ones((8, 1)))
    wl = build(path, 2)
    assert np.array_equal(wl.chunk_data(1)[0], X[4:].astype(float)) and wl.chunk_data(1)[1].shape == (4,)


def test_read_rows(tmp_path):
    path = write(tmp_path / "r.h5", np.arange(12.0).reshape(6, 2), np.zeros(6))
    assert np.array_equal(results.read_rows(path, "X", 4, 9), [[8.0, 9.0], [10.0, 11.0]])
    assert results.read_rows(path, "X", 0, 0).shape == (0, 2)
    with h5py.File(path, "a") as f:
        f["s"] = 3.0
    with pytest.raises(InputError, match="scalar"):
        results.read_rows(path, "s", 0, 1)


GOOD_X, GOOD_Y = regression_data(n=10, d=3)
NAN_X = GOOD_X.copy()
NAN_X[6, 1] = np.inf
NAN_Y = GOOD_Y.copy()
NAN_Y[2] = np.nan

BAD = {  # name: (X, y, model, problem pattern)
    "missing X": (None, GOOD_Y, "least-squares", r"'X'|no X\.npy"),
    "missing y": (GOOD_X, None, "least-squares", r"'y'|no y\.npy"),
    "X 1-D": (GOOD_X[:, 0], GOOD_Y, "least-squares", "2-D"),
    "X 3-D": (GOOD_X.reshape(10, 3, 1), GOOD_Y, "least-squares", "2-D"),
    "X empty columns": (np.zeros((10, 0)), GOOD_Y, "least-squares", "no columns"),
    "y 2-D": (GOOD_X, np.zeros((10, 2)), "least-squares", "1-D"),
    "X longer": (GOOD_X, GOOD_Y[:9], "least-squares", "rows"),
    "X shorter": (GOOD_X[:9], GOOD_Y, "least-squares", "rows"),
    "X non-finite": (NAN_X, GOOD_Y, "least-squares", "non-finite.*row 6"),
    "y non-finite": (GOOD_X, NAN_Y, "least-squares", "non-finite.*row 2"),
    "X text": (np.array([["a"] * 3] * 10), GOOD_Y, "least-squares", "not numeric"),
    "too few rows": (GOOD_X[:3], GOOD_Y[:3], "least-squares", "3 rows cannot fill 4 chunks"),
    "labels not 0/1": (GOOD_X, GOOD_Y * 2, "logistic", r"y in \{0, 1\}"),
}


@pytest.mark.parametrize("ext", ["", ".h5"])
@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_dataset(tmp_path, case, ext):
    X, y, model, pattern = BAD[case]
    if case == "X text" and ext == ".h5":
        X = X.astype("S1")
    path = write(tmp_path / f"bad{ext}", X, y)
    with pytest.raises(InputError, match=pattern) as err:
        build(path, 4, model)
    assert err.value.key == "workload.dataset" and str(err.value).startswith(f"workload.dataset: {path}: ")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name,make", [
    ("missing", None),
    ("missing.h5", None),
    ("notes.txt", lambda p: p.write_text("x")),
    ("broken", lambda p: (p.mkdir(), (p / "X.npy").write_bytes(b"not npy"), np.save(p / "y.npy", np.ones(3)))),
    ("pickled", lambda p: (p.mkdir(), np.save(p / "X.npy", np.array([None] * 3)), np.save(p / "y.npy", np.ones(3)))),
    ("broken.h5", lambda p: p.write_bytes(b"not hdf5")),
    ("folder.h5", lambda p: p.mkdir()),
])
def test_bad_dataset_file(tmp_path, name, make):
    path = tmp_path / name
    if make is not None:
        make(path)
    with pytest.raises(InputError) as err:
        build(str(path), 2)
    assert err.value.key == "workload.dataset" and str(path) in str(err.value) and "\n" not in str(err.value)


def test_unchecked_dataset_fails_at_the_bad_chunk(tmp_path):
    path = write(tmp_path / "nan", NAN_X, GOOD_Y)
    wl = build(path, 2, check=False)
    wl.chunk_data(0)
    with pytest.raises(InputError, match="row 6") as err:
        wl.chunk_data(1)
    assert err.value.key == "workload.dataset"


def test_npy_X_is_memory_mapped(tmp_path):
    path = write(tmp_path / "mm", GOOD_X, GOOD_Y)
    wl = build(path, 2)
    assert isinstance(wl.data._x(0, 10), np.memmap)  # rows come from the file, not a loaded copy
    assert np.array_equal(all_data(wl)[0], GOOD_X)


def test_npz_is_read_whole_and_converts_to_a_mapped_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "old.npz", GOOD_X, GOOD_Y)
    wl = build("old.npz", 2)
    assert np.array_equal(all_data(wl)[0], GOOD_X) and not isinstance(wl.data._x(0, 10), np.memmap)
    command = NPZ_TO_NPY.format(path="old.npz", dir="old")
    exec(re.search(r'python -c "(.*?)"', command)[1], {})  # the documented one line, run as given
    mapped = build("old", 2)
    assert isinstance(mapped.data._x(0, 10), np.memmap)
    assert np.array_equal(all_data(mapped)[0], GOOD_X)


def test_npz_without_y_is_named(tmp_path):
    np.savez(tmp_path / "x_only.npz", X=GOOD_X)
    with pytest.raises(InputError, match=r"^workload\.dataset: .*x_only\.npz: no y in the archive \(it holds: X\)"):
        build(str(tmp_path / "x_only.npz"), 2)


def test_h5_without_a_reader_is_refused(tmp_path):
    path = write(tmp_path / "d.h5", GOOD_X, GOOD_Y)
    with pytest.raises(InputError, match="no reader"):
        make_workload(WorkloadConfig(dataset=path), 2, seed=0)


def test_gradient_dim_needs_no_chunks():
    for model in MODELS:
        cfg = dataclasses.replace(small(model), features=7, hidden=2)
        assert gradient_dim(cfg) == make_workload(cfg, 3, seed=0).dim
