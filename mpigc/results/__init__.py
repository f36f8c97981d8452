"""Every HDF5 read and write of mpigc: the result schema, provenance, user datasets.

This is the only module that imports h5py. A result file holds runs under
``/runs/<name>``; each run keeps its parameters as attributes and its tables
(``rounds``, ``events``, ``workers``, ``jobs``) as chunked, resizable 1-D
compound datasets. Writers buffer rows in memory and append them on
``flush()`` (reopening the file each time, or keeping it open and writing
at most every ``min_interval`` seconds: see ``ResultFile``), so a killed job
leaves a readable file holding every written row.

Bookkeeping attributes: the root's ``mpigc_schema`` (schema version) marks a
file as ours; a run's ``json_attrs`` lists the attributes stored as JSON text
(dicts and lists), which ``read_runs`` decodes.
"""
from mpigc.results.reader import RunData, read_matrix, read_rows, read_runs, run_names
from mpigc.results.schema import (CHUNK_ROWS, DEFAULTS, EVENTS_DTYPE, JOBS_DTYPE, ROUNDS_DTYPE, SCHEMA_VERSION,
                                  TABLES, WORKERS_DTYPE, provenance)
from mpigc.results.writer import ResultFile, RunWriter, check_run_name, check_writable, mark_interrupted

__all__ = ["CHUNK_ROWS", "DEFAULTS", "EVENTS_DTYPE", "JOBS_DTYPE", "ROUNDS_DTYPE", "SCHEMA_VERSION", "TABLES",
           "WORKERS_DTYPE", "ResultFile", "RunData", "RunWriter", "check_run_name", "check_writable",
           "mark_interrupted", "provenance", "read_matrix", "read_rows", "read_runs", "run_names"]
