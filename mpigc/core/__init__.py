"""What both backends do with a round, on no clock of their own.

The layers (enforced by import-linter, see ``pyproject.toml``)::

    cli
    sim | mpi            never import each other
    core                 entries and plans, round policy, payload layout,
                         rows and tables, provenance, the SGC round engine
    config | results
    codes | delays | workloads

A backend supplies time (virtual or wall) and transport; everything that
decides what a round *means* lives here, once.
"""
