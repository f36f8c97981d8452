"""Tests of mpigc.results: the HDF5 schema, buffered writers, readers and checks."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
from helpers import child_env

import mpigc
from mpigc.errors import InputError
from mpigc.results import (
    EVENTS_DTYPE,
    JOBS_DTYPE,
    ROUNDS_DTYPE,
    TABLES,
    WORKERS_DTYPE,
    ResultFile,
    check_writable,
    provenance,
    read_matrix,
    read_runs,
)


def random_rows(table: str, n: int, seed: int = 0) -> np.ndarray:
    """Return ``n`` random rows of ``table`` with every field filled."""
    rng = np.random.default_rng(seed)
    dtype = TABLES[table]
    rows = np.zeros(n, dtype=dtype)
    for name in dtype.names:
        kind = dtype[name].kind
        if kind == "f":
            rows[name] = rng.standard_normal(n)
        elif kind == "b":
            rows[name] = rng.random(n) < 0.5
        else:
            rows[name] = rng.integers(-100, 100, n)
    return rows


def test_dtypes_keep_published_fields() -> None:
    assert ROUNDS_DTYPE.names == ("round", "latency", "status", "messages", "chunks_done",
                                  "coef_error", "grad_error", "loss", "waitout", "level", "cond",
                                  "eval_loss", "eval_accuracy")
    assert ROUNDS_DTYPE["status"] == np.int8 and ROUNDS_DTYPE["level"] == np.int16
    assert EVENTS_DTYPE["stale"] == np.bool_ and EVENTS_DTYPE["nbytes"] == np.int64
    assert WORKERS_DTYPE.names[-1] == "overrun"
    assert JOBS_DTYPE.names == ("job", "model", "round_done", "t_done", "loss")
    assert set(TABLES) == {"rounds", "events", "workers", "jobs"}


def test_round_trip_every_table_several_flushes(tmp_path) -> None:
    path = tmp_path / "sub" / "r.h5"       # the directory is created by new_run
    rf = ResultFile(path)
    writer = rf.new_run("crc", {"scheme": "crc"}, tables=TABLES)
    expected = {t: [] for t in TABLES}
    for k in range(3):
        for i, table in enumerate(TABLES):
            rows = random_rows(table, 7 + k, seed=10 * k + i)
            writer.append(table, rows[:3])
            writer.append(table, rows[3:])
            expected[table].append(rows)
        writer.flush()
    (run,) = read_runs(path)
    assert run.name == "crc"
    for table in TABLES:
        got = run.tables[table]
        assert got.dtype == TABLES[table]
        np.testing.assert_array_equal(got, np.concatenate(expected[table]))


def test_datasets_chunked_resizable_uncompressed(tmp_path) -> None:
    path = tmp_path / "r.h5"
    ResultFile(path).new_run("a", {}, tables=("rounds", "events"))
    with h5py.File(path, "r") as f:
        for table in ("rounds", "events"):
            ds = f["runs/a"][table]
            assert ds.shape == (0,) and ds.maxshape == (None,)
            assert ds.chunks is not None and ds.compression is None
        assert "workers" not in f["runs/a"]


def test_table_not_declared_is_created_on_flush(tmp_path) -> None:
    path = tmp_path / "r.h5"
    writer = ResultFile(path).new_run("a", {})
    writer.append("jobs", random_rows("jobs", 4))
    writer.flush()
    assert read_runs(path)[0].tables["jobs"].size == 4


def test_missing_extra_fields_get_defaults(tmp_path) -> None:
    kept = [n for n in ROUNDS_DTYPE.names if n not in ("level", "cond")]
    base = np.dtype([(n, ROUNDS_DTYPE[n]) for n in kept])
    rows = np.zeros(2, dtype=base)
    rows["latency"] = [0.1, 0.2]
    writer = ResultFile(tmp_path / "r.h5").new_run("a", {})
    writer.append("rounds", rows)
    writer.append("rounds", [(2, 0.3, 0, 1, 1, 0.0, np.nan, np.nan, 0, 3, 1.5)])
    writer.flush()
    got = read_runs(tmp_path / "r.h5")[0].tables["rounds"]
    np.testing.assert_array_equal(got["level"], [-1, -1, 3])
    assert np.isnan(got["cond"][:2]).all() and got["cond"][2] == 1.5
    np.testing.assert_array_equal(got["latency"], [0.1, 0.2, 0.3])


def test_bad_rows_rejected(tmp_path) -> None:
    writer = ResultFile(tmp_path / "r.h5").new_run("a", {})
    with pytest.raises(ValueError, match="missing field"):
        writer.append("rounds", np.zeros(1, dtype=[("round", "i8")]))
    with pytest.raises(ValueError, match="unknown fields"):
        writer.append("rounds", np.zeros(1, dtype=[*ROUNDS_DTYPE.descr, ("oops", "f8")]))
    with pytest.raises(ValueError, match="unknown table"):
        writer.append("nope", random_rows("rounds", 1))


def test_unique_names_when_adding_to_existing_file(tmp_path) -> None:
    path = tmp_path / "r.h5"
    names = [ResultFile(path).new_run("partial", {}).name for _ in range(3)]
    names.append(ResultFile(path).new_run("crc", {}).name)
    assert names == ["partial", "partial-2", "partial-3", "crc"]
    assert [r.name for r in read_runs(path)] == names          # creation order
    assert [r.name for r in read_runs(path, ["crc", "partial-2"])] == ["crc", "partial-2"]
    with pytest.raises(InputError, match="no run named 'x'"):
        read_runs(path, ["x"])


def test_attrs_round_trip(tmp_path) -> None:
    path = tmp_path / "r.h5"
    attrs = {"scheme": "crc", "workers": 8, "chunk_time": 0.01, "verify": True, "hosts": None,
             "code": {"parts": 2, "ladder": [1, 2], "name": "x"}, "list": [1, "a"],
             "seed": np.int64(7), "config": "[run]\nseed = 7\n", "text": "[1, 2]"}
    writer = ResultFile(path).new_run("a", attrs)
    writer.set_attrs(mean=0.5, extra={"k": [1.5]}, verify=False)
    writer.flush()
    got = read_runs(path)[0].attrs
    assert got == {**attrs, "seed": 7, "hosts": "", "mean": 0.5, "extra": {"k": [1.5]},
                   "verify": False}
    assert isinstance(got["verify"], bool) and isinstance(got["workers"], int)
    assert got["text"] == "[1, 2]"           # a plain string is never JSON-decoded


def test_bad_attrs_rejected_before_file_created(tmp_path) -> None:
    path = tmp_path / "r.h5"
    with pytest.raises(ValueError):
        ResultFile(path).new_run("a", {"x": object()})
    with pytest.raises(InputError, match="--name"):
        ResultFile(path).new_run("a/b", {})
    with pytest.raises(ValueError):
        ResultFile(path).new_run("a", {}, tables=("rounds", "nope"))
    assert not path.exists()


def test_readable_after_flush_with_unflushed_rows(tmp_path) -> None:
    path = tmp_path / "r.h5"
    writer = ResultFile(path).new_run("a", {"scheme": "crc"})
    rows = random_rows("rounds", 8)
    writer.append("rounds", rows[:5])
    writer.flush()
    writer.append("rounds", rows[5:])      # never flushed: the job is "killed" here
    assert writer.pending("rounds") == 3
    got = read_runs(path)[0].tables["rounds"]
    np.testing.assert_array_equal(got, rows[:5])


KILLED = """
import os, signal, sys
import numpy as np
from mpigc.results import ROUNDS_DTYPE, ResultFile
w = ResultFile(sys.argv[1]).new_run("a", {})
w.append("rounds", np.zeros(5, ROUNDS_DTYPE))
w.flush()
w.append("rounds", np.zeros(3, ROUNDS_DTYPE))
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_readable_after_sigkill(tmp_path) -> None:
    path = tmp_path / "r.h5"
    proc = subprocess.run([sys.executable, "-c", KILLED, str(path)], env=child_env(), timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert read_runs(path)[0].tables["rounds"].size == 5


def test_flush_10000_rounds_is_fast(tmp_path) -> None:
    writer = ResultFile(tmp_path / "r.h5").new_run("a", {})
    best = np.inf
    for k in range(3):
        writer.append("rounds", random_rows("rounds", 10_000, seed=k))
        t0 = time.perf_counter()
        writer.flush()
        best = min(best, time.perf_counter() - t0)
    assert best < 0.1
    assert read_runs(tmp_path / "r.h5")[0].tables["rounds"].size == 30_000


def test_check_writable(tmp_path) -> None:
    check_writable(tmp_path / "new.h5")
    with pytest.raises(InputError, match="--out: .*does not exist"):
        check_writable(tmp_path / "missing" / "r.h5")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(InputError, match="--out: .*not an HDF5 file"):
        check_writable(text)
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["X"] = np.ones(3)
    with pytest.raises(InputError, match="not written by mpigc"):
        check_writable(foreign)
    with pytest.raises(InputError, match="is a directory"):
        check_writable(tmp_path)
    with pytest.raises(InputError, match="not written by mpigc"):
        ResultFile(foreign).new_run("a", {})          # never appends to a foreign file
    ours = tmp_path / "ours.h5"
    ResultFile(ours).new_run("a", {})
    check_writable(ours)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permissions")
def test_check_writable_read_only_dir(tmp_path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(InputError, match="not writable"):
            check_writable(ro / "r.h5")
    finally:
        ro.chmod(0o700)


def test_read_runs_rejects_bad_files(tmp_path) -> None:
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5")
    with pytest.raises(InputError, match=f"^{text}: not an HDF5 file"):
        read_runs(text)
    with pytest.raises(InputError, match="no such file"):
        read_runs(tmp_path / "missing.h5")
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["X"] = np.ones(3)
    with pytest.raises(InputError, match="not an mpigc result file"):
        read_runs(foreign)


def test_read_matrix(tmp_path) -> None:
    path = tmp_path / "data.h5"
    X = np.arange(12.0).reshape(4, 3)
    with h5py.File(path, "w") as f:
        f["X"] = X
        f["y"] = np.arange(4)
        f.create_group("g")
    np.testing.assert_array_equal(read_matrix(path, "X"), X)
    np.testing.assert_array_equal(read_matrix(path, "y"), np.arange(4))
    with pytest.raises(InputError, match="'Z' does not exist"):
        read_matrix(path, "Z")
    with pytest.raises(InputError, match="is a group"):
        read_matrix(path, "g")
    with pytest.raises(InputError, match="no such file"):
        read_matrix(tmp_path / "none.h5", "X")


def test_provenance() -> None:
    info = provenance("sim")
    assert info["backend"] == "sim" and info["mpigc_version"] == mpigc.__version__
    assert info["h5py"] == h5py.__version__ and info["numpy"] == np.__version__
    assert info["created"].endswith("+00:00") and "T" in info["created"]
    assert info["host"] and info["python"]
