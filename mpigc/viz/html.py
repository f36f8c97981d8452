"""``index.html`` beside the figures: one section per run, its key parameters and its figures.

Self-contained (inline style, relative links, no script, no external asset),
so the directory can be copied off a cluster and opened offline.
"""
from __future__ import annotations

import datetime as _dt
import html
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import mpigc

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table.params { border-collapse: collapse; font-size: 0.9em; }
table.params th { text-align: left; padding: 0.1em 1em 0.1em 0; color: #555; font-weight: normal; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #444; } .swatch { display: inline-block; width: 0.9em;
height: 0.9em; vertical-align: middle; margin-right: 0.4em; border-radius: 2px; }
.warn { color: #a33; } code { background: #f4f4f4; padding: 0 0.2em; }
"""


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _figure(fig: Any, captions: Mapping[str, str]) -> str:
    """One figure: the PNG inline when there is one, links to every file, and its caption."""
    png = next((f for f in fig.files if f.endswith(".png")), None)
    links = " · ".join(f'<a href="{_esc(f)}">{_esc(f.rsplit(".", 1)[-1].upper())}</a>' for f in fig.files)
    image = f'<a href="{_esc(png)}"><img src="{_esc(png)}" alt="{_esc(fig.kind)}" loading="lazy"></a>' \
        if png else ""
    also = f" (with {_esc(', '.join(fig.runs))})" if len(fig.runs) > 1 else ""
    return (f"<figure>{image}<figcaption><b>{_esc(fig.kind)}</b>{also}: {_esc(captions.get(fig.kind, ''))} "
            f"[{links}]</figcaption></figure>")


def _section(run: Any, figs: Sequence[Any], captions: Mapping[str, str]) -> str:
    rows = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in run.params().items())
    body = "\n".join(_figure(f, captions) for f in figs)
    return (f'<h2 id="{_esc(run.name)}"><span class="swatch" style="background:{_esc(run.color)}"></span>'
            f"{_esc(run.name)}</h2>\n<table class=\"params\">{rows}</table>\n{body}")


def write_index(directory: Path, source: str | os.PathLike, loaded: Any, figures: Sequence[Any],
                captions: Mapping[str, str]) -> Path:
    """Write ``directory/index.html`` (through a temporary file, so a reader never sees half of it).

    A figure showing several runs (an MPI run and its simulation) is listed
    under each of them.
    """
    names = [r.name for r in loaded.runs]
    toc = " · ".join(f'<a href="#{_esc(n)}">{_esc(n)}</a>' for n in names)
    notes = []
    if loaded.damaged:
        notes.append('<p class="warn">Skipped, damaged: ' + "; ".join(_esc(d) for d in loaded.damaged) + "</p>")
    if loaded.running:
        notes.append(f"<p>Includes the runs of {loaded.running} side file(s) of a running or killed job, "
                     "as far as they had been written.</p>")
    sections = [_section(run, [f for f in figures if run.name in f.runs], captions) for run in loaded.runs]
    when = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    page = (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>mpigc plot: {_esc(os.path.basename(os.fspath(source)))}</title><style>{_STYLE}</style></head>"
            f"<body>\n<h1>Runs of <code>{_esc(os.fspath(source))}</code></h1>\n"
            f"<p>{len(names)} run(s): {toc}. Made by mpigc {_esc(mpigc.__version__)} on {_esc(when)}. "
            "Latencies in ms, times in s; simulated runs are in virtual time.</p>\n"
            + "\n".join(notes) + "\n" + "\n".join(sections) + "\n</body></html>\n")
    target = directory / "index.html"
    tmp = directory / ".index.html.tmp"
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, target)
    return target
