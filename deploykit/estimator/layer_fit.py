"""Per-op-kind efficiencies learnt from per-layer rows (``estimate fit --layers``), as nn-Meter learns kernels.

``deploykit profile`` stores, with a timed row, each deployed layer's measured time (``details["layers_measured"]``,
:mod:`deploykit.profiling.join`). A whole-model row says how long the model took; a per-layer table says which op
kinds took it. From a target's tables this fits, by least squares in log space with a robust loss (soft L1: one
preempted op must not move a kind), the throughput each op kind with MACs reaches (MAC/s), the bandwidth and a
per-op cost, per op (a layer, plus those the runtime fused into its op) as the roofline prices it::

    time(op) = Σ over its layers [ max(MACs / throughput[kind], DRAM bytes / bandwidth) + dispatch ]

each throughput pulled weakly towards the datasheet's (peak × the class's efficiency, :data:`PRIOR_WEIGHT`) so a
kind whose layers are all memory-bound stays where it was. What the whole-model fit takes from it is the shape
only: each kind's throughput over the fastest kind's, as the target's ``efficiency`` table
(``[targets.roofline.efficiency]``), and the ridge point (the fastest kind's throughput over the bandwidth),
which the whole-model fit keeps while it moves the peak; the peak and the per-op cost (and, with enough models,
the bandwidth) are still fitted on the whole-model rows, where the scale of a timed run lives (op times from a
profiler sum to less than a timed inference: docs/profile.md). Efficiencies alone are not enough: a fit that
moves the peak with the datasheet's ridge gets every memory-bound layer wrong by the ratio of the two ridges.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..errors import DeploykitError
from ..graph import Layer
from ..targets import TARGET_RANGES, Target
from . import layers as _layers
from .fitting import PRIOR_WEIGHT
from .model import LayerArrays, Roofline

TABLE_FORMAT = 1  # deploykit.profiling.join.FORMAT of the tables this reads
ROBUST_SCALE = 0.3  # soft L1 above |log error| ≈ 0.3 (a factor of 1.35): beyond it a row counts linearly


@dataclass
class LayerTable:
    """One stored per-layer table as fit rows: the model's layers (the estimator's, in its order) and, per op that
    ran a layer, the indices of the layers its time covers (that layer, and those fused into its op) and its time."""

    model: str
    resolution: int
    layers: list[Layer]
    groups: list[tuple[list[int], float]] = field(default_factory=list)


@dataclass
class LayerFit:
    """The per-layer fit of a target: each op kind's efficiency (its throughput over the fastest kind's) and the
    figures fitted beside them, with what it rests on."""

    efficiency: dict[str, float]
    peak_macs_per_s: float
    mem_bw_bytes_per_s: float
    dispatch_s: float
    rows: int  # ops fitted on
    models: list[str]
    residuals: list[float]  # log(predicted / measured) per op

    @property
    def rms_log_error(self) -> float:
        return float(np.sqrt(np.mean(np.square(self.residuals)))) if self.residuals else 0.0


def layer_tables(target: Target, store) -> list[LayerTable]:
    """The per-layer tables of ``target``'s measured ok rows in ``store``, the latest per model and resolution,
    as fit rows; a table whose layers are not the estimator's layers of that model now (counted by another
    version of the analysis, a model of the user's own) is left out."""
    latest: dict[tuple[str, int], dict] = {}
    for m in store.query(target=target.id, provenance="measured", status="ok"):
        t = (m.details or {}).get("layers_measured")
        if t and t.get("rows") and t.get("format") == TABLE_FORMAT:
            latest[(t.get("model") or m.model, t.get("resolution") or m.resolution)] = t
    tables = [table_rows(model, res, t) for (model, res), t in latest.items()]
    return [tb for tb in tables if tb is not None and tb.groups]


def table_rows(model: str, resolution: int, table: dict) -> LayerTable | None:
    """A stored table (join.py's shape) as fit rows: each op that ran a layer (by name or order), with the layers
    fused into it; None where its rows are not the estimator's layers of the model."""
    try:
        layers = _layers.model_layers(model, resolution)[2]
    except DeploykitError:
        return None
    rows = table["rows"]
    if len(rows) != len(layers) or any(
        r["layer"] != x.name or r["index"] != i for i, (r, x) in enumerate(zip(rows, layers))
    ):
        return None
    index = {r["layer"]: r["index"] for r in rows}
    inside: dict[int, list[int]] = {}
    for r in rows:
        if r.get("match") == "fused" and r.get("fused_into") in index:
            inside.setdefault(index[r["fused_into"]], []).append(r["index"])
    groups = [
        ([r["index"], *inside.get(r["index"], [])], float(r["measured_ms"]))
        for r in rows
        if r.get("match") in ("name", "order") and (r.get("measured_ms") or 0) > 0
    ]
    return LayerTable(model, resolution, layers, groups)


def fit_layer_efficiency(base: Roofline, tables: list[LayerTable]) -> LayerFit:
    """Fit each op kind's throughput (kinds with MACs), the bandwidth and the per-op cost to ``tables``' op times,
    starting from and pulled towards ``base`` (the target's datasheet roofline); see the module docstring."""
    from scipy.optimize import least_squares

    groups = [(tb, idx, ms) for tb in tables for idx, ms in tb.groups]
    if not groups:
        raise DeploykitError("no per-layer rows to fit: profile the target first (deploykit profile MODEL --device D)")
    kinds = sorted({tb.layers[i].kind for tb, idx, _ in groups for i in idx if tb.layers[i].macs})
    if not kinds:
        raise DeploykitError("no per-layer row of an op with MACs to fit an efficiency on")
    n = len(kinds)
    arrays = [LayerArrays(tb.layers) for tb in tables]
    member = []  # per table: each layer's group (-1: in none) and the number of groups
    for tb in tables:
        g = np.full(len(tb.layers), -1)
        for j, (idx, _) in enumerate(tb.groups):
            g[idx] = j
        member.append((g, len(tb.groups)))
    measured = np.log([ms for _, _, ms in groups])
    prior = np.log([base.peak_macs_per_s * base.eff(k) for k in kinds])
    x0 = np.concatenate([prior, np.log([base.mem_bw_bytes_per_s, max(base.dispatch_s, 1e-7)])])
    span_p, span_b = TARGET_RANGES["peak_macs_per_s"], TARGET_RANGES["mem_bw_bytes_per_s"]
    lo = np.array([np.log(span_p[0] * 10)] * n + [np.log(span_b[0] * 10), np.log(1e-9)])
    hi = np.array([np.log(span_p[1] / 10)] * n + [np.log(span_b[1] / 10), np.log(1e-2)])
    x0 = np.clip(x0, lo + 1e-6, hi - 1e-6)

    def build(x) -> Roofline:
        through = np.exp(x[:n])
        top = float(through.max())
        eff = {k: float(v / top) for k, v in zip(kinds, through)}
        return replace(base, peak_macs_per_s=top, mem_bw_bytes_per_s=float(np.exp(x[n])),
                       dispatch_s=float(np.exp(x[n + 1])), efficiency={**base.efficiency, **eff})  # fmt: skip

    def residuals(x):
        r = build(x)
        pred = []
        for a, (g, count) in zip(arrays, member):
            t = a.times_s(r)
            inside = g >= 0
            pred.append(np.bincount(g[inside], weights=t[inside], minlength=count))
        return np.log(np.concatenate(pred) * 1e3) - measured

    def objective(x):
        return np.concatenate([residuals(x), PRIOR_WEIGHT * (x[:n] - prior)])

    # max(compute, memory) has no gradient in a kind's throughput while its layers sit on the memory roof: from the
    # datasheet's start a depthwise kind can be stuck there. Start also from each kind's throughput as if its ops
    # were compute-bound (MACs over measured time: a lower bound), and from a tenfold bandwidth; keep the best.
    implied = []
    for k, p in zip(kinds, prior):
        said = [
            sum(tb.layers[i].macs for i in idx) / (ms * 1e-3) for tb, idx, ms in groups if tb.layers[idx[0]].kind == k
        ]
        implied.append(np.log(np.median(said)) if said and min(said) > 0 else p)
    best = None
    for through in (prior, np.array(implied)):
        for bw in (x0[n], x0[n] + np.log(10)):
            start = np.clip(np.concatenate([through, [bw, x0[n + 1]]]), lo + 1e-6, hi - 1e-6)
            sol = least_squares(objective, start, bounds=(lo, hi), method="trf", loss="soft_l1", f_scale=ROBUST_SCALE)
            if best is None or sol.cost < best.cost:
                best = sol
    sol = best
    r = build(sol.x)
    return LayerFit(
        efficiency={k: r.efficiency[k] for k in kinds},
        peak_macs_per_s=r.peak_macs_per_s,
        mem_bw_bytes_per_s=r.mem_bw_bytes_per_s,
        dispatch_s=r.dispatch_s,
        rows=len(groups),
        models=sorted({f"{tb.model}@{tb.resolution}" for tb in tables}),
        residuals=[float(v) for v in residuals(sol.x)],
    )


def scale_only(free: tuple[str, ...]) -> tuple[str, ...]:
    """What a whole-model fit on a shape from per-layer rows moves: ``free`` less what the shape fixed (the
    bandwidth, through the ridge, and the efficiencies); a few whole-model rows must not undo what hundreds of
    per-layer rows fitted (six free a bandwidth, which on this host's XNNPACK rows ran to its bound)."""
    return tuple(p for p in free if p != "mem_bw_bytes_per_s" and not p.startswith("eff_")) or free[:1]


def with_layer_fit(base: Roofline, tables: list[LayerTable]) -> Roofline:
    """``base`` with the shape fitted on ``tables``: each op kind's efficiency, and the bandwidth set so that
    the ridge point (peak over bandwidth) is the per-layer fit's; unchanged without tables."""
    if not tables:
        return base
    fitted = fit_layer_efficiency(base, tables)
    return shaped(base, fitted)


def shaped(base: Roofline, fitted: LayerFit) -> Roofline:
    """``base`` with ``fitted``'s efficiencies and ridge point (its peak kept: a whole-model fit scales it)."""
    ridge = fitted.peak_macs_per_s / fitted.mem_bw_bytes_per_s
    return replace(
        base,
        efficiency={**base.efficiency, **fitted.efficiency},
        mem_bw_bytes_per_s=base.peak_macs_per_s / ridge,
    )
