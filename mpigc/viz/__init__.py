"""Looking at a result file: figures per run (``mpigc plot``) and worker timelines (``mpigc timeline``).

Runs are read through :mod:`mpigc.results` only (:mod:`mpigc.viz.runs`).
matplotlib (the ``analysis`` extra) is imported by :func:`mpigc.viz.style.pyplot`
when a figure is drawn, never on ``import mpigc`` or ``import mpigc.viz``;
the timeline (:mod:`mpigc.viz.timeline`) needs only numpy and the standard library.
"""
