"""Transfer: a target without rows of its own (or with one model's) takes a calibrated sibling's fit, the same
target on another device of its vendor family: borrowed (scaled by the ratio of datasheet peaks) or anchored
(the sibling's shape scaled to the one model's rows), with the interval of how well such transfers carry."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..targets import Target
from .calibration import calibrate
from .fitting import default_free_for_class, fit, macs_baseline
from .intervals import Residual, interval_from, set_interval, summarize
from .layers import FitRow, layer_samples, models_of, total_macs, training_rows
from .model import (
    ANCHORED_NOTE,
    BORROWED_NOTE,
    INTERVAL,
    UNCALIBRATED,
    Calibration,
    LayerArrays,
    Roofline,
    datasheet_bw,
    datasheet_peak,
    datasheet_roofline,
    roofline_for,
    with_figures,
)
from .reports import BorrowedFitReport


def leave_one_device_out(
    rows_by_device: dict[str, list], base: Roofline, scale: dict[str, float] | None = None, free=None
) -> tuple[list[dict], list[Residual]]:
    """Predict each device's rows from the pooled rows of its siblings (same vendor family, target and
    precision): one roofline fitted on the other devices' rows, each divided by its device's ``scale`` (the
    datasheet peak of a reference device over its own; 1 where unknown), and the prediction multiplied by the
    left-out device's. Returns a summary per device (with the MACs-affine baseline fitted on the same pooled,
    scaled rows) and every residual."""
    scale = scale or {}
    out, every = [], []
    for dev, test in sorted(rows_by_device.items()):
        train = [FitRow(m, r, ms / scale.get(d, 1.0), s) for d, rs in rows_by_device.items() if d != dev
                 for m, r, ms, s in rs]  # fmt: skip
        if len(models_of(train)) < 2:
            continue
        samples = layer_samples(train)
        f = free or default_free_for_class(base, len(models_of(train)))
        res = fit(base, samples, free=f, tie_ridge="mem_bw_bytes_per_s" not in f)
        baseline = macs_baseline([(total_macs(ls), ms) for ls, ms in samples])
        k = scale.get(dev, 1.0)
        resid = [
            Residual(
                m,
                r,
                src,
                ms,
                k * LayerArrays(ls).latency_ms(res.roofline),
                k * float(baseline(total_macs(ls))),
                "device",
            )
            for (m, r, ms, src), (ls, _) in zip(test, layer_samples(test))
        ]
        every += resid
        out.append({"device": dev, "train_rows": len(train), "scale": k, **summarize(resid, "device")})
    return out, every


def borrow(
    target: Target, sibling: Target, family_residuals: list[Residual], pool: str = "family"
) -> tuple[Target, BorrowedFitReport]:
    """A target without rows of its own takes a calibrated sibling's fitted figures (same target name and
    precision on another device of its family), peak and bandwidth scaled by the ratio of their datasheet peaks,
    and the interval of the family's leave-one-device-out residuals (the transfer's, wider than a fit's); its
    fit note says so."""
    k = datasheet_peak(target) / datasheet_peak(sibling)
    nt = _from_sibling(
        target,
        replace(
            sibling, peak_macs_per_s=sibling.peak_macs_per_s * k, mem_bw_bytes_per_s=sibling.mem_bw_bytes_per_s * k
        ),
        f"{BORROWED_NOTE} {sibling.id} (its fit: {(sibling.roofline or {}).get('fit', '')}), peak and bandwidth "
        f"scaled by the datasheet peak ratio {k:.3g}",
        family_residuals,
        f"split-conformal {INTERVAL:.0%} interval from {len(family_residuals)} leave-one-device-out residuals "
        f"({pool}: a transfer's, not a fit's); borrowed from {sibling.id} × {k:.3g}",
        Calibration.BORROWED,
    )
    return nt, _borrowed_report(nt, sibling, k, [], None)


def _from_sibling(
    target: Target, figures: Target, note: str, residuals: list[Residual], basis: str, calibration: Calibration
) -> Target:
    """``target`` with a sibling's (already scaled) fitted ``figures``, its own datasheet figures kept beside
    them, the fit note and how it was calibrated, and the interval of ``residuals``."""
    roof = {**(figures.roofline or {})}
    roof.pop("paper_target", None)
    roof["datasheet_peak_macs_per_s"] = datasheet_peak(target)
    roof["datasheet_mem_bw_bytes_per_s"] = datasheet_bw(target)
    roof["fit"] = note
    roof["calibration"] = str(calibration)
    iv = interval_from(residuals)
    if iv is None:  # a family of one sibling leaves no transfer to score: say so rather than "not fitted"
        iv, basis = UNCALIBRATED, f"too few transfer residuals for an interval ({len(residuals)}), ×0.5-2 assumed"
    set_interval(roof, iv, basis)
    return with_figures(target, figures.peak_macs_per_s, figures.mem_bw_bytes_per_s, roof)


def _borrowed_report(nt: Target, sibling: Target, scale: float, rows, rms_log_error: float | None) -> BorrowedFitReport:
    """The report of a target that took a sibling's figures."""
    roof = nt.roofline
    return BorrowedFitReport(
        target=nt.id,
        borrowed_from=sibling.id,
        scale=scale,
        rows=len(rows),
        sources=sorted({s for *_, s in rows}),
        free=["scale"] if rows else [],
        rms_log_error=rms_log_error,
        peak_macs_per_s=nt.peak_macs_per_s,
        mem_bw_bytes_per_s=nt.mem_bw_bytes_per_s,
        dispatch_s=roof.get("dispatch_s", 0.0),
        invoke_s=roof.get("invoke_s", 0.0),
        efficiency=roof.get("efficiency", {}),
        interval=roof.get("interval"),
    )


def vendor(profile) -> str:
    """A profile's vendor family: the first word of its display name (Samsung, Google, Apple, Coral)."""
    return (profile.display or profile.name).split()[0]


def _siblings(target: Target, profile, profiles: dict, any_vendor: bool = False) -> dict[str, tuple[Target, list]]:
    """device → (target, its corpus rows) for each calibrated sibling of ``target``: a target of the same name,
    backend and precision on another device of the same vendor (of any vendor with ``any_vendor``), with rows of
    three or more models."""
    family = {}
    for p in profiles.values():
        if p.name == profile.name or (not any_vendor and vendor(p) != vendor(profile)):
            continue
        for s in p.targets:
            if (s.name, s.backend, s.precision) == (
                target.name,
                target.backend,
                target.precision,
            ) and s.peak_macs_per_s:
                rows = training_rows(s, None, published=True)
                if len(models_of(rows)) >= 3:
                    family[p.name] = (s, rows)
    return family


def transfer_residuals(target: Target, profile, profiles: dict) -> tuple[list[Residual], str]:
    """How well a datasheet-scaled transfer carries one device's fit to another, for the interval of a borrowed
    ``target``: the leave-one-device-out residuals of its vendor family (:func:`leave_one_device_out`), or, where
    the family has fewer than two calibrated devices (the Pixels' CPU and GPU targets: one each), of every
    calibrated device of the same target kind whatever its vendor (Pixel 6 ↔ Galaxy S23 CPUs, Pixel 7 ↔ S23 GPUs).
    Returns the residuals and the pool they came from."""
    pool, where = _siblings(target, profile, profiles), f"{vendor(profile)} family"
    if len(pool) < 2:
        pool, where = _siblings(target, profile, profiles, any_vendor=True), "same target on devices of any vendor"
    if len(pool) < 2:
        return [], where
    ref = datasheet_peak(target)
    scale = {d: ref / datasheet_peak(s) for d, (s, _) in pool.items()}
    nearest = _nearest(target, pool)[1][0]  # the pooled fit starts from its datasheet figures
    _, residuals = leave_one_device_out({d: rs for d, (_, rs) in pool.items()}, datasheet_roofline(nearest), scale)
    return residuals, where


def _nearest(target: Target, family: dict[str, tuple[Target, list]]) -> tuple[str, tuple[Target, list]]:
    """The member of ``family`` whose datasheet peak is nearest the target's (in ratio)."""
    return min(family.items(), key=lambda kv: abs(np.log(datasheet_peak(target) / datasheet_peak(kv[1][0]))))


def transfer(target: Target, profile, profiles: dict, rows=None) -> tuple[Target, BorrowedFitReport] | None:
    """For a target without corpus rows: its nearest calibrated sibling (:func:`_siblings`; nearest by datasheet
    peak), fitted on its rows, borrowed by :func:`borrow` with the interval of :func:`transfer_residuals`. Given
    ``rows`` of the target's own that cover one model, the borrowed shape is then scaled to them (:func:`anchor`).
    None where the target has no such sibling."""
    family = _siblings(target, profile, profiles)
    if not family:
        return None
    _, (sib, sib_rows) = _nearest(target, family)
    fitted, _ = calibrate(sib, sib_rows)
    if rows:
        return anchor(target, fitted, rows, family)
    residuals, where = transfer_residuals(target, profile, profiles)
    return borrow(target, fitted, residuals, where)


def scaled(target: Target, c: float) -> Target:
    """The target with every estimate multiplied by ``c``: peak and bandwidth divided by it, the costs per op and
    per inference multiplied (each layer's max(compute, memory) + dispatch, plus invoke, scales by ``c``)."""
    roof = dict(target.roofline or {})
    for k in ("dispatch_s", "invoke_s"):
        if k in roof:
            roof[k] = float(f"{roof[k] * c:.4g}")
    return with_figures(target, target.peak_macs_per_s / c, target.mem_bw_bytes_per_s / c, roof)


def _scale_to(rows, predicted: dict) -> float:
    """The factor that best carries the ``predicted`` latencies ((model, resolution) → ms) onto the rows (least
    squares in log space)."""
    return float(np.exp(np.mean([np.log(ms / predicted[(m, r)]) for m, r, ms, *_ in rows])))


def anchored_residuals(family: dict[str, tuple[Target, list]]) -> list[Residual]:
    """How well one model's rows on a device carry a sibling's fitted shape to the device's other models: for each
    device of the family, each other device's fit scaled to each one of its models predicts the rest."""
    fits = {d: roofline_for(calibrate(s, rs)[0]) for d, (s, rs) in family.items()}
    out: list[Residual] = []
    for dev, (_, rs) in family.items():
        for other, roof in fits.items():
            if other == dev:
                continue
            pred = {(m, r): LayerArrays(ls).latency_ms(roof) for (m, r, *_), (ls, _) in zip(rs, layer_samples(rs))}
            for m, r, *_ in rs:
                c = _scale_to([x for x in rs if (x[0], x[1]) == (m, r)], pred)
                out += [  # no MACs baseline for a one-row transfer: its field repeats the prediction
                    Residual(m2, r2, src, ms, c * pred[(m2, r2)], c * pred[(m2, r2)], "anchor")
                    for m2, r2, ms, src in rs
                    if (m2, r2) != (m, r)
                ]
    return out


def anchor(
    target: Target, sibling: Target, rows, family: dict[str, tuple[Target, list]]
) -> tuple[Target, BorrowedFitReport]:
    """A target whose own rows cover one model: a fit of its own would move one parameter to pass through that
    model and guess the rest; the sibling's fitted shape scaled to the rows keeps what the sibling's several models
    taught, and predicts the other models better than a fit of its own does (``scripts/estimator_sparse_rows.py``,
    part 1; figures in docs/estimator.md). The interval is that of :func:`anchored_residuals`."""
    shape = roofline_for(sibling)
    pred = {(m, r): LayerArrays(ls).latency_ms(shape) for (m, r, *_), (ls, _) in zip(rows, layer_samples(rows))}
    c = _scale_to(rows, pred)
    models = ", ".join(sorted({f"{m}@{r}" for m, r, *_ in rows}))
    residuals = anchored_residuals(family)
    nt = _from_sibling(
        target,
        scaled(sibling, c),
        f"{sibling.id}{ANCHORED_NOTE} (its fit: {(sibling.roofline or {}).get('fit', '')}), scaled by {c:.3g} to "
        f"{len(rows)} {'+'.join(sorted({s for *_, s in rows}))} row(s) of {models}: one model is too few to fit a "
        "shape of its own",
        residuals,
        f"split-conformal {INTERVAL:.0%} interval from {len(residuals)} residuals of the family's devices, each "
        f"predicted from a sibling's shape scaled to one of its models; scaled from {sibling.id} by {c:.3g}",
        Calibration.ANCHORED,
    )
    rms = float(np.sqrt(np.mean([np.log(c * pred[(m, r)] / ms) ** 2 for m, r, ms, *_ in rows])))
    return nt, _borrowed_report(nt, sibling, c, rows, rms)
