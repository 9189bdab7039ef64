"""Validation: how well the estimator predicts what it was not fitted on. A target refitted from the shipped
corpus now and cross-validated, its shipped profile scored on the held-out rows of independent labs, and each
device of a vendor family predicted from its siblings' rows."""

from __future__ import annotations

from dataclasses import asdict, replace

import numpy as np

from ..targets import Target
from .calibration import calibrate
from .intervals import coverage, cross_validate, spearman, summarize
from .layers import layer_samples, models_of, total_macs, training_rows
from .model import (
    BYTES_PER_ELEM,
    SIZE_MARGIN,
    SIZE_WIDENING_PER_LOG,
    Roofline,
    datasheet_peak,
    estimate_layers,
    roofline_for,
    target_class,
)
from .published import table16
from .transfer import leave_one_device_out, vendor


def targets_to_validate(profiles: list, names: list[str] | None = None) -> list[tuple[Target, list[tuple]]]:
    """(target, its corpus rows to fit on) for each target of ``profiles`` with roofline figures that has rows to
    validate: two or more models' rows of split ``fit`` (to leave one out), or held-out rows; only the targets
    named (by id or any corpus name of theirs) where ``names`` are given."""
    from .. import corpus

    out = []
    for profile in profiles:
        for t in [t for t in profile.targets if t.peak_macs_per_s and t.mem_bw_bytes_per_s]:
            if names and not (set(names) & (corpus.names_of(t) | {t.id})):
                continue
            rows = training_rows(t, None, published=True)  # split=fit only: held-out rows never reach a fit
            if len(models_of(rows)) >= 2 or corpus.rows_for(t, "heldout"):
                out.append((t, rows))
    return out


def validate_target(target: Target, rows) -> dict:
    """Refit from ``rows`` now and score it: leave one model out, leave one source out (two or more sources),
    interval coverage, and the MACs-affine baseline beside each."""
    residuals = cross_validate(target, rows) if len(models_of(rows)) >= 2 else []
    lomo = [x for x in residuals if x.split == "model"]
    return {
        "target": target.id,
        "rows": len(rows),
        "models": len(models_of(rows)),
        "sources": sorted({s for *_, s in rows}),
        "leave_one_model_out": {**summarize(residuals, "model"), "interval_coverage": coverage(lomo)},
        "leave_one_source_out": summarize(residuals, "source"),
        "paper_table16": table16((target.roofline or {}).get("paper_target")),
        "heldout": heldout_target(target),
        # NPU targets only: the AI Hub boards are fitted on small models and asked about large ones
        "leave_largest_out": leave_largest_out(target, rows) if target_class(target) == "npu" else {},
        "residuals": [asdict(x) for x in residuals],
    }


def leave_largest_out(target: Target, rows) -> dict:
    """Leave the target's largest model (by MACs, all its rows) out, fit the target on the rest as ``estimate fit``
    writes it (:func:`~deploykit.estimator.calibration.calibrate`: figures, interval, ``fitted_macs``) and estimate
    the left-out model with it: inside its 80% interval without the size widening, and with it (the estimate's
    own, :func:`~deploykit.estimator.model.size_extrapolation`). Empty below three models (two left to fit on)."""
    if len(models_of(rows)) < 3:
        return {}
    samples = layer_samples(rows)
    macs = {(m, r): total_macs(ls) for (m, r, *_), (ls, _) in zip(rows, samples)}
    big = max(macs, key=lambda k: macs[k])
    rest = [x for x in rows if (x[0], x[1]) != big]
    fitted, _ = calibrate(target, rest)
    roof = roofline_for(fitted)
    layers = next(ls for (m, r, *_), (ls, _) in zip(rows, samples) if (m, r) == big)
    widened = estimate_layers(layers, roof)
    plain = estimate_layers(layers, replace(roof, fitted_macs=None))
    out = []
    for m, r, ms, src in (x for x in rows if (x[0], x[1]) == big):
        out.append({
            "model": m, "resolution": r, "source": src, "measured_ms": ms, "predicted_ms": plain.latency_ms,
            "low_ms": plain.low_ms, "high_ms": plain.high_ms, "widened_low_ms": widened.low_ms,
            "widened_high_ms": widened.high_ms, "inside": bool(plain.low_ms <= ms <= plain.high_ms),
            "inside_widened": bool(widened.low_ms <= ms <= widened.high_ms),
        })  # fmt: skip
    return {
        "model": f"{big[0]}@{big[1]}",
        "macs": macs[big],
        "fitted_macs": list(roof.fitted_macs),
        "ratio": macs[big] / roof.fitted_macs[1],  # how far above the largest model the fit saw
        "extrapolated": bool(widened.extrapolated_size and widened.extrapolated_size["beyond_margin"]),  # widened
        "interval_fitted": fitted.roofline.get("interval_basis", "").startswith("split-conformal"),
        "coverage": float(np.mean([x["inside"] for x in out])),
        "coverage_widened": float(np.mean([x["inside_widened"] for x in out])),
        "residuals": out,
    }


def size_coverage(results: list[dict]) -> dict:
    """Leave-the-largest-model-out over every target of ``results`` (:func:`validate_target`'s) that has it: the
    share of rows inside the 80% interval without and with the size widening, over all rows, over those beyond
    :data:`SIZE_MARGIN` (flagged and widened), and over those of them whose fit had an interval of its own (three
    or more models left: a fit on two says ×0.5-2, which covers nearly anything)."""
    every = [(r["leave_largest_out"], x) for r in results if r.get("leave_largest_out")
             for x in r["leave_largest_out"]["residuals"]]  # fmt: skip

    def summary(xs):
        return {
            "rows": len(xs),
            "coverage": float(np.mean([x["inside"] for _, x in xs])) if xs else None,
            "coverage_widened": float(np.mean([x["inside_widened"] for _, x in xs])) if xs else None,
        }

    beyond = [(lo, x) for lo, x in every if lo["extrapolated"]]
    return {
        "targets": sum(1 for r in results if r.get("leave_largest_out")),
        "margin": SIZE_MARGIN,
        "widening_per_log": SIZE_WIDENING_PER_LOG["above"],
        "all": summary(every),
        "beyond_margin": summary(beyond),
        "beyond_margin_fitted_interval": summary([(lo, x) for lo, x in beyond if lo["interval_fitted"]]),
    }


def heldout_target(target: Target) -> dict:
    """Score the *shipped* profile of a target on its corpus rows with ``split = heldout`` (independent sources,
    never in any fit): median absolute error, Spearman and the share inside each row's stated interval. Nothing
    is refitted here: the figures are what the profile ships, with the rows it was fitted on (``fitted_on``, its
    ``[targets.roofline] fit`` note) beside them. Empty when the target has no held-out rows."""
    from .. import corpus

    held = corpus.rows_for(target, "heldout")
    if not held:
        return {}
    r = roofline_for(target)
    scored = []
    for row, (layers, _) in zip(held, layer_samples([(x.model, x.resolution, x.latency_ms) for x in held])):
        e = estimate_layers(layers, r)
        if e.latency_ms is None:
            continue
        scored.append((row, e))
    ape = [abs(e.latency_ms / row.latency_ms - 1) for row, e in scored]
    inside = [e.low_ms <= row.latency_ms <= e.high_ms for row, e in scored]
    agree = lab_agreement([(row.model, row.resolution, row.latency_ms) for row, _ in scored])
    return {
        "rows": len(scored),
        "sources": sorted({row.source for row, _ in scored}),
        "median_ape": float(np.median(ape)) if ape else None,
        "spearman": spearman([row.latency_ms for row, _ in scored], [e.latency_ms for _, e in scored]),
        "interval_coverage": float(np.mean(inside)) if inside else None,
        "lab_agreement": agree,
        "fitted_on": (target.roofline or {}).get("fit") or "not fitted (datasheet figures)",
        "residuals": [
            {
                "model": row.model,
                "resolution": row.resolution,
                "source": row.source,
                "measured_ms": row.latency_ms,
                "predicted_ms": e.latency_ms,
                "low_ms": e.low_ms,
                "high_ms": e.high_ms,
            }
            for row, e in scored
        ],
    }


def lab_agreement(rows: list[tuple[str, int, float]]) -> dict:
    """What the labs' own disagreement leaves to any estimator that gives one latency per model and chip: each
    model predicted by the median of these same rows of it (no estimator can know which lab it is scored on).
    Where labs disagree on a model (a runtime fallback in one lab's export, an older Core ML), that floor on the
    error and ceiling on the Spearman are the rows', not the estimator's: a reference beside the scores."""
    by: dict[tuple[str, int], list[float]] = {}
    for m, r, ms in rows:
        by.setdefault((m, r), []).append(ms)
    pred = [float(np.median(by[(m, r)])) for m, r, _ in rows]
    meas = [ms for *_, ms in rows]
    ape = [abs(p / v - 1) for p, v in zip(pred, meas)]
    return {
        "median_ape": float(np.median(ape)) if ape else None,
        "spearman": spearman(meas, pred),
        "within_15pct": sum(a <= 0.15 for a in ape),
    }


def family_transfer(profiles: dict) -> list[dict]:
    """Leave-one-device-out within a vendor family of the corpus: AI Hub's rows of one target name and precision
    measured on three or more devices of one vendor (:func:`vendor`: the Samsung Galaxy phones; Qualcomm's own
    boards and laptops), each device predicted from its siblings' pooled rows (:func:`leave_one_device_out`),
    scaled by datasheet peaks where ``profiles`` give every device one."""
    from collections import defaultdict

    from .. import corpus

    groups: dict[tuple, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for r in corpus.rows():
        if r.split != "fit" or r.source != "aihub":
            continue
        family = vendor(profiles[r.device]) if r.device in profiles else None
        if family:
            groups[(family, r.target, r.precision)][r.device].append((r.model, r.resolution, r.latency_ms, r.source))
    out = []
    for (family, target, precision), by_dev in sorted(groups.items()):
        if len(by_dev) < 3:
            continue
        # AI Hub's rows all ran on the NPU, which runs a float model in fp16 (see roofline_for)
        bytes_as = {"fp32": "fp16"}.get(precision, precision if precision in BYTES_PER_ELEM else "int8")
        base = Roofline(1e13, 5e10, bytes_as, invoke_s=1e-4, efficiency={"dwconv": 0.1}, fuse_elementwise=True)
        # scaled by the datasheet peaks of the profiles' targets of that name, where every device has one
        peaks = {}
        for d in by_dev:
            prof = profiles.get(d)
            t = next((t for t in (prof.targets if prof else []) if (t.name, t.precision) == (target, precision)), None)
            if t is not None and t.peak_macs_per_s:
                peaks[d] = datasheet_peak(t)
        scale = {d: max(peaks.values()) / peaks[d] for d in by_dev} if len(peaks) == len(by_dev) else {}
        for row in leave_one_device_out(by_dev, base, scale)[0]:
            out.append({"family": family, "target": target, "precision": precision, "datasheet_scaled": bool(scale),
                        **row})  # fmt: skip
    return out
