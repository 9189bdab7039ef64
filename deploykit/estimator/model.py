"""The latency model: a target's roofline parameters and a model's estimate on them (see the package docstring
for the formula), with the interval every estimate carries and where its target's figures came from."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum

import numpy as np

from ..errors import DeploykitError
from ..graph import Layer
from ..targets import ROOFLINE_FIELDS, Target

BYTES_PER_ELEM = {"fp32": 4.0, "fp16": 2.0, "int8": 1.0, "int8-edgetpu": 1.0, "int8-dynamic": 1.0}
# Op kinds that are attention's: what DSP-style accelerators cannot run.
ATTENTION_KINDS = ("softmax", "attn_matmul", "layer_norm")
PARAM_KEYS = set(ROOFLINE_FIELDS)


class Calibration(StrEnum):
    """Where a target's figures come from: its ``[targets.roofline] calibration``, written by whatever wrote them
    (``estimate --fit``: :func:`~deploykit.estimator.calibration.fitted_target`; a transfer: ``borrow`` and
    ``anchor``). The stored strings are the values."""

    FITTED = "fitted"  # least squares on rows of its own
    BORROWED = "borrowed"  # a sibling's fit, scaled by the ratio of datasheet peaks
    ANCHORED = "anchored"  # a sibling's fitted shape, scaled to the rows of the one model it has
    DATASHEET = "datasheet"  # never fitted to any latency: the x0.5-2 of UNCALIBRATED

    @property
    def in_a_word(self) -> Calibration:
        """What an estimate says of it: an anchored target's shape is borrowed too (and ``estimate --json``
        has said "borrowed" of both since before the field existed)."""
        return Calibration.BORROWED if self is Calibration.ANCHORED else self

    @classmethod
    def of_note(cls, note: str) -> Calibration:
        """What a profile written before the ``calibration`` field says, read off its ``fit`` note's wording."""
        if not note:
            return cls.DATASHEET
        if note.startswith(BORROWED_NOTE):
            return cls.BORROWED
        return cls.ANCHORED if ANCHORED_NOTE in note else cls.FITTED


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
    fitted_macs: tuple[float, float] | None = None  # MACs of the smallest and largest model it was fitted on
    calibration: Calibration | None = None  # None: not recorded (a profile older than the field)

    @property
    def calibrated_as(self) -> Calibration:
        """The recorded calibration, or for a profile without one, what its fit note's wording says."""
        return self.calibration or Calibration.of_note(self.fit)

    @property
    def ridge(self) -> float:
        return self.peak_macs_per_s / self.mem_bw_bytes_per_s

    def eff(self, kind: str) -> float:
        # a stem or a 1x1 convolution is a convolution to a target that has no figure of its own for it
        return self.efficiency.get(kind, self.efficiency.get("conv", 1.0) if kind in ("pwconv", "stem") else 1.0)


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
# parameters (FREE_ORDER). GPU delegates and DSPs launch a kernel per op.
WHOLE_GRAPH_CLASSES = ("npu",)


def target_class(t: Target) -> str:
    """The target's processor class (cpu, gpu, dsp, npu), as the backend plugin that serves it says."""
    return t.processor


def roofline_for(t: Target) -> Roofline:
    """The estimator parameters of a target: its profile's ``[targets.roofline]`` over its class defaults."""
    if not t.peak_macs_per_s or not t.mem_bw_bytes_per_s:
        raise DeploykitError(
            f"target {t.id} has no peak_macs_per_s/mem_bw_bytes_per_s in its profile",
            hint="add them (with a source), or fit them: deploykit estimate fit",
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
    if params.get("fitted_macs") is not None:
        if len(params["fitted_macs"]) != 2 or params["fitted_macs"][0] > params["fitted_macs"][1]:
            raise DeploykitError(f"target {t.id}: roofline fitted_macs must be [smallest, largest]")
        params["fitted_macs"] = tuple(float(v) for v in params["fitted_macs"])
    if "calibration" in params:
        try:
            params["calibration"] = Calibration(params["calibration"])
        except ValueError:
            known = ", ".join(Calibration)
            raise DeploykitError(
                f"target {t.id}: roofline calibration {params['calibration']!r} is none of {known}"
            ) from None
    precision = t.export_precision
    if target_class(t) in WHOLE_GRAPH_CLASSES and precision == "fp32":
        precision = "fp16"  # NPUs (Hexagon HTP, Neural Engine) run a float model in fp16: 2 bytes a value
    return Roofline(t.peak_macs_per_s, t.mem_bw_bytes_per_s, precision, **params)


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
    target_calibration: Calibration = Calibration.DATASHEET  # the estimated target's (Roofline.calibrated_as)
    # where the model's MACs are far outside those the target was fitted on (size_extrapolation): macs,
    # fitted_macs, ratio (the model's MACs over the nearer end of that range) and the widening applied
    extrapolated_size: dict | None = None

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
    def calibration(self) -> Calibration:
        """Where the target's figures come from, in a word a table can show beside each estimate: fitted (to rows
        of its own), borrowed (a sibling's fit, datasheet-scaled or scaled to one model's rows) or datasheet."""
        return self.target_calibration.in_a_word

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
            "extrapolated_size": self.extrapolated_size,
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
# A target whose figures were never fitted to rows has no residuals to derive an interval from: it says a factor
# of 2 either way, about what the shipped datasheet-only profiles missed published rows by (issue 15: the
# iPhone 12 Neural Engine before it was fitted).
UNCALIBRATED = (0.5, 2.0)
UNCALIBRATED_BASIS = "not fitted to any latency (datasheet figures): no residuals, ×0.5-2 assumed"


# What a fit learns about an op kind it learns from rows that have it: attention's matmuls and softmax, LayerNorm
# and the reshapes/transposes around them cost what the rows say only where some row has them. An estimate of a
# model with such kinds that none of its target's fitted rows had says which, and its interval is at least the
# split-conformal interval of such extrapolations where fitted rows can check them (attention-free fits of the
# Table 6 targets with MNv4-Hybrid rows predicting those rows: scripts/estimator_sparse_rows.py, part 5; figures
# and the held-out Neural Engine rows that miss by more in docs/estimator.md, "Intervals").
UNSEEN_KIND_CHECK = ("attn_matmul", "softmax", "layer_norm", "layout")


def recorded_kind(kind: str) -> str:
    """An op kind as a fit records it in ``fitted_kinds``: a stem as the convolution it was before it became a kind
    of its own, so the shipped profiles' lists stay what a fit writes (they are checked for attention kinds only)."""
    return "conv" if kind == "stem" else kind


UNSEEN_KINDS_INTERVAL = (0.92, 1.21)

# How the fit notes of a target that took a sibling's figures begin (borrow) and what they say (anchor): written
# into the profiles by those two functions; Calibration.of_note reads them back for a profile written before
# targets recorded their calibration.
BORROWED_NOTE = "borrowed from"
ANCHORED_NOTE = "'s fitted shape"


# A fit learns what size costs from the sizes it saw: the AI Hub NPU targets are fitted on models of 0.06-4.5
# GMACs (their int8 targets on three of 0.2-0.8), and a 6 GMAC model predicted from them extrapolates. An estimate of
# a model outside the fitted range of MACs says so; more than SIZE_MARGIN× above the largest fitted model's MACs, or
# below the smallest's over SIZE_MARGIN, its interval is also widened each side by exp(k · |log(MACs / that end of
# the range)|), k per direction (within the margin a target's own interval has held such models: not widened).
# Both measured by scripts/estimator_size_extrapolation.py on the corpus's NPU targets, each fitted without its
# largest (smallest) model and predicting it: k is the 80% conformal quantile of the widening those rows needed
# beyond their own interval (figures, and why 2×, in docs/estimator-validation.md, "Extrapolation in size").
SIZE_MARGIN = 2.0
SIZE_WIDENING_PER_LOG = {"above": 0.032, "below": 0.135}


def size_extrapolation(layers: list[Layer], r: Roofline) -> dict | None:
    """Where the model's MACs are outside the range the target was fitted on: its MACs, that range, the ratio of
    its MACs to the nearer end, whether that is beyond :data:`SIZE_MARGIN` (above 2 or below 0.5) and the factor
    the interval widens by each side (1 within the margin). None inside the range, or where the range is not
    recorded (no claim)."""
    if r.fitted_macs is None:
        return None
    lo, hi = r.fitted_macs
    macs = float(sum(x.macs for x in layers))
    if macs > hi:
        ratio = macs / hi
    elif macs < lo:
        ratio = macs / lo
    else:
        return None
    beyond = abs(np.log(ratio)) > np.log(SIZE_MARGIN)
    k = SIZE_WIDENING_PER_LOG["above" if ratio > 1 else "below"]
    return {
        "macs": macs,
        "fitted_macs": [lo, hi],
        "ratio": ratio,
        "beyond_margin": bool(beyond),
        "widening": float(np.exp(k * abs(np.log(ratio)))) if beyond else 1.0,
    }


def _widened_for_size(ext: dict, params: dict) -> dict:
    """``params`` with the interval widened by ``ext["widening"]`` each side and a basis that says why."""
    lo, hi = interval_of(params)
    w = ext["widening"]
    basis = params.get("interval_basis") or UNCALIBRATED_BASIS
    lo_m, hi_m = ext["fitted_macs"]
    where = (
        f"{ext['ratio']:.1f}× the largest model the target was fitted on ({hi_m / 1e9:.3g} GMACs)"
        if ext["ratio"] > 1
        else f"1/{1 / ext['ratio']:.1f} of the smallest model the target was fitted on ({lo_m / 1e9:.3g} GMACs)"
    )
    if not ext["beyond_margin"]:
        return {
            **params,
            "interval_basis": f"{basis}; extrapolated in size: {ext['macs'] / 1e9:.3g} GMACs is {where}; within "
            f"{SIZE_MARGIN:g}× of it, where a target's own interval has held the models left out of its fit: not widened",
        }
    return {
        **params,
        "interval": [lo / w, hi * w],
        "interval_basis": f"{basis}; extrapolated in size: {ext['macs'] / 1e9:.3g} GMACs is {where}; widened ×{w:.2f} "
        f"each side, as models left out of NPU fits needed (scripts/estimator_size_extrapolation.py)",
    }


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
        return Estimate("unsupported", None, rows, bad, params, target_calibration=r.calibrated_as)
    unseen = unseen_kinds(layers, r)
    if unseen:
        params = _widened_for(unseen, params)
    size = size_extrapolation(layers, r)
    if size:
        params = _widened_for_size(size, params)
    latency_ms = (sum(x.time_s for x in rows) + r.invoke_s) * 1e3
    return Estimate("ok", latency_ms, rows, {}, params, unseen, r.calibrated_as, size)


def _params_dict(r: Roofline) -> dict:
    d = asdict(r)
    d["ridge_macs_per_byte"] = r.ridge
    d["unsupported"] = list(r.unsupported)
    d["fitted_kinds"] = None if r.fitted_kinds is None else list(r.fitted_kinds)
    d["fitted_macs"] = None if r.fitted_macs is None else list(r.fitted_macs)
    # the estimate carries it on its own (Estimate.target_calibration): the parameters an estimate stores and
    # prints stay those of the figures
    del d["calibration"]
    return d


class LayerArrays:
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
        return (float(self.times_s(r).sum()) + r.invoke_s) * 1e3

    def times_s(self, r: Roofline) -> np.ndarray:
        """Each layer's time on ``r`` (seconds; a fused elementwise op 0), as :func:`estimate_layers` gives it."""
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
        return t


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


def datasheet_peak(t: Target) -> float:
    """The target's datasheet peak: kept in ``[targets.roofline]`` once a fit has moved the profile's."""
    return float((t.roofline or {}).get("datasheet_peak_macs_per_s") or t.peak_macs_per_s)


def datasheet_bw(t: Target) -> float:
    """The target's datasheet bandwidth, kept like its peak (:func:`datasheet_peak`)."""
    return float((t.roofline or {}).get("datasheet_mem_bw_bytes_per_s") or t.mem_bw_bytes_per_s)


# What a fit writes into [targets.roofline]: dropped again when a fit starts over from the datasheet.
FITTED_FIELDS = (
    "dispatch_s",
    "invoke_s",
    "efficiency",
    "fit",
    "calibration",
    "interval",
    "interval_basis",
    "fitted_kinds",
    "fitted_macs",
)


def with_figures(t: Target, peak_macs_per_s: float, mem_bw_bytes_per_s: float, roofline: dict) -> Target:
    """The target with new figures written back: peak and bandwidth to 4 significant digits, as profiles keep
    them, and its ``[targets.roofline]`` table."""
    return replace(
        t,
        peak_macs_per_s=float(f"{peak_macs_per_s:.4g}"),
        mem_bw_bytes_per_s=float(f"{mem_bw_bytes_per_s:.4g}"),
        roofline=roofline,
    )


def datasheet_roofline(t: Target) -> Roofline:
    """The target as its profile stood before any fit: datasheet peak and bandwidth, class defaults for what a
    fit moves. A refit and every cross-validation start here, so no figure fitted on a row that a
    cross-validation leaves out reaches the prediction of that row."""
    roof = dict(t.roofline or {})
    if "fit" in roof:
        for k in FITTED_FIELDS:
            roof.pop(k, None)
    return roofline_for(
        replace(t, peak_macs_per_s=datasheet_peak(t), mem_bw_bytes_per_s=datasheet_bw(t), roofline=roof)
    )


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
