"""How should a target with few kinds of rows be fitted? The figures behind docs/estimator-validation.md's "Rows of one model
borrow a sibling's shape" and docs/decisions.md's variants tried and not adopted, on the shipped corpus's fitted rows
only (scripts/estimator_doc.py copies this output into docs/estimator-validation.md):

    .venv/bin/python scripts/estimator_sparse_rows.py

1. One model: each Galaxy S22-S26 NPU target (AI Hub rows) keeps the rows of one of its models, then predicts
   its other models by (a) a fit of its own on that row (``default_free``: one parameter) and (b) each calibrated
   sibling's fitted shape scaled to that row. Median error per case, then the median of those.
2. One family of several sizes: each Table 6 target keeps its MobileNetV2 widths or its MNv4-Conv sizes and
   predicts its other families with two free parameters (today's rule), one, and a sibling's shape scaled to them.
3. The same cases, every parameter of the class free but pulled towards the sibling's shape scaled to the kept
   rows (a penalty ``weight`` × log(parameter / sibling's) per parameter): between a fit of its own and the
   sibling's shape.
4. Two free parameters for a whole-graph accelerator fitted on 3-5 models (iPhone 13, Pixel 8 Edge TPU).
5. Attention rows predicted by fits on a target's attention-free rows (the five Table 6 targets with Hybrid rows).
6. A lab change: the two Neural Engine fits (the iPhone 13 on the MobileNetV4 authors' rows, the iPhone 12 on the
   RepViT authors') predicting each other, scaled by datasheet peaks: leave-one-device-out over fitted rows only.
"""

from __future__ import annotations

import itertools
import math
import re
import statistics
from dataclasses import replace

import numpy as np

from deploykit import estimator as E
from deploykit.devices import load_profiles

GALAXY = ("galaxy-s22", "galaxy-s24", "galaxy-s25", "galaxy-s26")
# Table 6 targets with a sibling of the same processor class on another phone
TABLE6_PAIRS = [
    (("pixel6", "pixel6/litert-xnnpack/int8"), ("s23", "s23/litert-xnnpack/int8")),
    (("pixel7", "pixel7/litert-gpu/fp16"), ("s23", "s23/litert-gpu/fp16")),
]


def family(model: str) -> str:
    return re.sub(r"_(\d+|s|m|l|xs|xxs|m\d_\d)$", "", model)


def ms(model: str, res: int, roof: E.Roofline) -> float:
    return E.estimate_layers(E.model_layers(model, res)[2], roof).latency_ms


def median_ape(pairs) -> float:
    return statistics.median(abs(p / m - 1) for p, m in pairs)


def one_model(profiles) -> tuple[list[float], list[float]]:
    by_name: dict[tuple, dict] = {}
    for d in GALAXY:
        for t in profiles[d].targets:
            by_name.setdefault((t.name, t.backend, t.precision), {})[d] = t
    own, sibling = [], []
    for devs in by_name.values():
        for d, t in devs.items():
            rows = {(m, r): v for m, r, v, *_ in E.training_rows(t, published=True)}
            if len(rows) < 3:
                continue
            for (m, r), v in rows.items():
                rest = [(mm, rr, vv) for (mm, rr), vv in rows.items() if (mm, rr) != (m, r)]
                fitted = E.fit_target(t, [(m, r, v, "row")]).roofline
                e_own = median_ape((ms(mm, rr, fitted), vv) for mm, rr, vv in rest)
                for other, s in devs.items():
                    if other == d or not (s.roofline or {}).get("fit"):
                        continue
                    shape = E.roofline_for(s)
                    c = v / ms(m, r, shape)
                    own.append(e_own)
                    sibling.append(median_ape((c * ms(mm, rr, shape), vv) for mm, rr, vv in rest))
    return own, sibling


def _fewer_free(t, kept, rest, out, residuals) -> None:
    """Fit ``t`` on the ``kept`` family's rows with two free parameters and with one; score on the ``rest``
    (today's rule's residuals kept for the interval an out-of-family prediction would need)."""
    order = E.FREE_ORDER[E.target_class(t)]
    for label, free in (("two (today)", order[:2]), ("one", order[:1])):
        fitted = E.fit_target(t, kept, free=free).roofline
        out[label].append(median_ape((ms(m, r, fitted), v) for m, r, v, *_ in rest))
        if label == "two (today)":
            residuals += [E.Residual(m, r, s, v, ms(m, r, fitted), 0.0, "family") for m, r, v, s in rest]


def one_family(profiles, residuals: list) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"two (today)": [], "one": [], "sibling + scale": []}
    target = {t.id: t for p in profiles.values() for t in p.targets}
    # Table 6 targets with a sibling of their class on another phone, then those without one
    cases = [(tid, sid) for a, b in TABLE6_PAIRS for (_, tid), (_, sid) in ((a, b), (b, a))]
    cases += [(tid, None) for tid in ("pixel4/hexagon/int8", "pixel8/edgetpu/int8", "iphone13/coreml-ane/fp16")]
    for tid, sid in cases:
        t = target[tid]
        rows = E.training_rows(t, published=True)
        for f in ("mnv2", "mnv4_conv"):
            kept = [x for x in rows if family(x[0]) == f]
            rest = [x for x in rows if family(x[0]) != f]
            _fewer_free(t, kept, rest, out, residuals)
            if sid:
                shape = E.roofline_for(target[sid])
                c = math.exp(statistics.mean(math.log(v / ms(m, r, shape)) for m, r, v, *_ in kept))
                out["sibling + scale"].append(median_ape((c * ms(m, r, shape), v) for m, r, v, *_ in rest))
    return out


def pulled_to_sibling(t, shape: E.Roofline, kept, weight: float) -> E.Roofline:
    """Every free parameter of ``t``'s class fitted on ``kept``, each pulled towards ``shape`` scaled to them."""
    from scipy.optimize import least_squares

    samples = E.layer_samples(kept)
    arrays = [E.LayerArrays(ls) for ls, _ in samples]
    measured = np.log([v for _, v in samples])
    c = float(np.exp(np.mean(measured - np.log([a.latency_ms(shape) for a in arrays]))))
    start = E.roofline_for(E.scaled(replace(t, peak_macs_per_s=shape.peak_macs_per_s,
                                              mem_bw_bytes_per_s=shape.mem_bw_bytes_per_s,
                                              roofline={"dispatch_s": shape.dispatch_s, "invoke_s": shape.invoke_s,
                                                        "efficiency": dict(shape.efficiency)}), c))  # fmt: skip
    free = E.FREE_ORDER[E.target_class(t)]
    x0 = np.log([max(E.get_param(start, n), 1e-12) for n in free])

    def build(x):
        r = start
        for n, v in zip(free, np.exp(x)):
            r = E.set_param(r, n, float(v), None)
        return r

    def objective(x):
        return np.append(np.log([a.latency_ms(build(x)) for a in arrays]) - measured, weight * (x - x0))

    hi = np.array([0.0 if n.startswith("eff_") else v + 12 for n, v in zip(free, x0)])
    x0 = np.minimum(x0, hi - 1e-3)
    return build(least_squares(objective, x0, bounds=(x0 - 12, hi), method="trf").x)


def pulled(profiles) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    target = {t.id: t for p in profiles.values() for t in p.targets}
    for tid, sid in [(tid, sid) for a, b in TABLE6_PAIRS for (_, tid), (_, sid) in ((a, b), (b, a))]:
        rows = E.training_rows(target[tid], published=True)
        for f in ("mnv2", "mnv4_conv"):
            kept = [x for x in rows if family(x[0]) == f]
            rest = [x for x in rows if family(x[0]) != f]
            for w in (0.1, 0.3, 1.0, 3.0):
                fitted = pulled_to_sibling(target[tid], E.roofline_for(target[sid]), kept, w)
                out.setdefault(f"weight {w}", []).append(median_ape((ms(m, r, fitted), v) for m, r, v, *_ in rest))
    return out


TWO_FREE = {
    "per-op + peak, ridge tied (today)": (("dispatch_s", "peak_macs_per_s"), True),
    "per-op + peak, datasheet bandwidth": (("dispatch_s", "peak_macs_per_s"), False),
    "per-op + bandwidth, datasheet peak": (("dispatch_s", "mem_bw_bytes_per_s"), False),
    "per-op + per-inference": (("dispatch_s", "invoke_s"), True),
}


def two_free(profiles) -> dict[str, dict[str, list[float]]]:
    out: dict[str, dict[str, list[float]]] = {"one family": {}, "any four models": {}}
    for t in (t for p in profiles.values() for t in p.targets if E.target_class(t) == "npu"):
        rows = E.training_rows(t, published=True)
        models = sorted({(m, r) for m, r, *_ in rows})
        if len(models) < 6:
            continue
        sizes: dict[str, list] = {}
        for k in models:
            sizes.setdefault(family(k[0]), []).append(k)
        subsets = [("one family", set(ks)) for ks in sizes.values() if len(ks) >= 3]
        subsets += [("any four models", set(ks)) for ks in itertools.combinations(models, 4)]
        for kind, keep in subsets:
            kept = [x for x in rows if (x[0], x[1]) in keep]
            rest = [x for x in rows if (x[0], x[1]) not in keep]
            for label, (free, tie) in TWO_FREE.items():
                fitted = E.fit(E.datasheet_roofline(t), E.layer_samples(kept), free=free, tie_ridge=tie,
                               pull_peak_to=E.datasheet_peak(t)).roofline  # fmt: skip
                err = median_ape((ms(m, r, fitted), v) for m, r, v, *_ in rest)
                out[kind].setdefault(label, []).append(err)
    return out


ATTENTION_KINDS = set(E.UNSEEN_KIND_CHECK)


def attention_from_convs(profiles) -> list:
    residuals = []
    for t in (t for p in profiles.values() for t in p.targets):
        rows = E.training_rows(t, published=True)
        has = {(m, r): bool({x.kind for x in E.model_layers(m, r)[2]} & ATTENTION_KINDS) for m, r, *_ in rows}
        conv = [x for x in rows if not has[(x[0], x[1])]]
        if len(conv) == len(rows) or len({(m, r) for m, r, *_ in conv}) < 3:
            continue
        fitted = E.fit_target(t, conv).roofline
        for m, r, v, s in (x for x in rows if has[(x[0], x[1])]):
            residuals.append(E.Residual(m, r, s, v, ms(m, r, fitted), 0.0, t.id))
    return residuals


def main() -> None:
    profiles = load_profiles()
    own, sibling = one_model(profiles)
    print(f"1. one model's rows, Galaxy NPU targets ({len(own)} cases; median of per-case median errors):")
    print(f"   fit of its own {statistics.median(own):.1%}   sibling's shape scaled {statistics.median(sibling):.1%}")
    print("2. one family's rows, Table 6 targets (median / mean of per-case median errors):")
    residuals: list = []
    for label, errs in one_family(profiles, residuals).items():
        print(f"   {label:16s} {statistics.median(errs):.1%} / {statistics.mean(errs):.1%}  ({len(errs)} cases)")
    lo, hi = E.interval_from(residuals)
    print(f"   80% interval of today's out-of-family predictions: ×{lo:.2f}-{hi:.2f} ({len(residuals)} residuals)")
    print("3. one family's rows, pulled towards the sibling's scaled shape (median / mean):")
    for label, errs in pulled(profiles).items():
        print(f"   {label:16s} {statistics.median(errs):.1%} / {statistics.mean(errs):.1%}  ({len(errs)} cases)")
    print("4. two free parameters for a whole-graph accelerator on 3-5 models (median / mean of per-case medians):")
    for kind, by_label in two_free(profiles).items():
        for label, errs in by_label.items():
            print(
                f"   {kind:16s} {label:36s} {statistics.median(errs):6.1%} / {statistics.mean(errs):6.1%}  ({len(errs)} cases)"
            )
    res = attention_from_convs(profiles)
    lo, hi = E.interval_from(res)
    print(
        f"5. attention rows predicted by attention-free fits ({len(res)} rows, {len({x.split for x in res})} targets):"
    )
    for x in res:
        print(
            f"   {x.split:32s} {x.model}@{x.resolution}: {x.measured_ms} ms, predicted {x.predicted_ms:.2f} ({x.predicted_ms / x.measured_ms - 1:+.0%})"
        )
    print(
        f"   median error {statistics.median(abs(x.predicted_ms / x.measured_ms - 1) for x in res):.1%}, 80% interval ×{lo:.2f}-{hi:.2f}"
    )
    summary, res = lab_change(profiles)
    lo, hi = E.interval_from(res)
    print("6. a lab change: each Neural Engine fit predicting the other iPhone's rows (another lab), datasheet-scaled:")
    # leave_one_device_out returns each device's residuals in device order, as its summaries
    for row, start in zip(summary, itertools.accumulate([0] + [x["rows"] for x in summary])):
        ratios = [x.measured_ms / x.predicted_ms for x in res[start : start + row["rows"]]]
        print(
            f"   {row['device']:9s} {row['rows']} rows: median error {row['median_ape']:.1%}, measured/predicted "
            f"×{min(ratios):.2f}-{max(ratios):.2f}"
        )
    print(f"   80% interval of those {len(res)} residuals: ×{lo:.2f}-{hi:.2f}")


def lab_change(profiles) -> tuple[list[dict], list]:
    ane = {d: next(t for t in profiles[d].targets if t.backend == "coreml-ane") for d in ("iphone12", "iphone13")}
    rows = {d: E.training_rows(t, published=True) for d, t in ane.items()}
    ref = E.datasheet_peak(ane["iphone13"])
    scale = {d: ref / E.datasheet_peak(t) for d, t in ane.items()}
    return E.leave_one_device_out(rows, E.datasheet_roofline(ane["iphone13"]), scale)


if __name__ == "__main__":
    main()
