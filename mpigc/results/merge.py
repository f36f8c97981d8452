"""Gathering runs of many result files into one: ``mpigc merge OUT IN...`` (campaigns of one file per job).

Appending a run to a result file costs a copy of the whole file (a commit:
:mod:`mpigc.results.store`), the price of never writing it in place. A
campaign of many jobs therefore writes one file per job and gathers them
once at the end: one commit, O(total size), whatever the number of jobs.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import h5py

from mpigc.errors import InputError
from mpigc.results import store
from mpigc.results.reader import scan_runs
from mpigc.results.schema import _open_read
from mpigc.results.writer import ResultFile


def merge_files(out: str | os.PathLike, sources: Sequence[str | os.PathLike]) -> list[str]:
    """Copy every healthy run of ``sources`` (in order) into ``out``; return the names they got there.

    Runs keep their attributes and tables bit for bit; a name already taken
    gets ``-2``, ``-3``... A killed job's runs left in side files of a
    source are first committed into that source (marked ``killed``), as its
    next writer would.

    Raises
    ------
    InputError
        A source is missing, not an mpigc result file, is ``out`` itself, is
        being written by a running job, or holds a damaged run (named);
        nothing is written to ``out`` then.
    """
    target = store.target(out)
    plan: list[tuple[Path, list[str]]] = []
    for src in sources:
        path = store.target(src)
        if path.exists() and target.exists() and os.path.samefile(path, target):
            raise InputError(os.fspath(src), "is the output file itself")
        if store.running_files(path):
            with ResultFile(path) as settle:   # a killed job's runs are committed into their file first
                settle._commit(lambda f: None)
        scan = scan_runs(path)
        if scan.damaged:
            raise InputError(os.fspath(src), "damaged run(s): " + "; ".join(map(str, scan.damaged)))
        if store.running_files(path):
            raise InputError(os.fspath(src), "has runs in side files of a job that is still running: "
                                             "merge once it ended")
        plan.append((path, [run.name for run in scan.runs]))
    names: list[str] = []

    def copy(f: h5py.File) -> None:
        runs = f["runs"]
        for path, members in plan:
            with _open_read(path) as src:
                for name in members:
                    unique = store.unique_name(runs, name)
                    runs.copy(src["runs"][name], unique)
                    names.append(unique)
    with ResultFile(target) as file:
        file._commit(copy)
    return names
