"""The figure campaign: sweeps, the figure scripts F1-F7 and their shared helpers (:mod:`analysis.common`).

Not installed with mpigc; run from the repository root, either by path
(``python analysis/make_figures.py --out figures/``) or as modules
(``python -m analysis.make_figures --out figures/``).
"""
