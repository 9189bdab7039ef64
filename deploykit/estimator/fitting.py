"""Fitting: a target's roofline parameters moved by least squares in log space to measured latencies, the
order in which a target class's parameters are freed as rows allow, and the MACs-affine baseline every fit is
scored beside."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..errors import DeploykitError
from ..graph import Layer
from ..targets import TARGET_RANGES, Target
from .layers import layer_samples, models_of
from .model import LayerArrays, Roofline, datasheet_peak, datasheet_roofline, target_class


# The free parameters a fit may move, by name: a Roofline field, or ``eff_KIND`` for an op kind's efficiency. All
# are positive and fitted in log space.
def get_param(r: Roofline, name: str) -> float:
    """The value of the free parameter ``name`` in ``r``."""
    if name.startswith("eff_"):
        return r.eff(name[4:])
    return getattr(r, name)


def set_param(r: Roofline, name: str, value: float, tie_ridge: float | None) -> Roofline:
    """``r`` with the free parameter ``name`` set (an efficiency at most 1); a peak moved with ``tie_ridge`` moves
    the bandwidth with it, keeping that ridge point."""
    if name.startswith("eff_"):
        return replace(r, efficiency={**r.efficiency, name[4:]: min(value, 1.0)})
    r = replace(r, **{name: value})
    if name == "peak_macs_per_s" and tie_ridge:
        r = replace(r, mem_bw_bytes_per_s=value / tie_ridge)
    return r


@dataclass
class FitResult:
    roofline: Roofline
    free: tuple[str, ...]
    rows: int
    residuals: list[float]  # log(predicted / measured) per row after the fit

    @property
    def rms_log_error(self) -> float:
        return float(np.sqrt(np.mean(np.square(self.residuals)))) if self.residuals else 0.0


# A fit's peak is pulled towards the datasheet's, by this weight on log(peak / datasheet peak) beside the rows'
# log errors: a 1% error on one row weighs as much as a peak a third of a decade off. Where no layer of the rows
# is compute-bound (the Neural Engine's: all of them memory- or overhead-bound) the peak is otherwise free to
# run to its bound (1e16-1e17 MAC/s, a figure that means nothing); pulled, it stays at the datasheet's. The weight
# is small enough that leave-one-model-out over the shipped corpus (`deploykit estimate --validate`) is no worse
# with it than without.
PRIOR_WEIGHT = 0.03


def fit(
    r: Roofline,
    samples: list[tuple[list[Layer], float]],
    free: tuple[str, ...] = ("peak_macs_per_s", "dispatch_s"),
    tie_ridge: bool = True,
    _warm: bool = True,
    pull_peak_to: float | None = None,
) -> FitResult:
    """Least squares on log(latency) over ``samples`` = [(layers, measured ms)], moving ``free`` parameters.

    ``tie_ridge`` keeps the ridge point (peak / bandwidth) fixed while the peak moves: with two or three
    published rows per target there is not enough data to fit both, and the ridge is what the paper published.
    With fewer rows than free parameters, the trailing free parameters are dropped. A free peak is pulled
    towards ``pull_peak_to`` (:data:`PRIOR_WEIGHT`), the datasheet peak, where one is given."""
    from scipy.optimize import least_squares

    if not samples:
        raise DeploykitError("nothing to fit: no measured latencies for this target")
    free = tuple(free[: max(1, len(samples))])
    ridge = r.ridge if tie_ridge else None
    x0 = np.log([max(get_param(r, n), 1e-12) for n in free])
    measured = np.log([ms for _, ms in samples])
    arrays: dict[int, LayerArrays] = {}
    for layers, _ in samples:
        arrays.setdefault(id(layers), LayerArrays(layers))

    def build(x):
        rr = r
        for name, v in zip(free, np.exp(x)):
            rr = set_param(rr, name, float(v), ridge)
        return rr

    pull = free.index("peak_macs_per_s") if pull_peak_to and "peak_macs_per_s" in free else None

    def residuals(x):
        rr = build(x)
        pred = [arrays[id(layers)].latency_ms(rr) for layers, _ in samples]
        return np.log(pred) - measured

    def objective(x):
        if pull is None:
            return residuals(x)
        return np.append(residuals(x), PRIOR_WEIGHT * (x[pull] - np.log(pull_peak_to)))

    lo = x0 - 12.0
    hi = x0 + 12.0
    for i, n in enumerate(free):
        if n in ("peak_macs_per_s", "mem_bw_bytes_per_s"):
            # no layer compute-bound (or none memory-bound) leaves the figure free to run off: keep it inside
            # what a profile may hold (deploykit.targets.TARGET_RANGES), with a decade to spare
            span = TARGET_RANGES[n]
            lo[i], hi[i] = max(lo[i], np.log(span[0] * 10)), min(hi[i], np.log(span[1] / 10))
            x0[i] = min(max(x0[i], lo[i] + 1e-6), hi[i] - 1e-6)
    for i, n in enumerate(free):
        if n in ("dispatch_s", "invoke_s"):  # may be fitted to (almost) zero: start mid-range, not at the edge
            lo[i], hi[i] = np.log(1e-9), np.log(1e-1 if n == "invoke_s" else 1e-2)
            x0[i] = min(max(x0[i], lo[i] + 1), hi[i] - 1)
    for i, n in enumerate(free):
        if n.startswith("eff_"):
            hi[i] = 0.0  # an efficiency is at most 1
            x0[i] = min(x0[i], -1e-3)
    sol = least_squares(objective, x0, bounds=(lo, hi), method="trf", x_scale=1.0)
    if len(free) > 1 and _warm:
        # max(compute, memory) makes the cost piecewise smooth, and a fit started from the profile can stop in
        # a kink with more parameters doing worse than fewer: start again from the fit of one parameter fewer
        # (itself warm-started) and keep the better of the two.
        sub_tie = tie_ridge or "mem_bw_bytes_per_s" not in free[:-1]
        prev = fit(r, samples, free[:-1], sub_tie, pull_peak_to=pull_peak_to).roofline
        x1 = np.clip(np.log([max(get_param(prev, n), 1e-12) for n in free]), lo + 1e-9, hi - 1e-9)
        sol2 = least_squares(objective, x1, bounds=(lo, hi), method="trf", x_scale=1.0)
        if sol2.cost < sol.cost:
            sol = sol2
    fitted = build(sol.x)
    return FitResult(fitted, free, len(samples), [float(v) for v in residuals(sol.x)])


def macs_baseline(train: list[tuple[int, float]]):
    """latency = a + k·MACs, least squares on the training rows; returns predict(macs) → ms."""
    x = np.array([m for m, _ in train], dtype=float)
    y = np.array([ms for _, ms in train], dtype=float)
    if len(train) == 1:
        return lambda macs: y[0] * macs / x[0]
    k, a = np.polyfit(x, y, 1)
    return lambda macs: a + k * macs


# The order in which a class's parameters are freed as rows allow (see default_free). CPUs and DSPs pay per op.
# GPU delegates pay per inference first (command submission, input upload, output read-back), then per op.
# Whole-graph accelerators (Neural Engine, Hexagon NPU, Edge TPU) still pay a fixed cost per op of the compiled
# graph: it is freed first, the per-inference cost third, the order that leave-one-model-out on the shipped
# corpus's NPU targets (`deploykit estimate --validate`) preferred to "peak, then invoke" (figures in
# docs/estimator.md, "Fitting (`--fit`)").
FREE_ORDER: dict[str, tuple[str, ...]] = {
    "cpu": ("peak_macs_per_s", "dispatch_s", "mem_bw_bytes_per_s", "eff_dwconv"),
    "dsp": ("peak_macs_per_s", "dispatch_s", "mem_bw_bytes_per_s", "eff_dwconv"),
    "gpu": ("peak_macs_per_s", "invoke_s", "dispatch_s", "mem_bw_bytes_per_s", "eff_dwconv"),
    "npu": ("dispatch_s", "peak_macs_per_s", "invoke_s", "mem_bw_bytes_per_s", "eff_dwconv"),
}


def default_free(target: Target, n_rows: int, n_models: int | None = None) -> tuple[str, ...]:
    """What a fit on ``n_rows`` rows (of ``n_models`` distinct models) moves: as many parameters as the rows
    support, keeping at least one model's worth of slack once there are three, so leaving a model out still
    leaves a fit that is not an interpolation, in the order of ``FREE_ORDER`` for the target's class. While the
    bandwidth is not free the ridge point stays the profile's (published where the paper gives one)."""
    order = FREE_ORDER[target_class(target)]
    return order[: _free_count(n_rows if n_models is None else min(n_rows, n_models), len(order))]


def _free_count(n_models: int, most: int) -> int:
    """How many parameters ``n_models`` distinct models support: one or two for one or two, two for 3-5, three
    for 6-8, ``most`` beyond."""
    return max(1, n_models) if n_models <= 2 else 2 if n_models <= 5 else 3 if n_models <= 8 else most


def fit_target(
    target: Target,
    rows: list[tuple[str, int, float, str]],
    free: tuple[str, ...] | None = None,
    base: Roofline | None = None,
):
    """Fit a target's roofline to (model, resolution, ms) rows, moving :func:`default_free` unless told, from
    ``base`` (default: the target's datasheet roofline; with per-layer rows, its shape fitted on them:
    :func:`~deploykit.estimator.layer_fit.with_layer_fit`)."""
    if not rows:
        raise DeploykitError(
            f"no measured latencies for {target.id} to fit",
            hint="run `deploykit bench` on the device first, or --published for the corpus of published latencies",
        )
    samples = layer_samples(rows)
    free = default_free(target, len(rows), len(models_of(rows))) if free is None else free
    return fit(
        datasheet_roofline(target) if base is None else base,
        samples,
        free=free,
        tie_ridge="mem_bw_bytes_per_s" not in free,
        pull_peak_to=datasheet_peak(target),
    )


def default_free_for_class(r: Roofline, n_models: int) -> tuple[str, ...]:
    """:func:`default_free` for a roofline without a target (pooled family rows): NPU order where the roofline
    fuses elementwise ops with an NPU's dispatch cost, CPU order otherwise."""
    order = FREE_ORDER["npu" if r.fuse_elementwise and r.dispatch_s <= 5e-6 else "cpu"]
    return order[: _free_count(n_models, 4)]
