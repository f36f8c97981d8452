"""Every HDF5 read and write of mpigc: the result schema, provenance, user datasets.

This is the only module that imports h5py. A result file holds runs under
``/runs/<name>``; each run keeps its parameters as attributes and its tables
(``rounds``, ``events``, ``workers``, ``jobs``) as chunked, resizable 1-D
compound datasets. Writers buffer rows in memory and write them on
``flush()``; a result file is never written in place (copy, write, rename),
runs in progress live in SWMR side files next to it that readers include,
and one lock file admits one writer (see ``mpigc.results.writer``). A killed
job leaves every written row readable; a failed write leaves the file as it was.

Bookkeeping attributes: the root's ``mpigc_schema`` (schema version) marks a
file as ours; a run's ``json_attrs`` lists the attributes stored as JSON text
(dicts and lists), which ``read_runs`` decodes.
"""
from mpigc.results.lock import FileBusyError, holder
from mpigc.results.reader import DamagedRun, RunData, RunScan, read_matrix, read_rows, read_runs, run_names, scan_runs
from mpigc.results.schema import (
                                  CHUNK_ROWS,
                                  DEFAULTS,
                                  EVENTS_DTYPE,
                                  JOBS_DTYPE,
                                  ROUNDS_DTYPE,
                                  ROWS,
                                  SCHEMA_VERSION,
                                  TABLES,
                                  WORKERS_DTYPE,
                                  EventRow,
                                  JobRow,
                                  RoundRow,
                                  WorkerRow,
                                  as_rows,
                                  new_rows,
                                  provenance,
)
from mpigc.results.stamp import file_attr, set_file_attr
from mpigc.results.store import ResultWriteError, running_files
from mpigc.results.writer import (
                                  ResultFile,
                                  RunWriter,
                                  check_run_name,
                                  check_writable,
)

__all__ = ["CHUNK_ROWS", "DEFAULTS", "EVENTS_DTYPE", "JOBS_DTYPE", "ROUNDS_DTYPE", "SCHEMA_VERSION", "TABLES",
           "WORKERS_DTYPE", "FileBusyError", "ResultFile", "ResultWriteError", "RunData", "RunWriter",
           "check_run_name", "check_writable", "holder", "provenance", "read_matrix",
           "read_rows", "read_runs", "run_names", "running_files"]
__all__ += ["ROWS", "EventRow", "JobRow", "RoundRow", "WorkerRow", "new_rows"]
__all__ += ["as_rows", "DamagedRun", "RunScan", "file_attr", "scan_runs", "set_file_attr"]
