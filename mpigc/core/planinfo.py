"""``mpigc plan``: what each scheme entry assigns, in which order, and how good that is."""
from __future__ import annotations

import numpy as np

from mpigc.codes.ordering import qmax, qmax_lower_bound
from mpigc.config import Config
from mpigc.core.entries import plan_entries, workers_of

MAX_LISTED = 32  # workers whose orders are printed in full


def describe_plan(config: Config) -> list[dict]:
    """One dict per scheme entry: assignment, orders, Qmax, its bound and the code's conditioning."""
    m = workers_of(config)
    out = []
    for entry in plan_entries(config, m):
        plan = entry.scheme.plan
        a = plan.assignment
        replication = a.sum(axis=1)
        q = qmax(a, list(plan.orders), plan.parts) if plan.parts <= replication.min() else None
        facts = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in entry.scheme.describe().items()}
        if hasattr(entry.scheme, "worst_condition"):
            facts["code condition (worst sampled F)"] = entry.scheme.worst_condition()
        out.append({
            "entry": entry.label,
            "scheme": entry.code.scheme,
            "assignment": entry.code.assignment or entry.scheme.default_assignment,
            "ordering": entry.code.ordering,
            "workers": int(plan.workers),
            "chunks": int(plan.chunks),
            "parts": int(plan.parts),
            "loads": sorted({int(x) for x in plan.loads}),
            "replication": sorted({int(x) for x in replication}),
            "orders": [[int(c) for c in o] for o in plan.orders],
            "qmax": q,
            "qmax_lower_bound_l1": qmax_lower_bound(a),
            "completions_total": int(plan.loads.sum()),
            "round_timeout_s": entry.policy.timeout,
            "facts": facts,
        })
    return out


def format_plan(plans: list[dict]) -> str:
    """Human-readable text of :func:`describe_plan`."""
    lines = []
    for p in plans:
        lines.append(f"== {p['entry']}: scheme {p['scheme']}, assignment {p['assignment']}, ordering {p['ordering']}")
        lines.append(f"   m = {p['workers']} workers, N = {p['chunks']} chunks, l = {p['parts']} parts, "
                     f"load {p['loads']}, replication {p['replication']}")
        if p["qmax"] is not None:
            bound = p["qmax_lower_bound_l1"]
            lines.append(f"   Qmax = {p['qmax']} of {p['completions_total']} chunk completions "
                         f"(l = 1 lower bound {bound}{', met' if p['parts'] == 1 and p['qmax'] == bound else ''})")
        for key, value in p["facts"].items():
            lines.append(f"   {key}: {value:.4g}" if isinstance(value, float) else f"   {key}: {value}")
        lines.append(f"   round timeout: {p['round_timeout_s']:g} s")
        lines.append("   worker: chunks in processing order")
        for w, order in enumerate(p["orders"][:MAX_LISTED]):
            lines.append(f"   {w:>6}: {' '.join(map(str, order))}")
        if len(p["orders"]) > MAX_LISTED:
            lines.append(f"   ... {len(p['orders']) - MAX_LISTED} more workers (use --json for all)")
    return "\n".join(lines)
