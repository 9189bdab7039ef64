"""Intervals: held-out residuals of a target's fit (leave one model out, leave one source out), the
split-conformal interval they give an estimate, and the scores that summarise them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..targets import Target
from .fitting import default_free, fit, macs_baseline
from .layer_fit import LayerTable, scale_only, with_layer_fit
from .layers import layer_samples, total_macs
from .model import INTERVAL, LayerArrays, datasheet_peak, datasheet_roofline


@dataclass
class Residual:
    """One held-out prediction: the row, what a fit without it predicted, and how that fit was made."""

    model: str
    resolution: int
    source: str
    measured_ms: float
    predicted_ms: float
    baseline_ms: float  # latency = a + k·MACs fitted on the same training rows
    split: str  # "model" (leave one model out) or "source" (leave one source out)

    @property
    def log_ratio(self) -> float:  # log(measured / predicted): what multiplies an estimate to give the truth
        return float(np.log(self.measured_ms / self.predicted_ms))


def cross_validate(
    target: Target, rows: list[tuple[str, int, float, str]], tables: list[LayerTable] | None = None
) -> list[Residual]:
    """Leave each model out (all its rows), refit on the rest with :func:`default_free` for what is left, and
    predict it; where the rows come from two or more sources, also leave each source out. Needs two models.

    With ``tables`` (the target's per-layer tables, ``estimate fit --layers``) each fold's shape (efficiencies,
    ridge) is fitted on the tables of the models it keeps measured rows of: a left-out model's layer times never
    reach the fit that predicts it."""
    samples = layer_samples(rows)
    base = datasheet_roofline(target)
    keys = [(m, r) for m, r, *_ in rows]
    srcs = [s for *_, s in rows]
    out: list[Residual] = []
    folds = [("model", [i for i, k in enumerate(keys) if k == key]) for key in dict.fromkeys(keys)]
    if len(set(srcs)) >= 2:
        folds += [("source", [i for i, s in enumerate(srcs) if s == src]) for src in sorted(set(srcs))]
    for split, test in folds:
        train = [i for i in range(len(rows)) if i not in test]
        if not train:
            continue
        free = default_free(target, len(train), len({keys[i] for i in train}))
        fold_base = base
        kept = {keys[i] for i in train if srcs[i] == "measured"}
        fold_tables = [tb for tb in tables or [] if (tb.model, tb.resolution) in kept]
        if fold_tables:
            fold_base, free = with_layer_fit(base, fold_tables), scale_only(free)
        res = fit(
            fold_base,
            [samples[i] for i in train],
            free=free,
            tie_ridge="mem_bw_bytes_per_s" not in free,
            pull_peak_to=datasheet_peak(target),
        )
        baseline = macs_baseline([(total_macs(samples[i][0]), samples[i][1]) for i in train])
        for i in test:
            m, r, ms, src = rows[i][:4]
            pred = LayerArrays(samples[i][0]).latency_ms(res.roofline)
            out.append(Residual(m, r, src, ms, pred, float(baseline(total_macs(samples[i][0]))), split))
    return out


def interval_from(residuals: list[Residual], coverage: float = INTERVAL) -> tuple[float, float] | None:
    """[low, high] factors on an estimate from cross-validated log residuals (log measured/predicted), as a
    split-conformal interval does it: the k-th smallest and k-th largest of n residuals with
    k = floor((n + 1)·(1 - c)/2), which covers a new row with probability ≥ c when rows are exchangeable. With
    fewer than 1/(1-c)·2 - 1 residuals (9 for 80%) that would be beyond the extremes; the interval is then the
    extremes stretched by their range over n. Never narrower than ±5% (the spread of repeated runs). None with
    fewer than three residuals: too few to say anything, and the caller keeps the uncalibrated factor of 2."""
    lr = sorted(x.log_ratio for x in residuals)
    n = len(lr)
    if n < 3:
        return None
    k = int(np.floor((n + 1) * (1 - coverage) / 2))
    stretch = (lr[-1] - lr[0]) / n
    lo = lr[k - 1] if k >= 1 else lr[0] - stretch
    hi = lr[n - k] if k >= 1 else lr[-1] + stretch
    return float(np.exp(min(lo, np.log(0.95)))), float(np.exp(max(hi, np.log(1.05))))


def spearman(a: list[float], b: list[float]) -> float | None:
    from scipy.stats import spearmanr

    if len(a) < 3 or len(set(a)) < 2 or len(set(b)) < 2:
        return None
    return float(spearmanr(a, b).statistic)


def summarize(residuals: list[Residual], split: str) -> dict:
    """Median absolute error, Spearman and interval coverage of one kind of held-out prediction, with the
    MACs-affine baseline beside it."""
    xs = [x for x in residuals if x.split == split]
    if not xs:
        return {}
    ape = [abs(x.predicted_ms / x.measured_ms - 1) for x in xs]
    bape = [abs(x.baseline_ms / x.measured_ms - 1) for x in xs]
    return {
        "rows": len(xs),
        "median_ape": float(np.median(ape)),
        "spearman": spearman([x.measured_ms for x in xs], [x.predicted_ms for x in xs]),
        "baseline_median_ape": float(np.median(bape)),
        "baseline_spearman": spearman([x.measured_ms for x in xs], [x.baseline_ms for x in xs]),
    }


def set_interval(roof: dict, interval: tuple[float, float] | None, basis: str) -> None:
    """Write a target's interval and its basis into its ``[targets.roofline]`` table, or drop both."""
    if interval is None:
        roof.pop("interval", None)
        roof.pop("interval_basis", None)
    else:
        roof["interval"] = [float(f"{interval[0]:.3g}"), float(f"{interval[1]:.3g}")]
        roof["interval_basis"] = basis


def interval_basis(residuals: list[Residual], rows) -> str:
    """What a fitted target's interval rests on, in the words its profile keeps (``interval_basis``)."""
    kinds = ["leave-one-model-out"] + (["leave-one-source-out"] if any(x.split == "source" for x in residuals) else [])
    srcs = sorted({s for *_, s in rows})
    return (
        f"split-conformal {INTERVAL:.0%} interval from {len(residuals)} {' + '.join(kinds)} residuals; fitted on {len(rows)} rows "
        f"({', '.join(srcs)})"
    )


def coverage(residuals: list[Residual], coverage: float = INTERVAL) -> float | None:
    """The share of held-out rows inside the interval derived from the *other* held-out residuals of the
    target (each row's interval never sees its own residual)."""
    hits = []
    for i, x in enumerate(residuals):
        others = residuals[:i] + residuals[i + 1 :]
        iv = interval_from(others, coverage)
        if iv is None:
            continue
        hits.append(iv[0] <= x.measured_ms / x.predicted_ms <= iv[1])
    return float(np.mean(hits)) if hits else None
