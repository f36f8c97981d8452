"""Tests of mpigc.config: defaults, every input error, --set, scheme lists, MPI sizes, round trips."""
from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from mpigc.codes import make_scheme
from mpigc.config import (
    CodeConfig,
    Config,
    DelaysConfig,
    NetworkConfig,
    RunConfig,
    WorkloadConfig,
    describe_keys,
    load_config,
    to_toml,
)
from mpigc.config.keys import KEYS, TABLES
from mpigc.config.spec import key, keys_of
from mpigc.errors import InputError


def write(tmp_path: Path, text: str, name: str = "c.toml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def load_text(tmp_path: Path, text: str, *overrides: str, **kw) -> Config:
    return load_config(write(tmp_path, text), overrides, **kw)


# ---------------------------------------------------------------- defaults

def test_embedded_default_loads():
    c = load_config(None)
    assert c.backend == "sim"
    assert c.run == RunConfig(rounds=50, seed=1, flush_every=1000, detail="rounds")
    assert [(k.scheme, k.name, k.use_partial) for k in c.codes] == [
        ("partial", None, True), ("partial", "ablation", False), ("crc", None, True)]
    assert all(k.load == 3 and k.workers == 8 and k.chunks is None for k in c.codes)
    assert c.workload == WorkloadConfig(features=1000)
    assert c.delays == DelaysConfig()
    assert c.network == NetworkConfig()


@pytest.mark.parametrize("world,load", [(3, 2), (4, 3), (9, 3)])
def test_embedded_default_fits_any_world_size(world, load):
    # the default experiment's load (3) is capped at the workers a small job has
    c = load_config(None, backend="mpi", world_size=world)
    assert all(k.load == load and k.workers == world - 1 for k in c.codes)


def test_user_load_is_never_capped(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[code]\nload = 3\n")
    for c in (load_config(None, ["code.load=3"], backend="mpi", world_size=3),
              load_config(str(path), backend="mpi", world_size=3)):
        assert c.codes[0].load == 3  # too large for 2 workers: the scheme refuses it (exit 2)
        with pytest.raises(InputError, match="code.load"):
            make_scheme(c.codes[0], 2, 1)


def test_empty_file_gives_dataclass_defaults(tmp_path):
    c = load_text(tmp_path, "")
    assert c.codes == (CodeConfig(workers=8),)
    assert c.run == RunConfig(flush_every=1000, detail="rounds")
    assert c.workload == WorkloadConfig() and c.delays == DelaysConfig()


def test_three_line_config(tmp_path):
    c = load_text(tmp_path, '[code]\nscheme = "crc"\nparts = 1\n')
    assert c.codes == (CodeConfig(scheme="crc", workers=8),)


def test_backend_defaults_for_mpi():
    c = load_config(None, backend="mpi", world_size=5)
    assert c.run.flush_every == 1 and c.run.detail == "full"
    assert {k.workers for k in c.codes} == {4}
    assert load_config(None, backend="mpi").codes[0].workers == 8  # no world size known


def test_ints_become_floats_and_lists_tuples(tmp_path):
    c = load_text(tmp_path, "[delays]\nchunk_time = 1\nslow = [0, 2]\n[code]\nladder = [0, 1, 3]\nmu = 2\n")
    assert isinstance(c.delays.chunk_time, float) and c.delays.chunk_time == 1.0
    assert c.delays.slow == (0, 2) and c.codes[0].ladder == (0, 1, 3)
    assert isinstance(c.codes[0].mu, float)


def test_lambda_key_maps_to_lam(tmp_path):
    c = load_text(tmp_path, "[code]\nlambda = 3\n[delays]\nlambda = 2\n")
    assert c.codes[0].lam == 3 and c.delays.lam == 2


# ---------------------------------------------------------------- bad input

BAD = [
    # (toml text, overrides, expected message start, expected fragment)
    ("[code]\nlamda = 2\n", (), "code.lamda: unknown key; did you mean 'code.lambda'?", ""),
    ("[netwrk]\nlatency = 1.0\n", (), "netwrk: unknown table; did you mean 'network'?", ""),
    ("rounds = 5\n", (), "rounds: unknown table", "run.rounds"),
    ("run = 3\n", (), "run: must be a table", "3 (integer)"),
    ("[code]\nchunk_time = 0.1\n", (), "code.chunk_time: unknown key", "delays.chunk_time"),
    ("[run]\nrounds = true\n", (), "run.rounds: must be an integer", "true (boolean)"),
    ("[run]\nrounds = 2.5\n", (), "run.rounds: must be an integer", "2.5 (float)"),
    ('[delays]\nchunk_time = "fast"\n', (), "delays.chunk_time: must be a number", '"fast" (string)'),
    ('[run]\nverify = "yes"\n', (), "run.verify: must be true or false", '"yes"'),
    ("[code]\nname = 3\n", (), "code.name: must be a string", "3 (integer)"),
    ("[code]\nparts = -1\n", (), "code.parts: must be a positive integer, got -1", ""),
    ("[code]\nworkers = 0\n", (), "code.workers: must be a positive integer, got 0", ""),
    ("[run]\nseed = -3\n", (), "run.seed: must be a non-negative integer, got -3", ""),
    ("[run]\nround_timeout = -1\n", (), "run.round_timeout: must be > 0", "-1.0"),
    ("[run]\nround_timeout = nan\n", (), "run.round_timeout: must be a number", "nan"),
    ("[delays]\nchunk_time = inf\n", (), "delays.chunk_time: must be a finite number", "inf"),
    ("[run]\nround_timeout = inf\n", (), "run.round_timeout: must be a finite number", "inf"),
    ("[run]\nround_timeout = 1e300\n", (), "run.round_timeout: must be at most 1e+06 s", "1e+300"),
    ("[run]\nflush_seconds = inf\n", (), "run.flush_seconds: must be a finite number", "inf"),
    ("[run]\nflush_seconds = -1\n", (), "run.flush_seconds: must be >= 0", "-1"),
    ("[code]\ndecode = \"approx\"\ndeadline = inf\n", (), "code.deadline: must be a finite number", "inf"),
    ("[code]\ndecode = \"approx\"\ndeadline = nan\n", (), "code.deadline: must be a number", "nan"),
    ('[code]\nscheme = ["crc", {scheme = "partial", decode = "approx", deadline = 1e7}]\n', (),
     "code.scheme[1].deadline: must be at most 1e+06 s", "1e+07"),
    ("[run]\nseed = 18446744073709551616\n", (), "run.seed: must be below 2^64", "18446744073709551616"),
    ("[workload]\nstep = 0\n", (), "workload.step: must be > 0", "0.0"),
    ("[delays]\nfailures = 1.5\n", (), "delays.failures: must be a probability in [0, 1], got 1.5", ""),
    ("[delays]\np_good = -0.1\n", (), "delays.p_good: must be a probability", "-0.1"),
    ("[delays]\nalpha = 1.0\n", (), "delays.alpha: Pareto shape must be > 1 (infinite mean otherwise)", "1.0"),
    ("[delays]\nfactor = 0.5\n", (), "delays.factor: must be >= 1", "0.5"),
    ('[delays]\nper = "chunks"\n', (), "delays.per: must be one of", 'did you mean "chunk"'),
    ('[code]\nordering = "optimall"\n', (), "code.ordering: unknown ordering 'optimall'", "did you mean 'optimal'"),
    ('[code]\nladder = [0, "1"]\n', (), "code.ladder: must be a list of integers", ""),
    ("[code]\nladder = [3, 1]\n", (), "code.ladder: must be strictly increasing", "[3, 1]"),
    ("[delays]\nslow = [-1]\n", (), "delays.slow: must list non-negative integers", "[-1]"),
    ("[delays]\nslow = [8]\n", (), "delays.slow: worker 8 does not exist", "0..7"),
    ('[code]\ndecode = "approx"\n', (), 'code.deadline: required when code.decode = "approx"', ""),
    ("[delays]\nfailures = 0.1\nfail_count = 2\n", (), "delays.fail_count: cannot be combined", "failures"),
    ("[delays]\nfail_count = 8\n", (), "delays.fail_count: must be less than code.workers = 8, got 8", ""),
    ('[delays]\nmodel = "trace"\n', (), 'delays.trace: required when delays.model = "trace"', ""),
    ('[code]\nscheme = ["partial", {scheme = "partial", use_partal = false}]\n', (),
     "code.scheme[1].use_partal: unknown key; did you mean 'code.scheme[1].use_partial'?", ""),
    ("[code]\nscheme = []\n", (), "code.scheme: must name at least one scheme", "empty list"),
    ('[code]\nscheme = ["crc", {name = "x"}]\n', (), "code.scheme[1]: an inline table needs a scheme key", ""),
    ('[code]\nscheme = ["crc", 3]\n', (), "code.scheme[1]: must be a scheme name or an inline table", "3"),
    ("[code]\nscheme = 3\n", (), "code.scheme: must be a scheme name or a list", "3 (integer)"),
    ('[code]\nscheme = [{scheme = "crc", workers = 4}]\n', (), "code.scheme[0].workers: must be the same", ""),
    ('[code]\nscheme = [{scheme = "crc", parts = 0}]\n', (), "code.scheme[0].parts: must be a positive", ""),
    ('[code]\nscheme = ["crc", {scheme = "partial", decode = "approx"}]\n', (),
     "code.scheme[1].deadline: required when code.decode", ""),
    ("", ("code.parts",), "--set: expected key=value", "'code.parts'"),
    ("", ("parts=2",), "--set: expected table.key=value", "did you mean 'code.parts'"),
    ("", ("code.lamda=2",), "code.lamda: unknown key; did you mean 'code.lambda'?", ""),
    ("", ("netwrk.latency=1",), "netwrk: unknown table; did you mean 'network'?", ""),
    ("", ("code.parts=two",), "code.parts: must be an integer", '"two" (string)'),
    ("code = 1\n", ("code.parts=2",), "code: must be a table", ""),
]


@pytest.mark.parametrize("text, overrides, start, fragment", BAD, ids=[b[2][:40] for b in BAD])
def test_bad_input_names_the_key(tmp_path, text, overrides, start, fragment):
    with pytest.raises(InputError) as info:
        load_text(tmp_path, text, *overrides)
    message = str(info.value)
    assert message.startswith(start), message
    assert fragment in message
    assert "\n" not in message
    assert info.value.key == start.split(":")[0]


def test_malformed_toml(tmp_path):
    path = write(tmp_path, "[run\nrounds = 1\n")
    with pytest.raises(InputError) as info:
        load_config(path)
    assert info.value.key == path
    assert str(info.value).startswith(f"{path}: invalid TOML: ")


def test_not_utf8(tmp_path):
    path = tmp_path / "c.toml"
    path.write_bytes(b"[run]\nrounds = 1 # \xff\n")
    with pytest.raises(InputError, match="invalid TOML"):
        load_config(str(path))


def test_missing_file(tmp_path):
    path = str(tmp_path / "nope.toml")
    with pytest.raises(InputError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: no such file"


def test_unknown_backend():
    with pytest.raises(InputError, match="^backend: "):
        load_config(None, backend="gpu")


# ---------------------------------------------------------------- --set

@pytest.mark.parametrize("override, attr, expected", [
    ("run.rounds=7", lambda c: c.run.rounds, 7),
    ("run.seed = 3", lambda c: c.run.seed, 3),
    ("delays.chunk_time=0.5", lambda c: c.delays.chunk_time, 0.5),
    ("code.deadline=1", lambda c: c.codes[0].deadline, 1.0),
    ("run.round_timeout=1e6", lambda c: c.run.round_timeout, 1e6),
    ("run.seed=18446744073709551615", lambda c: c.run.seed, 2**64 - 1),
    ("run.verify=true", lambda c: c.run.verify, True),
    ("code.scheme=crc", lambda c: [k.scheme for k in c.codes], ["crc"]),
    ('code.scheme="poly"', lambda c: [k.scheme for k in c.codes], ["poly"]),
    ("delays.trace=data/run 1.csv", lambda c: c.delays.trace, "data/run 1.csv"),
    ("code.assignment=file:/tmp/a=b.npy", lambda c: c.codes[0].assignment, "file:/tmp/a=b.npy"),
    ("code.assignment=graph:random-regular", lambda c: c.codes[0].assignment, "graph:random-regular"),
    ("code.ladder=[0,1,3]", lambda c: c.codes[0].ladder, (0, 1, 3)),
    ("delays.slow=[]", lambda c: c.delays.slow, ()),
    ('code.scheme=["partial","crc"]', lambda c: [k.scheme for k in c.codes], ["partial", "crc"]),
    ('code.scheme=["crc", {scheme = "partial", parts = 2, name = "p2"}]',
     lambda c: [(k.scheme, k.parts, k.name) for k in c.codes], [("crc", 1, None), ("partial", 2, "p2")]),
    ("network.latency=0.001", lambda c: c.network.latency, 0.001),
    ("code.lambda=4", lambda c: c.codes[0].lam, 4),
])
def test_set_overrides(tmp_path, override, attr, expected):
    c = load_text(tmp_path, '[code]\nscheme = "partial"\n', override)
    assert attr(c) == expected


def test_set_applies_on_default_and_in_order():
    c = load_config(None, ["code.load=2", "code.load=4", "network.bandwidth=1e9"])
    assert all(k.load == 4 for k in c.codes) and c.network.bandwidth == 1e9
    assert len(c.codes) == 3  # the default list survives a [code] key override


def test_set_value_is_one_toml_value_only(tmp_path):
    c = load_text(tmp_path, "", "code.name=a\nb = 2")
    assert c.codes[0].name == "a\nb = 2"


# ---------------------------------------------------------------- scheme lists

def test_scheme_list_resolution(tmp_path):
    c = load_text(tmp_path, """
[code]
scheme = ["partial", {scheme = "partial", use_partial = false, name = "ablation"},
          {scheme = "crc", load = 4, name = "crc4"}]
load = 3
parts = 2
transport = "request"
""")
    assert len(c.codes) == 3
    a, b, d = c.codes
    assert (a.scheme, a.name, a.use_partial, a.load, a.parts, a.transport) == \
        ("partial", None, True, 3, 2, "request")
    assert (b.scheme, b.name, b.use_partial, b.load, b.parts) == ("partial", "ablation", False, 3, 2)
    assert (d.scheme, d.name, d.load, d.parts) == ("crc", "crc4", 4, 2)
    assert {k.workers for k in c.codes} == {8}


def test_array_of_tables_form(tmp_path):
    c = load_text(tmp_path, '[code]\nload = 2\n[[code.scheme]]\nscheme = "crc"\n'
                            '[[code.scheme]]\nscheme = "frc"\nload = 4\n')
    assert [(k.scheme, k.load) for k in c.codes] == [("crc", 2), ("frc", 4)]


def test_duplicate_names_allowed(tmp_path):
    c = load_text(tmp_path, '[code]\nscheme = ["crc", "crc", {scheme = "crc", name = "crc"}]\n')
    assert [k.scheme for k in c.codes] == ["crc"] * 3


def test_code_name_inherited_unless_overridden(tmp_path):
    c = load_text(tmp_path, '[code]\nname = "base"\nscheme = ["crc", {scheme = "frc", name = "f"}]\n')
    assert [k.name for k in c.codes] == ["base", "f"]


def test_approx_deadline_in_code_table_covers_entries(tmp_path):
    c = load_text(tmp_path, '[code]\ndeadline = 0.05\nscheme = ["crc", {scheme = "partial", decode = "approx"}]\n')
    assert c.codes[1].decode == "approx" and c.codes[1].deadline == 0.05


# ---------------------------------------------------------------- MPI world size

def test_mpi_world_size_mismatch(tmp_path):
    path = write(tmp_path, "[code]\nworkers = 4\n")
    with pytest.raises(InputError) as info:
        load_config(path, backend="mpi", world_size=8)
    assert str(info.value) == ("code.workers: the config asks for 4 workers but mpiexec started 8 ranks; "
                               "run with -n 5")
    assert load_config(path, backend="mpi", world_size=5).codes[0].workers == 4
    assert load_config(path, backend="sim", world_size=8).codes[0].workers == 4


def test_mpi_single_rank():
    with pytest.raises(InputError, match="^code.workers: .*1 rank"):
        load_config(None, backend="mpi", world_size=1)


def test_mpi_fail_count_against_world(tmp_path):
    with pytest.raises(InputError, match="^delays.fail_count: must be less than code.workers = 3"):
        load_text(tmp_path, "[delays]\nfail_count = 3\n", backend="mpi", world_size=4)


# ---------------------------------------------------------------- to_toml

def roundtrip(tmp_path: Path, c: Config) -> Config:
    text = to_toml(c)
    tomllib.loads(text)  # valid TOML on its own
    world = c.codes[0].workers + 1 if c.backend == "mpi" else None
    return load_config(write(tmp_path, text, "rt.toml"), backend=c.backend, world_size=world)


# id "mpi" would be skipped by pytest-mpi
@pytest.mark.parametrize("backend", ["sim", "mpi"], ids=["backend-sim", "backend-mpi"])
def test_roundtrip_default(tmp_path, backend):
    c = load_config(None, backend=backend, world_size=9 if backend == "mpi" else None)
    assert roundtrip(tmp_path, c) == c
    text = to_toml(c)
    assert "# round_timeout = (auto)" in text and "# trace = (unset)" in text
    assert '{scheme = "partial", name = "ablation", use_partial = false}' in text


def test_roundtrip_complex(tmp_path):
    c = load_text(tmp_path, r'''
[run]
rounds = 7
seed = 42
verify = true
round_timeout = 1e6
flush_every = 3
detail = "workers"
[code]
workers = 12
chunks = 24
load = 4
parts = 2
assignment = "graph:circulant"
ordering = "greedy"
transport = "request"
ladder = [0, 1, 3]
mu = 0.5
lambda = 2
scheme = [
  "partial",
  {scheme = "partial", decode = "approx", deadline = 0.03, name = "approx \"T\" é"},
  {scheme = "nested", assignment = "frc", name = "tab\there"},
  {scheme = "m-sgc", B = 2, W = 3, lambda = 1, rescale = true, points = "integers"},
]
[workload]
model = "mlp"
hidden = 8
dataset = "data/x y.npz"
models = 4
noise = 0
[delays]
model = "trace"
trace = "C:\\traces\\lambda.csv"
slope = -1.5e-3
wrap = false
slow = [1, 11]
fail_count = 2
[network]
latency = 1e-5
bandwidth = 1.25e9
''')
    assert c.codes[1].deadline == 0.03 and c.codes[0].deadline is None
    assert roundtrip(tmp_path, c) == c


def test_roundtrip_single_scheme_and_programmatic(tmp_path):
    c = load_text(tmp_path, '[code]\nscheme = "poly"\nparts = 3\nload = 4\n')
    assert "scheme = \"poly\"" in to_toml(c)
    assert roundtrip(tmp_path, c) == c
    d = dataclasses.replace(c, codes=c.codes + (dataclasses.replace(c.codes[0], scheme="crc", parts=1),))
    assert roundtrip(tmp_path, d) == d


def test_every_field_is_a_key_derived_from_its_declaration():
    """Keys come from the dataclass fields: one per field, TOML name, default and spec from the one declaration."""
    text = describe_keys()
    assert list(TABLES) == ["run", "code", "workload", "delays", "network"]
    for table, cls in TABLES.items():
        fields = dataclasses.fields(cls)
        assert len(fields) > 1 and list(KEYS[table].values()) == list(keys_of(cls))
        assert [k.field for k in KEYS[table].values()] == [f.name for f in fields]
        defaults = cls()
        for f, k in zip(fields, KEYS[table].values()):
            assert k.name == ("lambda" if f.name == "lam" else f.name)
            assert k.default == getattr(defaults, f.name) and k.doc
            assert f"{table}.{k.name} " in text, k.name
    assert KEYS["delays"]["alpha"].message.startswith("Pareto") and KEYS["code"]["lambda"].lo == 0
    assert len(text.splitlines()) >= 2 + sum(len(keys) for keys in KEYS.values())


def test_a_field_not_declared_as_a_key_is_refused():
    @dataclasses.dataclass(frozen=True)
    class Table:
        declared: int = key(1, "int", "a key", lo=0)
        plain: int = 2

    with pytest.raises(TypeError, match="Table.plain is not declared"):
        keys_of(Table)
    with pytest.raises(ValueError, match="unknown key kind"):
        key(1, "integer", "a key")
