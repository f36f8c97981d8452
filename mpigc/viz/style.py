"""matplotlib, loaded on first use, and the conventions every figure shares (status colours, saving)."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mpigc.errors import InputError

#: output formats ``mpigc plot --format`` accepts
FORMATS = ("png", "pdf")
#: a round's status (rounds table) -> (label, colour); other values are drawn grey with their number
STATUS = {0: ("exact", "#2ca02c"), 1: ("approximate", "#ff7f0e"), 2: ("failed (undecodable)", "#d62728")}
#: colour of cells and marks that mean "worker failed" / "wait-out"
FAILED_COLOR = "#000000"
WAITOUT_COLOR = "#d62728"
DPI = 110


def pyplot() -> Any:
    """Return ``matplotlib.pyplot`` on the non-interactive Agg backend.

    Raises
    ------
    InputError
        Keyed ``plot`` if matplotlib is not installed, saying how to install it.
    """
    try:
        import matplotlib
    except ImportError:
        raise InputError("plot", "matplotlib is not installed; install the analysis extra: "
                                 "pip install 'mpigc[analysis]'") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def parse_formats(text: str) -> tuple[str, ...]:
    """Parse ``--format`` (``png``, ``pdf`` or ``png,pdf``).

    Raises
    ------
    InputError
        Keyed ``--format`` for an empty list or an unknown format.
    """
    chosen = tuple(dict.fromkeys(f.strip().lower() for f in text.split(",") if f.strip()))
    bad = [f for f in chosen if f not in FORMATS]
    if not chosen or bad:
        raise InputError("--format", f"expected a comma-separated list of {', '.join(FORMATS)}, got {text!r}")
    return chosen


def status_style(status: int) -> tuple[str, str]:
    """Label and colour of a round status (an unknown code is grey, labelled with its number)."""
    return STATUS.get(int(status), (f"status {int(status)}", "#7f7f7f"))


def save(fig: Any, out_dir: Path, stem: str, formats: Sequence[str]) -> list[str]:
    """Write ``fig`` as ``stem.<format>`` for each format into ``out_dir``; close it; return the file names."""
    plt = pyplot()
    names = []
    for fmt in formats:
        name = f"{stem}.{fmt}"
        fig.savefig(out_dir / name, dpi=DPI, metadata={"CreationDate": None} if fmt == "pdf" else None)
        names.append(name)
    plt.close(fig)
    return names


def title(run: Any) -> str:
    """Return a figure title naming the run, its scheme, workers and backend."""
    workers = run.attrs.get("workers", "?")
    return f"{run.name}: {run.scheme}, {workers} workers, {run.backend}"
