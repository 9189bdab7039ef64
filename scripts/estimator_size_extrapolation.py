"""How much wider should an estimate's interval be when the model is far larger (or smaller) than any model its
target was fitted on? The constant behind ``SIZE_WIDENING_PER_LOG`` and the margin ``SIZE_MARGIN``
(deploykit/estimator/model.py), on the shipped corpus's fitted rows only (scripts/estimator_doc.py copies this
output into docs/estimator-validation.md, "Extrapolation in size"):

    .venv/bin/python scripts/estimator_size_extrapolation.py

Every NPU target of the shipped profiles fitted on three or more models leaves its largest model out
(:func:`deploykit.estimator.leave_largest_out`: the target fitted on the rest as ``estimate fit`` writes it, its
interval from its own leave-one-model-out residuals, and the left-out model estimated with it). For a row at
x = log(its MACs / the largest fitted model's) whose log residual r = log(measured / predicted) falls outside the
unwidened interval [lo, hi], the widening it needed per unit of x is k = max(r - log hi, log lo - r) / x (0 inside).

The constant is the split-conformal 80% quantile of k (the ⌈(n+1)·0.8⌉-th smallest) over the rows beyond the
margin whose fit had an interval of its own (four or more models: a fit on two models has no residuals for one,
and its ×0.5-2 would say nothing about size). Widened by exp(k·x) each side, at least 80% of those rows are inside
their interval. The rows are scored again with the constant measured on the other devices' rows only (the three
runtimes of one phone miss together). The smallest model is left out the same way for the constant below the
range: small models on these NPUs run slower than fits on larger ones say (a fixed cost per inference the fits do
not free), so pricing them by the constant above would leave them mostly outside.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import replace

from deploykit import estimator as E
from deploykit.devices import load_profiles


def npu_targets(profiles) -> list:
    out = []
    for name in sorted(profiles):
        for t in profiles[name].targets:
            if t.peak_macs_per_s and t.mem_bw_bytes_per_s and E.target_class(t) == "npu":
                rows = E.training_rows(t, None, published=True)
                if len(E.models_of(rows)) >= 3:
                    out.append((t, rows))
    return out


def needed(lo: float, hi: float, measured: float, predicted: float, x: float) -> float:
    """The widening per unit of log MACs ratio that puts the row inside [lo, hi] × predicted."""
    r = math.log(measured / predicted)
    return max(0.0, (r - math.log(hi)) / x, (math.log(lo) - r) / x)


def quantile(ks: list[float], coverage: float = E.INTERVAL) -> float:
    """The ⌈(n+1)·c⌉-th smallest (the largest where that is beyond n): at least c of the rows covered."""
    ks = sorted(ks)
    return ks[min(len(ks), math.ceil((len(ks) + 1) * coverage)) - 1]


def largest_out(profiles) -> list[dict]:
    rows = []
    for t, trows in npu_targets(profiles):
        lo = E.leave_largest_out(t, trows)
        for x in lo["residuals"]:
            rows.append({"target": t.id, "device": t.device, "ratio": lo["ratio"], "fitted": lo["interval_fitted"],
                         **x})  # fmt: skip
    return rows


def smallest_out(profiles) -> list[dict]:
    """The smallest model left out the same way (the fit on the rest, the smallest estimated with it)."""
    out = []
    for t, trows in npu_targets(profiles):
        samples = E.layer_samples(trows)
        macs = {(m, r): E.total_macs(ls) for (m, r, *_), (ls, _) in zip(trows, samples)}
        small = min(macs, key=lambda k: macs[k])
        rest = [x for x in trows if (x[0], x[1]) != small]
        fitted, _ = E.calibrate(t, rest)
        roof = E.roofline_for(fitted)
        layers = E.model_layers(*small)[2]
        plain = E.estimate_layers(layers, replace(roof, fitted_macs=None))
        fitted_interval = fitted.roofline.get("interval_basis", "").startswith("split-conformal")
        for *_, ms, _ in (x for x in trows if (x[0], x[1]) == small):
            out.append({"target": t.id, "device": t.device, "ratio": macs[small] / roof.fitted_macs[0],
                        "fitted": fitted_interval, "measured_ms": ms, "predicted_ms": plain.latency_ms,
                        "low_ms": plain.low_ms, "high_ms": plain.high_ms})  # fmt: skip
    return out


def k_of(x: dict) -> float:
    return needed(x["low_ms"] / x["predicted_ms"], x["high_ms"] / x["predicted_ms"], x["measured_ms"],
                  x["predicted_ms"], abs(math.log(x["ratio"])))  # fmt: skip


def inside(x: dict, k: float) -> bool:
    w = math.exp(k * abs(math.log(x["ratio"])))
    return x["low_ms"] / w <= x["measured_ms"] <= x["high_ms"] * w


def share(xs: list[dict], k: float) -> str:
    n = sum(inside(x, k) for x in xs)
    return f"{n / len(xs):.0%} ({n} of {len(xs)})" if xs else "–"


def constant(rows: list[dict], far, label: str) -> float:
    """The widening per unit of log MACs ratio for the rows ``far`` selects, with how it covers them."""
    margin = E.SIZE_MARGIN
    beyond = [x for x in rows if far(x["ratio"])]
    pool = [x for x in beyond if x["fitted"]]
    k = quantile([k_of(x) for x in pool])
    print(f"   inside the unwidened 80% interval: rows within {margin:g}× {share([x for x in rows if not far(x['ratio'])], 0.0)}, "
          f"beyond {share(beyond, 0.0)}, beyond with a fitted interval {share(pool, 0.0)}")  # fmt: skip
    print(
        f"   {label} = {k:.3f}: the 80% conformal quantile of k over those {len(pool)} rows "
        f"(median k {statistics.median(k_of(x) for x in pool):.3f})"
    )
    print(
        f"   widened by exp({k:.3f}·|log ratio|): beyond {share(beyond, 0.0)} → {share(beyond, k)}; "
        f"with a fitted interval {share(pool, 0.0)} → {share(pool, k)} (in sample: k is measured on these rows)"
    )
    hits = []
    for dev in sorted({x["device"] for x in pool}):
        kd = quantile([k_of(x) for x in pool if x["device"] != dev])
        hits += [inside(x, kd) for x in pool if x["device"] == dev]
    print(
        f"   k measured on the other devices' rows only (the runtimes of one phone miss together): "
        f"{sum(hits)} of {len(hits)} ({sum(hits) / len(hits):.0%}) inside"
    )
    return k


def main() -> None:
    profiles = load_profiles()
    margin = E.SIZE_MARGIN
    rows = largest_out(profiles)
    print(f"1. the largest model left out, {len(rows)} rows of the NPU targets fitted on 3+ models; k = the widening "
          "needed per unit of log MACs ratio:")  # fmt: skip
    for x in rows:
        print(f"   {x['target']:40s} {x['model']}@{x['resolution']:<4d} ×{x['ratio']:5.2f} the largest fitted  "
              f"measured/predicted {x['measured_ms'] / x['predicted_ms']:.2f}  interval "
              f"×{x['low_ms'] / x['predicted_ms']:.2f}-{x['high_ms'] / x['predicted_ms']:.2f}"
              f"{'' if x['fitted'] else ' (2 models left: ×0.5-2)'}  k {k_of(x):.3f}")  # fmt: skip
    above = constant(rows, lambda r: r > margin, 'SIZE_WIDENING_PER_LOG["above"]')
    for ratio in (4, 8, 20):
        print(f"   a model {ratio}× the largest fitted: ×{math.exp(above * math.log(ratio)):.2f} each side")
    small = smallest_out(profiles)
    print(f"2. the smallest model left out the same way ({len(small)} rows): measured/predicted "
          f"{min(x['measured_ms'] / x['predicted_ms'] for x in small):.2f}-"
          f"{max(x['measured_ms'] / x['predicted_ms'] for x in small):.2f}")  # fmt: skip
    below = [x for x in small if x["ratio"] < 1 / margin]
    print(f"   priced by the constant above, rows below 1/{margin:g}: {share(below, 0.0)} → {share(below, above)}")
    k = constant(small, lambda r: r < 1 / margin, 'SIZE_WIDENING_PER_LOG["below"]')
    for ratio in (4, 8):
        print(f"   a model 1/{ratio} of the smallest fitted: ×{math.exp(k * math.log(ratio)):.2f} each side")


if __name__ == "__main__":
    main()
