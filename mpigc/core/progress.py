"""Progress lines for long runs, the same from both backends."""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


def progress_printer(label: str, total: int, stream: TextIO = sys.stderr) -> Callable[[int], None]:
    """Return a progress callback printing at most about once a second."""
    start = time.perf_counter()
    last = [0.0]

    def report(done: int) -> None:
        now = time.perf_counter()
        if done < total and now - last[0] < 1.0:
            return
        last[0] = now
        rate = done / max(now - start, 1e-9)
        print(f"  {label}: {done}/{total} rounds ({rate:,.0f} rounds/s)", file=stream, flush=True)

    return report
