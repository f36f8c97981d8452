"""Rows a round produces and which tables a ``run.detail`` level writes (both backends)."""
from __future__ import annotations

from dataclasses import dataclass, field

#: tables written at each ``run.detail`` level (docs/results.md#schema)
TABLES_BY_DETAIL = {"rounds": ("rounds",), "workers": ("rounds", "workers"), "full": ("rounds", "workers", "events")}


def tables_for(detail: str, sgc: bool = False) -> tuple[str, ...]:
    """Return the tables a run writes at ``run.detail = detail``; SGC runs add ``jobs``."""
    tables = TABLES_BY_DETAIL[detail]
    return tables[:1] + ("jobs",) + tables[1:] if sgc else tables


@dataclass
class RoundTables:
    """Rows of one or more rounds (``jobs``: sequential runs only), for :func:`mpigc.results.as_rows`.

    Each list holds the table's rows built by field name (``results.RoundRow``...)
    or structured arrays of them (``results.new_rows``, filled column by column).
    """

    rounds: list = field(default_factory=list)
    events: list = field(default_factory=list)
    workers: list = field(default_factory=list)
    jobs: list = field(default_factory=list)


def summary_attrs(stats: dict) -> dict:
    """Return a run's summary statistics as its ``summary_*`` attributes."""
    return {f"summary_{k}": v for k, v in stats.items()}
