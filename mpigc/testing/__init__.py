"""The conformance kit: run a scheme (built-in or plug-in) through the contract of docs/extending.md.

``python -m mpigc check NAME_OR_MODULE:CLASS`` (or :func:`check_scheme` from a
test) plans the scheme on random instances (m, load ∈ :data:`~mpigc.testing.decoding.GRID`,
parts 1 and 2, several seeds; instances the scheme refuses with an
:class:`~mpigc.errors.InputError` are skipped and counted) and prints one
line per check, PASS, FAIL (with what failed) or N/A:

``plan``
    at least one instance plans.
``exact decodes``
    at the first moment the decoder says exact, its combination applied to
    the vectors the workers would send (``encode``, or ``answer`` for
    two-phase schemes) equals the sum of the random chunk gradients to a
    relative 1e-9.
``decode times``
    the vectorised :meth:`~mpigc.codes.Scheme.decode_times` equals the
    moment the decoder, fed the messages in arrival order, first says exact
    (``inf`` for both when it never does).
``final blocks``
    every block :meth:`~mpigc.codes.Decoder.add` returned keeps its weights
    in the final combination, and no message the decoder said it no longer
    ``needs`` is weighed.
``coef_error``
    for approximate (several cut points per round) and exact combinations,
    the reported ``coef_error`` equals ``||weights · rows − E||² / ||E||²``
    recomputed from the message rows, and the decoded vector equals what
    those weights and rows imply (encode and message_row agree).
``wall clocks``
    planning and decoding a few instances again, with every clock of
    :mod:`time` jumping and numpy's and :mod:`random`'s global generators
    reseeded, gives identical results bit for bit.
``backends``
    a short run in the simulator and, when ``mpiexec`` is available (or
    ``--mpi N``), one under ``mpiexec`` agree round by round
    (:mod:`mpigc.testing.backends`).

Sequential codes (P3's multi-round jobs, ``Scheme.sequential``) are not
applicable: their decoders span rounds and tests/test_sgc*.py check them.
Exit code 0 when nothing failed, 1 otherwise, 2 for bad input (a scheme
name or plug-in that does not resolve, a bad ``--set``).
"""
from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from typing import TextIO

from mpigc.codes import SCHEMES
from mpigc.config import load_config
from mpigc.config.toml import format_value
from mpigc.testing.backends import check_backends
from mpigc.testing.checks import FAIL, PASS, SKIP, Result, check_clocks, check_decoding
from mpigc.testing.decoding import plan_instances

__all__ = ["FAIL", "PASS", "SKIP", "Result", "check_scheme", "iter_checks", "run_kit"]


def scheme_path(scheme: str | type) -> str:
    """Return the config value naming ``scheme``: a name or path as given, a class as ``module:QualName``."""
    return scheme if isinstance(scheme, str) else f"{scheme.__module__}:{scheme.__qualname__}"


def iter_checks(scheme: str | type, overrides: Sequence[str] = (), seeds: int = 3,
                mpi: int | None = None) -> Iterator[Result]:
    """Yield the kit's results one check at a time.

    Parameters
    ----------
    scheme : str or type
        A registered name, an entry-point name, ``package.module:Class``, or
        the class itself (importable by its module path).
    overrides : sequence of str
        ``--set`` items applied to every instance (e.g. ``code.p=0.2``).
    seeds : int
        Random instances per (m, load, parts).
    mpi : int, optional
        Ranks of the ``mpiexec`` run; 0 skips it; None: 4 if ``mpiexec`` is on PATH.

    Raises
    ------
    InputError
        If the scheme does not resolve or an override is bad (before any check runs).
    """
    name = scheme_path(scheme)
    overrides = list(overrides)
    cls = resolve(name, overrides)
    if getattr(cls, "sequential", False):
        yield Result("all checks", SKIP, f"{name} is a sequential code (jobs spanning rounds): its decoders are "
                                         "not single-round decoders; tests/test_sgc*.py check them")
        return
    instances, refused = plan_instances(name, overrides, seeds)
    skipped = ", ".join(f"{n} by {key}" for key, n in sorted(refused.items()))
    tried = len(instances) + sum(refused.values())
    if not instances:
        yield Result("plan", FAIL, f"none of {tried} instances plans (refused: {skipped})")
        return
    yield Result("plan", PASS, f"{len(instances)} of {tried} instances planned"
                               + (f" (refused, as bad input: {skipped})" if skipped else ""))
    yield from check_decoding(instances)
    yield check_clocks(name, overrides)
    yield check_backends(name, overrides, mpi)


def resolve(name: str, overrides: Sequence[str]) -> type:
    """Return the scheme class ``name`` names, checking it and ``overrides`` as a config would (InputError)."""
    load_config(None, [f"code.scheme={format_value(name)}", *overrides], backend="sim")
    return SCHEMES.lookup(name)


def check_scheme(scheme: str | type, overrides: Sequence[str] = (), seeds: int = 3,
                 mpi: int | None = None) -> list[Result]:
    """Return every result of :func:`iter_checks`."""
    return list(iter_checks(scheme, overrides, seeds, mpi))


def run_kit(scheme: str | type, overrides: Sequence[str] = (), mpi: int | None = None, seeds: int = 3,
            out: TextIO = sys.stdout) -> int:
    """Print one line per check (``python -m mpigc check``); return 0 if none failed, else 1."""
    name = scheme_path(scheme)
    resolve(name, overrides)  # bad input: one line and exit 2 before any output
    failed = False
    print(f"# mpigc check {name} ({SCHEMES.origin(name).describe()})", file=out, flush=True)
    for result in iter_checks(scheme, overrides, seeds, mpi):
        print(result.line(), file=out, flush=True)
        failed |= result.failed
    print(f"# {'FAILED' if failed else 'passed'}", file=out, flush=True)
    return 1 if failed else 0
