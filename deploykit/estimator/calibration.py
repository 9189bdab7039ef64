"""Calibration: a target fitted on its own rows, cross-validated, and written back with its interval and its
``calibration`` (:class:`~deploykit.estimator.model.Calibration`), with a report of the fit."""

from __future__ import annotations

from ..targets import Target
from .fitting import FitResult, default_free, fit_target
from .intervals import cross_validate, interval_basis, interval_from, set_interval, summarize
from .layer_fit import LayerTable, fit_layer_efficiency, scale_only, shaped
from .layers import layer_samples, models_of, total_macs
from .model import (
    FITTED_FIELDS,
    UNCALIBRATED,
    Calibration,
    datasheet_bw,
    datasheet_peak,
    datasheet_roofline,
    recorded_kind,
    with_figures,
)
from .reports import FitReport


def fitted_target(
    target: Target,
    result: FitResult,
    note: str,
    interval=None,
    basis: str = "",
    kinds: set[str] | None = None,
    macs: list[int] | None = None,
) -> Target:
    """The target with fitted figures written back (profile fields + [targets.roofline]), with its interval, the
    op ``kinds`` of the rows it was fitted on and the ``macs`` of the smallest and largest of their models. The
    datasheet figures stay beside them: the next fit and every cross-validation start from those."""
    r = result.roofline
    roof = {k: v for k, v in (target.roofline or {}).items() if k not in FITTED_FIELDS}  # nothing stale
    roof["datasheet_peak_macs_per_s"] = datasheet_peak(target)  # what borrowing siblings scale by
    roof["datasheet_mem_bw_bytes_per_s"] = datasheet_bw(target)
    roof.update(dispatch_s=float(f"{r.dispatch_s:.4g}"), fit=note, calibration=str(Calibration.FITTED))
    if r.invoke_s or "invoke_s" in result.free:
        roof["invoke_s"] = float(f"{r.invoke_s:.4g}")
    if r.efficiency:
        roof["efficiency"] = {k: float(f"{v:.4g}") for k, v in r.efficiency.items()}
    if kinds is not None:
        roof["fitted_kinds"] = sorted(kinds)
    if macs:
        roof["fitted_macs"] = [int(min(macs)), int(max(macs))]
    set_interval(roof, interval, basis)
    return with_figures(target, r.peak_macs_per_s, r.mem_bw_bytes_per_s, roof)


def calibrate(target: Target, rows, tables: list[LayerTable] | None = None) -> tuple[Target, FitReport]:
    """Fit a target on its rows, cross-validate, and return it with its fitted figures and interval written
    back, and a report of the fit (what moved, the residuals' summaries, the interval and its basis). With
    ``tables`` (its per-layer tables: ``estimate fit --layers``), the efficiency per op kind and the ridge point
    are fitted on them first (:mod:`.layer_fit`), in the fit and in each fold of its cross-validation."""
    datasheet = datasheet_roofline(target)
    layer_fit = fit_layer_efficiency(datasheet, tables) if tables else None
    if layer_fit is None:
        res = fit_target(target, rows)
    else:
        free = scale_only(default_free(target, len(rows), len(models_of(rows))))
        res = fit_target(target, rows, free, base=shaped(datasheet, layer_fit))
    residuals = cross_validate(target, rows, tables) if len(models_of(rows)) >= 2 else []
    iv = interval_from(residuals)
    basis = interval_basis(residuals, rows) if iv else ""
    if iv is None:  # fitted, but on too few models to cross-validate: say so rather than "not fitted"
        iv = UNCALIBRATED
        basis = (
            f"fitted on {len(rows)} row(s) of {len(models_of(rows))} model(s): too few left-out "
            f"residuals for an interval, ×{UNCALIBRATED[0]:g}-{UNCALIBRATED[1]:g} assumed"
        )
    sources = sorted({s for *_, s in rows})
    note = (
        f"least squares in log space on {len(rows)} {'+'.join(sources)} row(s): "
        + ", ".join(sorted({f"{m}@{r}" for m, r, *_ in rows}))
        + f"; free: {', '.join(res.free)}"
    )
    if layer_fit is not None:
        note += (
            f"; efficiency per op kind and ridge from {layer_fit.rows} per-layer rows of"
            f" {len(layer_fit.models)} profiled model(s): {', '.join(layer_fit.models)}"
        )
    samples = layer_samples(rows)
    kinds = {recorded_kind(x.kind) for layers, _ in samples for x in layers}
    nt = fitted_target(target, res, note, iv, basis, kinds, [total_macs(layers) for layers, _ in samples])
    return nt, FitReport(
        target=target.id,
        rows=len(rows),
        sources=sources,
        free=list(res.free),
        rms_log_error=res.rms_log_error,
        peak_macs_per_s=nt.peak_macs_per_s,
        mem_bw_bytes_per_s=nt.mem_bw_bytes_per_s,
        dispatch_s=nt.roofline["dispatch_s"],
        invoke_s=nt.roofline.get("invoke_s", 0.0),
        efficiency=nt.roofline.get("efficiency", {}),
        interval=list(iv) if iv else None,
        interval_basis=basis or None,
        leave_one_model_out=summarize(residuals, "model"),
        leave_one_source_out=summarize(residuals, "source"),
        layer_rows=layer_fit.rows if layer_fit else 0,
        layer_models=layer_fit.models if layer_fit else [],
        # as many rows as free parameters: the fit passes through every row, so its error is 0 by
        # construction and says nothing about how well it predicts
        caveat=(
            f"{len(rows)} row(s) for {len(res.free)} free parameter(s): the fit reproduces them exactly;"
            " its error says nothing about other models (measure more to check it)"
            if len(rows) <= len(res.free)
            else None
        ),
    )
