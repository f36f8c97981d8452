"""Where P3's AWS Lambda traces are found: one setting, ``MPIGC_TRACE_DIR``.

The traces are data with their own README, kept outside the repository. The
tests, benchmarks and figure scripts that replay them look in
``$MPIGC_TRACE_DIR`` when it is set, else in ``shared/data/lambda-traces``
beside the checkout (``../shared/data/lambda-traces`` relative to the
repository root). A missing directory is reported by whoever needs a trace.
"""
from __future__ import annotations

import os
from pathlib import Path

#: environment variable naming the directory of the Lambda trace CSVs
TRACE_DIR_ENV = "MPIGC_TRACE_DIR"


def trace_dir() -> Path:
    """Return the directory of the Lambda traces: ``$MPIGC_TRACE_DIR``, else ``../shared/data/lambda-traces``.

    The default is taken relative to the checkout this module was imported
    from (an editable install or ``PYTHONPATH``); with an installed wheel, set
    the variable.
    """
    value = os.environ.get(TRACE_DIR_ENV)
    if value:
        return Path(value).expanduser()
    return Path(__file__).resolve().parents[3] / "shared" / "data" / "lambda-traces"
