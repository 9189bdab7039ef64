"""Roofline latency estimator: predict a model's latency on a target nobody has attached.

Per deployed layer (MobileNetV4 paper, section 3 and Appendix F)::

    time = max(MACs / (peak · efficiency[op kind]),  DRAM bytes / bandwidth)  +  dispatch

summed over the layers, plus ``invoke`` once per inference, where

- ``peak`` (MAC/s) and ``bandwidth`` (bytes/s) are the target's; their ratio is the *ridge point*.
- ``efficiency`` is the fraction of peak an op kind reaches. Depthwise convolutions use one input channel per
  filter, so a MAC array (or SIMD lanes doing channel dot products) is mostly idle: they run far below peak.
- ``DRAM bytes`` = weights + activations at the precision's bytes per element (int8 1, fp16 2, fp32 4), except
  tensors that fit the target's on-chip memory (``onchip_bytes``): an activation that small stays in SRAM/cache
  between producer and consumer, and weights stay resident on accelerators whose whole model fits.
- ``dispatch`` is a fixed cost per op (kernel launch, op scheduling).
- ``invoke`` is a fixed cost per inference: input/output copies, command submission, synchronisation. On
  accelerators that run the whole graph as one compiled program (Edge TPU, Neural Engine) it replaces most of
  the per-op cost, and it is why a 0.2 GMAC model is not 30× faster than a 6 GMAC one there.
- Accelerators and GPU delegates fuse elementwise activations into the producing conv (``fuse_elementwise``).

An op the target cannot run makes the estimate ``unsupported`` (with the ops), never a number: attention
(softmax, activation×activation matmuls, LayerNorm) on the Hexagon DSP, for instance. For an exported .tflite
the layers are the file's real ops (its format plugin's ``graph_layers``), at the file's precision.

Every parameter lives in the device profile (``[targets.roofline]``) with its source; ``deploykit estimate
--fit`` fits them to measured latencies by least squares in log space (:func:`fit`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from importlib import resources

import numpy as np

from .errors import DeploykitError, FileError
from .graph import Layer
from .targets import ROOFLINE_FIELDS, TARGET_RANGES, Target

BYTES_PER_ELEM = {"fp32": 4.0, "fp16": 2.0, "int8": 1.0, "int8-edgetpu": 1.0, "int8-dynamic": 1.0}
# Op kinds that are attention's: what DSP-style accelerators cannot run.
ATTENTION_KINDS = ("softmax", "attn_matmul", "layer_norm")
PARAM_KEYS = set(ROOFLINE_FIELDS)


@dataclass
class Roofline:
    """A target's estimator parameters (all from the profile, fitted or with a source)."""

    peak_macs_per_s: float
    mem_bw_bytes_per_s: float
    precision: str
    dispatch_s: float = 0.0
    invoke_s: float = 0.0
    onchip_bytes: float = 0.0
    weight_onchip_bytes: float = 0.0
    efficiency: dict[str, float] = field(default_factory=dict)
    fuse_elementwise: bool = False
    unsupported: tuple[str, ...] = ()
    paper_target: str | None = None
    fit: str = ""
    interval: list[float] | None = None  # [low, high] factors on the estimate: the target's 80% interval
    interval_basis: str = ""
    datasheet_peak_macs_per_s: float | None = None
    datasheet_mem_bw_bytes_per_s: float | None = None
    fitted_kinds: tuple[str, ...] | None = None  # op kinds of the rows it was fitted on; None: not recorded

    @property
    def ridge(self) -> float:
        return self.peak_macs_per_s / self.mem_bw_bytes_per_s

    def eff(self, kind: str) -> float:
        return self.efficiency.get(kind, self.efficiency.get("conv", 1.0) if kind == "pwconv" else 1.0)


# What a target class does when its profile says nothing: fused elementwise ops on accelerators, attention
# unsupported on DSPs. Efficiencies are starting points that ``--fit`` refines when it has enough rows.
_CLASS_DEFAULTS = {
    "cpu": {"efficiency": {"dwconv": 0.25}, "dispatch_s": 2e-6},
    "gpu": {"efficiency": {"dwconv": 0.25}, "dispatch_s": 2e-5, "fuse_elementwise": True},
    "npu": {"efficiency": {"dwconv": 0.1}, "dispatch_s": 5e-6, "fuse_elementwise": True},
    "dsp": {
        "efficiency": {"dwconv": 0.25},
        "dispatch_s": 2e-5,
        "fuse_elementwise": True,
        "unsupported": ATTENTION_KINDS,
    },
}


# Classes that run the whole graph as one compiled program (Edge TPU executable, Core ML's Neural Engine
# program, a QNN context binary): NPU-class defaults (fused elementwise ops) and the NPU order of fitted
# parameters (_FREE_ORDER). GPU delegates and DSPs launch a kernel per op.
WHOLE_GRAPH_CLASSES = ("npu",)
# Table 16 (ridge_points.csv) names a paper target ``{paper_target}_int8``, except the DSP.
_RIDGE_NAMES = {"pixel4_hexagon": "pixel4_dsp_int8"}


def published_ridge(paper_target: str | None) -> float | None:
    """The published ridge point (MACs/byte) of a paper target, if the paper gives one."""
    if not paper_target:
        return None
    return published_ridge_points().get(_RIDGE_NAMES.get(paper_target, f"{paper_target}_int8"))


def target_class(t: Target) -> str:
    """The target's processor class (cpu, gpu, dsp, npu), as the backend plugin that serves it says."""
    return t.processor


def roofline_for(t: Target) -> Roofline:
    """The estimator parameters of a target: its profile's ``[targets.roofline]`` over its class defaults."""
    if not t.peak_macs_per_s or not t.mem_bw_bytes_per_s:
        raise DeploykitError(
            f"target {t.id} has no peak_macs_per_s/mem_bw_bytes_per_s in its profile",
            hint="add them (with a source), or fit them: deploykit estimate --fit",
        )
    params = dict(_CLASS_DEFAULTS[target_class(t)])
    given = dict(t.roofline or {})
    unknown = set(given) - PARAM_KEYS
    if unknown:
        raise DeploykitError(f"target {t.id}: unknown roofline field {sorted(unknown)[0]!r}")
    params.update(given)
    if t.onchip_bytes is not None:
        params.setdefault("onchip_bytes", t.onchip_bytes)
    params["unsupported"] = tuple(params.get("unsupported", ()))
    if params.get("fitted_kinds") is not None:
        params["fitted_kinds"] = tuple(params["fitted_kinds"])
    precision = t.export_precision
    if target_class(t) in WHOLE_GRAPH_CLASSES and precision == "fp32":
        precision = "fp16"  # NPUs (Hexagon HTP, Neural Engine) run a float model in fp16: 2 bytes a value
    return Roofline(t.peak_macs_per_s, t.mem_bw_bytes_per_s, precision, **params)


# ---------------------------------------------------------------------------------------------------- layers


def layers_from_analysis(analysis) -> list[Layer]:
    """The deployed ops of a zoo model (fused BN/ReLU dropped), with attention ops told apart."""
    out = []
    for x in analysis.deployed:
        kind = x.op
        if kind == "matmul" and x.weight_elems == 0:
            kind = "attn_matmul"  # both operands are activations: q·kᵀ, attn·v
        elif x.aten == "native_layer_norm":
            kind = "layer_norm"
        out.append(Layer(x.name, kind, x.macs, x.weight_elems, x.in_elems, x.out_elems))
    return out


# ------------------------------------------------------------------------------------------------- estimate


@dataclass
class LayerTime:
    name: str
    kind: str
    macs: int
    bytes: float
    compute_s: float
    memory_s: float
    time_s: float
    bound: str  # "compute", "memory" or "fused"

    @property
    def intensity(self) -> float:
        return self.macs / self.bytes if self.bytes else float("inf")


@dataclass
class Estimate:
    status: str  # "ok" or "unsupported"
    latency_ms: float | None
    layers: list[LayerTime]
    unsupported_ops: dict[str, int] = field(default_factory=dict)  # kind → count
    params: dict = field(default_factory=dict)
    unseen_kinds: list[str] = field(default_factory=list)  # the model's UNSEEN_KIND_CHECK kinds no fitted row had

    @property
    def low_ms(self) -> float | None:
        return None if self.latency_ms is None else self.latency_ms * interval_of(self.params)[0]

    @property
    def high_ms(self) -> float | None:
        return None if self.latency_ms is None else self.latency_ms * interval_of(self.params)[1]

    @property
    def basis(self) -> str:
        return self.params.get("interval_basis") or UNCALIBRATED_BASIS

    @property
    def calibration(self) -> str:
        """Where the target's figures come from, in a word a table can show beside each estimate: "fitted" (to
        rows of its own), "borrowed" (a sibling's fit, datasheet-scaled or scaled to one model's rows) or
        "datasheet" (no latency ever fitted: the x0.5-2 of UNCALIBRATED)."""
        note = self.params.get("fit") or ""
        if not note:
            return "datasheet"
        return "borrowed" if note.startswith(BORROWED_NOTE) or ANCHORED_NOTE in note else "fitted"

    def to_dict(self, layers: bool = False) -> dict:
        d = {
            "status": self.status,
            "latency_ms": self.latency_ms,
            "low_ms": self.low_ms,
            "high_ms": self.high_ms,
            "coverage": INTERVAL,
            "basis": self.basis,
            "calibration": self.calibration,
            "unsupported_ops": self.unsupported_ops,
            "unseen_kinds": self.unseen_kinds,
            "params": self.params,
            "compute_bound_share": self.share("compute"),
            "memory_bound_share": self.share("memory"),
        }
        if layers:
            d["layers"] = [{**asdict(x), "intensity": x.intensity} for x in self.layers]
        return d

    def share(self, bound: str) -> float:
        total = sum(x.time_s for x in self.layers)
        return sum(x.time_s for x in self.layers if x.bound == bound) / total if total else 0.0


_ELEMENTWISE_FUSABLE = ("act",)
INTERVAL = 0.8  # the coverage every estimate's [low_ms, high_ms] is meant to have
# A target whose figures were never fitted to rows has no residuals to derive an interval from: a factor of 2
# either way is what the shipped datasheet-only profiles missed published rows by (issue 15: 2.4-2.9× on the
# iPhone 12 Neural Engine), so that is what it says.
UNCALIBRATED = (0.5, 2.0)
UNCALIBRATED_BASIS = "not fitted to any latency (datasheet figures): no residuals, ×0.5-2 assumed"


# What a fit learns about an op kind it learns from rows that have it: attention's matmuls and softmax, LayerNorm
# and the reshapes/transposes around them cost what the rows say only where some row has them. Where that could
# be checked on fitted rows (scripts/estimator_sparse_rows.py, part 5: the five Table 6 targets with MNv4-Hybrid
# rows, each fitted on its rows without these kinds), the attention-free fits predicted the Hybrid rows within
# -17% to +9%, median 5.5%: split-conformal 80% interval x0.92-1.21 over those 10 rows. An estimate of a model with
# such kinds that none of its target's fitted rows had says which, and its interval is at least that wide. (The
# held-out Neural Engine rows miss by more, 25-47% too fast on MobileViT and MNv4-Hybrid-M: no fitted row
# measures that, and the one whole-graph accelerator among the five, the Edge TPU, was the one too fast too.)
UNSEEN_KIND_CHECK = ("attn_matmul", "softmax", "layer_norm", "layout")
UNSEEN_KINDS_INTERVAL = (0.92, 1.21)

# How the fit notes of a target that took a sibling's figures begin (borrow) and what they say (anchor): written
# into the profiles by those two functions, read back by Estimate.calibration.
BORROWED_NOTE = "borrowed from"
ANCHORED_NOTE = "'s fitted shape"


def unseen_kinds(layers: list[Layer], r: Roofline) -> list[str]:
    """The model's attention-type op kinds that no row ``r`` was fitted on had ([] where that is not recorded)."""
    if r.fitted_kinds is None:
        return []
    return sorted({x.kind for x in layers} & set(UNSEEN_KIND_CHECK) - set(r.fitted_kinds))


def _widened_for(unseen: list[str], params: dict) -> dict:
    """``params`` with the interval at least :data:`UNSEEN_KINDS_INTERVAL` and a basis that says why."""
    lo, hi = interval_of(params)
    a, b = UNSEEN_KINDS_INTERVAL
    basis = params.get("interval_basis") or UNCALIBRATED_BASIS
    return {
        **params,
        "interval": [min(lo, a), max(hi, b)],
        "interval_basis": f"{basis}; extrapolated: this model has {', '.join(unseen)}, which no row the target "
        f"was fitted on has (such extrapolations measured ×{a:g}-{b:g} on fitted targets, at least that)",
    }


def interval_of(params: dict) -> tuple[float, float]:
    iv = params.get("interval")
    return (float(iv[0]), float(iv[1])) if iv else UNCALIBRATED


def estimate_layers(layers: list[Layer], r: Roofline) -> Estimate:
    bad: dict[str, int] = {}
    for x in layers:
        if x.kind in r.unsupported:
            bad[x.kind] = bad.get(x.kind, 0) + 1
    b = BYTES_PER_ELEM[r.precision]
    weights_resident = sum(x.weight_elems for x in layers) * b <= r.weight_onchip_bytes
    rows = []
    for x in layers:
        if r.fuse_elementwise and x.kind in _ELEMENTWISE_FUSABLE:
            rows.append(LayerTime(x.name, x.kind, x.macs, 0.0, 0.0, 0.0, 0.0, "fused"))
            continue
        moved = 0.0 if weights_resident else x.weight_elems * b
        for n in (x.in_elems, x.out_elems):
            if n * b > r.onchip_bytes:
                moved += n * b
        compute = x.macs / (r.peak_macs_per_s * r.eff(x.kind)) if x.macs else 0.0
        memory = moved / r.mem_bw_bytes_per_s
        t = max(compute, memory) + r.dispatch_s
        rows.append(
            LayerTime(x.name, x.kind, x.macs, moved, compute, memory, t, "compute" if compute >= memory else "memory")
        )
    params = _params_dict(r)
    if bad:
        return Estimate("unsupported", None, rows, bad, params)
    unseen = unseen_kinds(layers, r)
    if unseen:
        params = _widened_for(unseen, params)
    return Estimate("ok", (sum(x.time_s for x in rows) + r.invoke_s) * 1e3, rows, {}, params, unseen)


def _params_dict(r: Roofline) -> dict:
    d = asdict(r)
    d["ridge_macs_per_byte"] = r.ridge
    d["unsupported"] = list(r.unsupported)
    d["fitted_kinds"] = None if r.fitted_kinds is None else list(r.fitted_kinds)
    return d


# ------------------------------------------------------------------------------------------------------ fit


# Free parameters a fit may move, as (name, getter, setter) on a Roofline; all positive, fitted in log space.
def _get(r: Roofline, name: str) -> float:
    if name.startswith("eff_"):
        return r.eff(name[4:])
    return getattr(r, name)


def _set(r: Roofline, name: str, value: float, tie_ridge: float | None) -> Roofline:
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


class _Arrays:
    """A layer list as arrays, so a fit's thousands of evaluations are numpy arithmetic, not Python loops.
    :meth:`latency_ms` is :func:`estimate_layers` (op support aside), checked equal in the tests."""

    def __init__(self, layers: list[Layer]):
        self.macs = np.array([x.macs for x in layers], dtype=float)
        self.w = np.array([x.weight_elems for x in layers], dtype=float)
        self.inn = np.array([x.in_elems for x in layers], dtype=float)
        self.out = np.array([x.out_elems for x in layers], dtype=float)
        self.kinds = [x.kind for x in layers]
        self.fusable = np.array([k in _ELEMENTWISE_FUSABLE for k in self.kinds])
        self.w_total = float(self.w.sum())
        self.by_kind = {k: np.array([x == k for x in self.kinds]) for k in set(self.kinds)}

    def latency_ms(self, r: Roofline) -> float:
        b = BYTES_PER_ELEM[r.precision]
        resident = self.w_total * b <= r.weight_onchip_bytes
        moved = (0.0 if resident else self.w * b) + np.where(self.inn * b > r.onchip_bytes, self.inn * b, 0.0)
        moved = moved + np.where(self.out * b > r.onchip_bytes, self.out * b, 0.0)
        eff = np.ones_like(self.macs)
        for k, mask in self.by_kind.items():
            eff[mask] = r.eff(k)
        t = np.maximum(self.macs / (r.peak_macs_per_s * eff), moved / r.mem_bw_bytes_per_s) + r.dispatch_s
        if r.fuse_elementwise:
            t = np.where(self.fusable, 0.0, t)
        return (float(t.sum()) + r.invoke_s) * 1e3


# A fit's peak is pulled towards the datasheet's, by this weight on log(peak / datasheet peak) beside the rows'
# log errors: a 1% error on one row weighs as much as a peak a third of a decade off. Where no layer of the rows
# is compute-bound (the Neural Engine's: all of them memory- or overhead-bound) the peak is otherwise free to
# run to its bound (1e16-1e17 MAC/s, a figure that means nothing); pulled, it stays at the datasheet's.
# Leave-one-model-out over the shipped corpus is the same with or without it (mean of the per-target median
# errors 10.2% without, 10.0% with).
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
    x0 = np.log([max(_get(r, n), 1e-12) for n in free])
    measured = np.log([ms for _, ms in samples])
    arrays: dict[int, _Arrays] = {}
    for layers, _ in samples:
        arrays.setdefault(id(layers), _Arrays(layers))

    def build(x):
        rr = r
        for name, v in zip(free, np.exp(x)):
            rr = _set(rr, name, float(v), ridge)
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
        x1 = np.clip(np.log([max(_get(prev, n), 1e-12) for n in free]), lo + 1e-9, hi - 1e-9)
        sol2 = least_squares(objective, x1, bounds=(lo, hi), method="trf", x_scale=1.0)
        if sol2.cost < sol.cost:
            sol = sol2
    fitted = build(sol.x)
    return FitResult(fitted, free, len(samples), [float(v) for v in residuals(sol.x)])


# ---------------------------------------------------------------------------------------- published figures


def _ridge_records() -> dict[str, dict]:
    """ridge_points.csv (the paper's Table 16) by target name."""
    from .corpus import commented_csv

    text = resources.files("deploykit.reference").joinpath("ridge_points.csv").read_text()
    return {rec["target"]: rec for rec in commented_csv(text)}


def published_ridge_points() -> dict[str, float]:
    return {name: float(rec["ridge_point_macs_per_byte"]) for name, rec in _ridge_records().items()}


def table16(paper_target: str | None) -> dict[str, float] | None:
    """Table 16's row (ridge point, Spearman of its roofline and of MACs) for a paper target, if it has one."""
    rec = _ridge_records().get(_RIDGE_NAMES.get(paper_target, f"{paper_target}_int8")) if paper_target else None
    return {k: float(v) for k, v in rec.items() if k != "target"} if rec else None


# --------------------------------------------------------------------------------------------- baselines


def macs_baseline(train: list[tuple[int, float]]):
    """latency = a + k·MACs, least squares on the training rows; returns predict(macs) → ms."""
    x = np.array([m for m, _ in train], dtype=float)
    y = np.array([ms for _, ms in train], dtype=float)
    if len(train) == 1:
        return lambda macs: y[0] * macs / x[0]
    k, a = np.polyfit(x, y, 1)
    return lambda macs: a + k * macs


def sweep_ridge(layers: list[Layer], precision: str, ridges=None, peak: float = 1e12) -> list[dict]:
    """Latency across ridge points (paper Fig. 2/3): peak fixed, bandwidth = peak / ridge; 0 is compute-only."""
    ridges = list(range(0, 501, 25)) if ridges is None else ridges
    out = []
    for rp in ridges:
        bw = peak / rp if rp > 0 else float("inf")
        r = Roofline(peak, bw, precision)
        est = estimate_layers(layers, r)
        out.append({"ridge": rp, "latency_ms": est.latency_ms})
    return out


# ------------------------------------------------------------------------------------------ library API


def model_layers(model: str, resolution: int | None = None) -> tuple[str, int, list[Layer]]:
    """Layers of a zoo model by name, or of an exported file (.tflite: its real graph; .onnx/.mlpackage: the
    model its manifest names). Returns (model name, resolution, layers)."""
    from pathlib import Path

    from .exporters import base as formats

    p = Path(model)
    if p.suffix.lower() in {f.suffix for f in formats.formats() if f.suffix}:
        fmt = formats.for_path(p)
        if not p.exists():
            raise DeploykitError(f"artifact not found: {p}")
        from .artifact import read_manifest

        manifest = read_manifest(p)
        layers = fmt.graph_layers(p)
        if layers is not None and not any(x.macs or x.out_elems for x in layers):
            # a parser can read junk as an empty graph (protobuf takes a few stray bytes for an empty ModelProto):
            # an estimate of nothing would be 0 ms, stored as a result
            raise FileError(f"{p.name}: its {fmt.name} graph has no operators: not a model deploykit can estimate")
        if layers is not None:
            if manifest is None:
                return p.stem, 0, layers
            return manifest.model["name"], manifest.model["resolution"], layers
        if manifest is None:
            raise DeploykitError(
                f"{p} has no manifest, and deploykit cannot read its graph: estimate its model by name"
            )
        model, resolution = manifest.model["name"], manifest.model["resolution"]
    from .zoo import get_spec

    spec = get_spec(model)
    res = spec.resolution if resolution is None else resolution
    spec.check_resolution(res)
    return spec.name, res, zoo_layers(spec.name, res)


LAYERS_FORMAT = 1  # bump when layers_from_analysis changes what it returns


def zoo_layers(name: str, resolution: int) -> list[Layer]:
    """A zoo model's deployed layers, from the user cache when counted before. Counting imports torch and
    runs the model (seconds); an estimate itself is arithmetic. The cache key is the hash of the code the count
    depends on (the zoo's source, analysis.py: :func:`deploykit.catalog.source_hash`) and this function's
    format, never weights, so any change to an architecture or to the analysis counts afresh."""
    import json

    from .artifact import atomic_write_text
    from .catalog import cache_dir, source_hash

    path = cache_dir() / f"layers-{source_hash()}-{LAYERS_FORMAT}" / f"{name}@{resolution}.json"
    try:
        return [Layer(*x) for x in json.loads(path.read_text())]
    except (OSError, ValueError, TypeError):
        pass
    from .analysis import analyze_spec

    layers = layers_from_analysis(analyze_spec(name, resolution))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = [[x.name, x.kind, x.macs, x.weight_elems, x.in_elems, x.out_elems] for x in layers]
        atomic_write_text(path, json.dumps(rows))
    except OSError:
        pass  # a read-only home only costs the recount next time
    return layers


def select_targets(profile, names: list[str] | None = None) -> list[Target]:
    """A profile's targets that carry roofline figures, optionally only those named (by name, backend,
    precision, id or the paper's target name)."""
    targets = [t for t in profile.targets if t.peak_macs_per_s and t.mem_bw_bytes_per_s]
    if names:
        wanted = set(names)
        targets = [
            t
            for t in targets
            if wanted & {t.id, t.name, t.backend, t.precision, (t.roofline or {}).get("paper_target")}
        ]
    if not targets:
        known = ", ".join(t.id for t in profile.targets)
        raise DeploykitError(f"no target of {profile.name} to estimate", hint=f"targets with roofline figures: {known}")
    return targets


def breakdown(est: Estimate, layers: list[Layer]) -> dict:
    """What the report draws of an estimate, stored with it: the compute/memory-bound shares, each layer's
    operational intensity and share of time, and the model's latency across ridge points (0-500 MACs/B)."""
    total = sum(x.time_s for x in est.layers) or 1.0
    return {
        "compute_bound_share": est.share("compute"),
        "memory_bound_share": est.share("memory"),
        "ridge": est.params.get("ridge_macs_per_byte"),
        "layers": [
            [round(x.intensity, 3), round(x.time_s / total, 5), x.kind, x.bound]
            for x in est.layers
            if x.bytes and x.time_s > 0
        ],
        "sweep": sweep_ridge(layers, est.params.get("precision", "int8"), ridges=list(range(0, 501, 20))),
    }


def to_measurement(model: str, resolution: int, target: Target, est: Estimate, layers: list[Layer] | None = None):
    """An estimate as a store row: provenance ``estimated``, never mixed with measured ones; with ``layers``
    (what was estimated) its breakdown is stored too."""
    from . import __version__
    from .measurement import Measurement

    return Measurement.for_target(
        target,
        model,
        resolution,
        provenance="estimated",
        status="ok" if est.status == "ok" else "unsupported",
        median_ms=est.latency_ms,
        details={
            **(breakdown(est, layers) if layers is not None else {}),
            **(
                {"interval": {"low_ms": est.low_ms, "high_ms": est.high_ms, "coverage": INTERVAL, "basis": est.basis}}
                if est.latency_ms is not None
                else {}
            ),
        },
        env={"estimator": f"deploykit {__version__} roofline", "params": est.params},
        delegate={"unsupported_ops": est.unsupported_ops} if est.unsupported_ops else {},
        error=(
            "unsupported on this target: " + ", ".join(f"{k} ×{v}" for k, v in est.unsupported_ops.items())
            if est.unsupported_ops
            else None
        ),
    )


def training_rows(target: Target, store=None, published: bool = False) -> list[tuple[str, int, float, str]]:
    """(model, resolution, ms, source) rows to fit a target on: its measured ok rows in the store, and/or its
    rows of the corpus of published latencies (``split`` = fit; never the held-out ones)."""
    from . import corpus

    rows = []
    if store is not None:
        for m in store.query(target=target.id, provenance="measured", status="ok"):
            rows.append((_layers_source(m), m.resolution, m.median_ms, "measured"))
    if published:
        for r in corpus.rows_for(target):
            rows.append((r.model, r.resolution, r.latency_ms, r.source))
    return rows


def _layers_source(m) -> str:
    """What :func:`model_layers` reads a stored row's layers from: its zoo model by name, or, for a model of the
    user's own, the file it measured while that file is still there (an .onnx/.tflite graph is read from it)."""
    from pathlib import Path

    from .zoo import get_spec

    try:
        return get_spec(m.model).name
    except DeploykitError:
        return m.artifact if m.artifact and Path(m.artifact).is_file() else m.model


def analysable_rows(rows: list[tuple]) -> tuple[list[tuple], dict[str, str]]:
    """Split fit rows into those whose model's layers deploykit can read, and {model: why not} for the rest (a
    user's own model imported by name, a file since moved): one unreadable model must not refuse a whole fit."""
    why_not: dict[tuple[str, int], str | None] = {}
    usable, skipped = [], {}
    for row in rows:
        key = (row[0], row[1])
        if key not in why_not:
            try:
                model_layers(*key)
                why_not[key] = None
            except DeploykitError as e:
                why_not[key] = e.message
        if why_not[key] is None:
            usable.append(row)
        else:
            skipped[row[0]] = why_not[key]
    return usable, skipped


# The order in which a class's parameters are freed as rows allow (see default_free). CPUs and DSPs pay per op.
# GPU delegates pay per inference first (command submission, input upload, output read-back), then per op.
# Whole-graph accelerators were first given a per-inference cost; leave-one-model-out on the shipped corpus
# (15 Neural Engine, Hexagon NPU and Edge TPU targets) said otherwise: a fixed cost per op of the compiled graph,
# freed first, took the median of their median errors from 13.8% to 9.0% and the mean from 30.8% to 11.3% (the
# int8 Galaxy NPUs, whose three models all run in about the same 0.2-0.3 ms, from 23-122% to 2-16%); the
# per-inference cost comes third.
_FREE_ORDER: dict[str, tuple[str, ...]] = {
    "cpu": ("peak_macs_per_s", "dispatch_s", "mem_bw_bytes_per_s", "eff_dwconv"),
    "dsp": ("peak_macs_per_s", "dispatch_s", "mem_bw_bytes_per_s", "eff_dwconv"),
    "gpu": ("peak_macs_per_s", "invoke_s", "dispatch_s", "mem_bw_bytes_per_s", "eff_dwconv"),
    "npu": ("dispatch_s", "peak_macs_per_s", "invoke_s", "mem_bw_bytes_per_s", "eff_dwconv"),
}


def default_free(target: Target, n_rows: int, n_models: int | None = None) -> tuple[str, ...]:
    """What a fit on ``n_rows`` rows (of ``n_models`` distinct models) moves: as many parameters as the rows
    support, keeping at least one model's worth of slack once there are three, so leaving a model out still
    leaves a fit that is not an interpolation, in the order of ``_FREE_ORDER`` for the target's class. While the
    bandwidth is not free the ridge point stays the profile's (published where the paper gives one)."""
    order = _FREE_ORDER[target_class(target)]
    return order[: _free_count(n_rows if n_models is None else min(n_rows, n_models), len(order))]


def _free_count(n_models: int, most: int) -> int:
    """How many parameters ``n_models`` distinct models support: one or two for one or two, two for 3-5, three
    for 6-8, ``most`` beyond."""
    return max(1, n_models) if n_models <= 2 else 2 if n_models <= 5 else 3 if n_models <= 8 else most


def _samples(rows) -> list[tuple[list[Layer], float]]:
    cache: dict[tuple[str, int], list[Layer]] = {}
    samples = []
    for model, res, ms, *_ in rows:
        if (model, res) not in cache:
            cache[(model, res)] = model_layers(model, res)[2]
        samples.append((cache[(model, res)], ms))
    return samples


def fit_target(target: Target, rows: list[tuple[str, int, float, str]], free: tuple[str, ...] | None = None):
    """Fit a target's roofline to (model, resolution, ms) rows, moving :func:`default_free` unless told."""
    if not rows:
        raise DeploykitError(
            f"no measured latencies for {target.id} to fit",
            hint="run `deploykit bench` on the device first, or --published for the corpus of published latencies",
        )
    samples = _samples(rows)
    free = default_free(target, len(rows), len({(m, r) for m, r, *_ in rows})) if free is None else free
    return fit(
        datasheet_roofline(target),
        samples,
        free=free,
        tie_ridge="mem_bw_bytes_per_s" not in free,
        pull_peak_to=datasheet_peak(target),
    )


# --------------------------------------------------------------------------------- cross-validation


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


def _macs(layers: list[Layer]) -> int:
    return sum(x.macs for x in layers)


def cross_validate(target: Target, rows: list[tuple[str, int, float, str]]) -> list[Residual]:
    """Leave each model out (all its rows), refit on the rest with :func:`default_free` for what is left, and
    predict it; where the rows come from two or more sources, also leave each source out. Needs two models."""
    samples = _samples(rows)
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
        res = fit(
            base,
            [samples[i] for i in train],
            free=free,
            tie_ridge="mem_bw_bytes_per_s" not in free,
            pull_peak_to=datasheet_peak(target),
        )
        baseline = macs_baseline([(_macs(samples[i][0]), samples[i][1]) for i in train])
        for i in test:
            m, r, ms, src = rows[i][:4]
            pred = _Arrays(samples[i][0]).latency_ms(res.roofline)
            out.append(Residual(m, r, src, ms, pred, float(baseline(_macs(samples[i][0]))), split))
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


def fitted_target(
    target: Target, result: FitResult, note: str, interval=None, basis: str = "", kinds: set[str] | None = None
) -> Target:
    """The target with fitted figures written back (profile fields + [targets.roofline]), with its interval and
    the op ``kinds`` of the rows it was fitted on. The datasheet figures stay beside them: the next fit and every
    cross-validation start from those."""
    r = result.roofline
    roof = {k: v for k, v in (target.roofline or {}).items() if k not in _FITTED_FIELDS}  # nothing stale
    roof["datasheet_peak_macs_per_s"] = datasheet_peak(target)  # what borrowing siblings scale by
    roof["datasheet_mem_bw_bytes_per_s"] = datasheet_bw(target)
    roof.update(dispatch_s=float(f"{r.dispatch_s:.4g}"), fit=note)
    if r.invoke_s or "invoke_s" in result.free:
        roof["invoke_s"] = float(f"{r.invoke_s:.4g}")
    if r.efficiency:
        roof["efficiency"] = {k: float(f"{v:.4g}") for k, v in r.efficiency.items()}
    if kinds is not None:
        roof["fitted_kinds"] = sorted(kinds)
    _set_interval(roof, interval, basis)
    return replace(
        target,
        peak_macs_per_s=float(f"{r.peak_macs_per_s:.4g}"),
        mem_bw_bytes_per_s=float(f"{r.mem_bw_bytes_per_s:.4g}"),
        roofline=roof,
    )


def _set_interval(roof: dict, interval: tuple[float, float] | None, basis: str) -> None:
    """Write a target's interval and its basis into its ``[targets.roofline]`` table, or drop both."""
    if interval is None:
        roof.pop("interval", None)
        roof.pop("interval_basis", None)
    else:
        roof["interval"] = [float(f"{interval[0]:.3g}"), float(f"{interval[1]:.3g}")]
        roof["interval_basis"] = basis


def interval_basis(residuals: list[Residual], rows) -> str:
    kinds = ["leave-one-model-out"] + (["leave-one-source-out"] if any(x.split == "source" for x in residuals) else [])
    srcs = sorted({s for *_, s in rows})
    return (
        f"split-conformal {INTERVAL:.0%} interval from {len(residuals)} {' + '.join(kinds)} residuals; fitted on {len(rows)} rows "
        f"({', '.join(srcs)})"
    )


def calibrate(target: Target, rows) -> tuple[Target, dict]:
    """Fit a target on its rows, cross-validate, and return it with its fitted figures and interval written
    back, and a report of the fit (what moved, the residuals' summaries, the interval and its basis)."""
    res = fit_target(target, rows)
    residuals = cross_validate(target, rows) if len({(m, r) for m, r, *_ in rows}) >= 2 else []
    iv = interval_from(residuals)
    basis = interval_basis(residuals, rows) if iv else ""
    if iv is None:  # fitted, but on too few models to cross-validate: say so rather than "not fitted"
        iv = UNCALIBRATED
        basis = (
            f"fitted on {len(rows)} row(s) of {len({(m, r) for m, r, *_ in rows})} model(s): too few left-out "
            f"residuals for an interval, ×{UNCALIBRATED[0]:g}-{UNCALIBRATED[1]:g} assumed"
        )
    sources = sorted({s for *_, s in rows})
    note = (
        f"least squares in log space on {len(rows)} {'+'.join(sources)} row(s): "
        + ", ".join(sorted({f"{m}@{r}" for m, r, *_ in rows}))
        + f"; free: {', '.join(res.free)}"
    )
    kinds = {x.kind for m, r, *_ in rows for x in model_layers(m, r)[2]}
    nt = fitted_target(target, res, note, iv, basis, kinds)
    return nt, {
        "target": target.id,
        "rows": len(rows),
        "sources": sources,
        "free": list(res.free),
        "rms_log_error": res.rms_log_error,
        "peak_macs_per_s": nt.peak_macs_per_s,
        "mem_bw_bytes_per_s": nt.mem_bw_bytes_per_s,
        "dispatch_s": nt.roofline["dispatch_s"],
        "invoke_s": nt.roofline.get("invoke_s", 0.0),
        "efficiency": nt.roofline.get("efficiency", {}),
        "interval": list(iv) if iv else None,
        "interval_basis": basis or None,
        "leave_one_model_out": summarize(residuals, "model"),
        "leave_one_source_out": summarize(residuals, "source"),
        # as many rows as free parameters: the fit passes through every row, so its error is 0 by
        # construction and says nothing about how well it predicts
        "caveat": (
            f"{len(rows)} row(s) for {len(res.free)} free parameter(s): the fit reproduces them exactly;"
            " its error says nothing about other models (measure more to check it)"
            if len(rows) <= len(res.free)
            else None
        ),
    }


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


def validate_target(target: Target, rows) -> dict:
    """Refit from ``rows`` now and score it: leave one model out, leave one source out (two or more sources),
    interval coverage, and the MACs-affine baseline beside each."""
    residuals = cross_validate(target, rows) if len({(m, r) for m, r, *_ in rows}) >= 2 else []
    lomo = [x for x in residuals if x.split == "model"]
    return {
        "target": target.id,
        "rows": len(rows),
        "models": len({(m, r) for m, r, *_ in rows}),
        "sources": sorted({s for *_, s in rows}),
        "leave_one_model_out": {**summarize(residuals, "model"), "interval_coverage": coverage(lomo)},
        "leave_one_source_out": summarize(residuals, "source"),
        "paper_table16": table16((target.roofline or {}).get("paper_target")),
        "heldout": heldout_target(target),
        "residuals": [asdict(x) for x in residuals],
    }


def heldout_target(target: Target) -> dict:
    """Score the *shipped* profile of a target on its corpus rows with ``split = heldout`` (independent sources,
    never in any fit): median absolute error, Spearman and the share inside each row's stated interval. Nothing
    is refitted here: the figures are what the profile ships, with the rows it was fitted on (``fitted_on``, its
    ``[targets.roofline] fit`` note) beside them. Empty when the target has no held-out rows."""
    from . import corpus

    held = corpus.rows_for(target, "heldout")
    if not held:
        return {}
    r = roofline_for(target)
    scored = []
    for row, (layers, _) in zip(held, _samples([(x.model, x.resolution, x.latency_ms) for x in held])):
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
        train = [(m, r, ms / scale.get(d, 1.0), s) for d, rs in rows_by_device.items() if d != dev
                 for m, r, ms, s in rs]  # fmt: skip
        if len({(m, r) for m, r, *_ in train}) < 2:
            continue
        samples = _samples(train)
        f = free or default_free_for_class(base, len({(m, r) for m, r, *_ in train}))
        res = fit(base, samples, free=f, tie_ridge="mem_bw_bytes_per_s" not in f)
        baseline = macs_baseline([(_macs(ls), ms) for ls, ms in samples])
        k = scale.get(dev, 1.0)
        resid = [
            Residual(m, r, src, ms, k * _Arrays(ls).latency_ms(res.roofline), k * float(baseline(_macs(ls))), "device")
            for (m, r, ms, src), (ls, _) in zip(test, _samples(test))
        ]
        every += resid
        out.append({"device": dev, "train_rows": len(train), "scale": k, **summarize(resid, "device")})
    return out, every


def family_transfer(profiles: dict) -> list[dict]:
    """Leave-one-device-out within a vendor family of the corpus: AI Hub's rows of one target name and precision
    measured on three or more devices of one vendor (:func:`vendor`: the Samsung Galaxy phones; Qualcomm's own
    boards and laptops), each device predicted from its siblings' pooled rows (:func:`leave_one_device_out`),
    scaled by datasheet peaks where ``profiles`` give every device one."""
    from collections import defaultdict

    from . import corpus

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


def default_free_for_class(r: Roofline, n_models: int) -> tuple[str, ...]:
    """:func:`default_free` for a roofline without a target (pooled family rows): NPU order where the roofline
    fuses elementwise ops with an NPU's dispatch cost, CPU order otherwise."""
    order = _FREE_ORDER["npu" if r.fuse_elementwise and r.dispatch_s <= 5e-6 else "cpu"]
    return order[: _free_count(n_models, 4)]


def datasheet_peak(t: Target) -> float:
    """The target's datasheet peak: kept in ``[targets.roofline]`` once a fit has moved the profile's."""
    return float((t.roofline or {}).get("datasheet_peak_macs_per_s") or t.peak_macs_per_s)


def datasheet_bw(t: Target) -> float:
    """The target's datasheet bandwidth, kept like its peak (:func:`datasheet_peak`)."""
    return float((t.roofline or {}).get("datasheet_mem_bw_bytes_per_s") or t.mem_bw_bytes_per_s)


# What a fit writes into [targets.roofline]: dropped again when a fit starts over from the datasheet.
_FITTED_FIELDS = ("dispatch_s", "invoke_s", "efficiency", "fit", "interval", "interval_basis", "fitted_kinds")


def datasheet_roofline(t: Target) -> Roofline:
    """The target as its profile stood before any fit: datasheet peak and bandwidth, class defaults for what a
    fit moves. A refit and every cross-validation start here, so no figure fitted on a row that a
    cross-validation leaves out reaches the prediction of that row."""
    roof = dict(t.roofline or {})
    if "fit" in roof:
        for k in _FITTED_FIELDS:
            roof.pop(k, None)
    return roofline_for(
        replace(t, peak_macs_per_s=datasheet_peak(t), mem_bw_bytes_per_s=datasheet_bw(t), roofline=roof)
    )


def borrow(
    target: Target, sibling: Target, family_residuals: list[Residual], pool: str = "family"
) -> tuple[Target, dict]:
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
    )
    return nt, _borrowed_report(nt, sibling, k, [], None)


def _from_sibling(target: Target, figures: Target, note: str, residuals: list[Residual], basis: str) -> Target:
    """``target`` with a sibling's (already scaled) fitted ``figures``, its own datasheet figures kept beside
    them, the fit note, and the interval of ``residuals``."""
    roof = {**(figures.roofline or {})}
    roof.pop("paper_target", None)
    roof["datasheet_peak_macs_per_s"] = datasheet_peak(target)
    roof["datasheet_mem_bw_bytes_per_s"] = datasheet_bw(target)
    roof["fit"] = note
    iv = interval_from(residuals)
    if iv is None:  # a family of one sibling leaves no transfer to score: say so rather than "not fitted"
        iv, basis = UNCALIBRATED, f"too few transfer residuals for an interval ({len(residuals)}), ×0.5-2 assumed"
    _set_interval(roof, iv, basis)
    return replace(
        target,
        peak_macs_per_s=float(f"{figures.peak_macs_per_s:.4g}"),
        mem_bw_bytes_per_s=float(f"{figures.mem_bw_bytes_per_s:.4g}"),
        roofline=roof,
    )


def _borrowed_report(nt: Target, sibling: Target, scale: float, rows, rms_log_error: float | None) -> dict:
    """The shape of :func:`calibrate`'s report for a target that took a sibling's figures."""
    roof = nt.roofline
    return {
        "target": nt.id,
        "borrowed_from": sibling.id,
        "scale": scale,
        "rows": len(rows),
        "sources": sorted({s for *_, s in rows}),
        "free": ["scale"] if rows else [],
        "rms_log_error": rms_log_error,
        "peak_macs_per_s": nt.peak_macs_per_s,
        "mem_bw_bytes_per_s": nt.mem_bw_bytes_per_s,
        "dispatch_s": roof.get("dispatch_s", 0.0),
        "invoke_s": roof.get("invoke_s", 0.0),
        "efficiency": roof.get("efficiency", {}),
        "interval": roof.get("interval"),
        "caveat": None,
    }


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
                if len({(m, r) for m, r, *_ in rows}) >= 3:
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


def transfer(target: Target, profile, profiles: dict, rows=None) -> tuple[Target, dict] | None:
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
    return replace(
        target,
        peak_macs_per_s=float(f"{target.peak_macs_per_s / c:.4g}"),
        mem_bw_bytes_per_s=float(f"{target.mem_bw_bytes_per_s / c:.4g}"),
        roofline=roof,
    )


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
            pred = {(m, r): _Arrays(ls).latency_ms(roof) for (m, r, *_), (ls, _) in zip(rs, _samples(rs))}
            for m, r, *_ in rs:
                c = _scale_to([x for x in rs if (x[0], x[1]) == (m, r)], pred)
                out += [  # no MACs baseline for a one-row transfer: its field repeats the prediction
                    Residual(m2, r2, src, ms, c * pred[(m2, r2)], c * pred[(m2, r2)], "anchor")
                    for m2, r2, ms, src in rs
                    if (m2, r2) != (m, r)
                ]
    return out


def anchor(target: Target, sibling: Target, rows, family: dict[str, tuple[Target, list]]) -> tuple[Target, dict]:
    """A target whose own rows cover one model: a fit of its own would move one parameter to pass through that
    model and guess the rest; the sibling's fitted shape scaled to the rows keeps what the sibling's several models
    taught. On the AI Hub rows of the Galaxy S22-S26 NPU targets (each device's one model carrying each sibling's
    shape to its other models) the median error was 7.2% against 47.3% for a one-parameter fit of its own (median
    of 192 cases' medians; docs/estimator.md). The interval is that of :func:`anchored_residuals`."""
    shape = roofline_for(sibling)
    pred = {(m, r): _Arrays(ls).latency_ms(shape) for (m, r, *_), (ls, _) in zip(rows, _samples(rows))}
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
    )
    rms = float(np.sqrt(np.mean([np.log(c * pred[(m, r)] / ms) ** 2 for m, r, ms, *_ in rows])))
    return nt, _borrowed_report(nt, sibling, c, rows, rms)
