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

import csv
from dataclasses import asdict, dataclass, field, replace
from importlib import resources

import numpy as np

from .errors import DeploykitError
from .graph import Layer
from .targets import ROOFLINE_FIELDS, Target

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
# program): no per-op dispatch to speak of, so a fit moves the per-inference cost instead. GPU delegates and
# DSPs still launch a kernel per op.
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
    return Roofline(t.peak_macs_per_s, t.mem_bw_bytes_per_s, t.export_precision, **params)


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

    def to_dict(self, layers: bool = False) -> dict:
        d = {
            "status": self.status,
            "latency_ms": self.latency_ms,
            "unsupported_ops": self.unsupported_ops,
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
    return Estimate("ok", (sum(x.time_s for x in rows) + r.invoke_s) * 1e3, rows, {}, params)


def _params_dict(r: Roofline) -> dict:
    d = asdict(r)
    d["ridge_macs_per_byte"] = r.ridge
    d["unsupported"] = list(r.unsupported)
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


def fit(
    r: Roofline,
    samples: list[tuple[list[Layer], float]],
    free: tuple[str, ...] = ("peak_macs_per_s", "dispatch_s"),
    tie_ridge: bool = True,
) -> FitResult:
    """Least squares on log(latency) over ``samples`` = [(layers, measured ms)], moving ``free`` parameters.

    ``tie_ridge`` keeps the ridge point (peak / bandwidth) fixed while the peak moves: with two or three
    published rows per target there is not enough data to fit both, and the ridge is what the paper published.
    With fewer rows than free parameters, the trailing free parameters are dropped."""
    from scipy.optimize import least_squares

    if not samples:
        raise DeploykitError("nothing to fit: no measured latencies for this target")
    free = tuple(free[: max(1, len(samples))])
    ridge = r.ridge if tie_ridge else None
    x0 = np.log([max(_get(r, n), 1e-12) for n in free])
    measured = np.log([ms for _, ms in samples])

    def build(x):
        rr = r
        for name, v in zip(free, np.exp(x)):
            rr = _set(rr, name, float(v), ridge)
        return rr

    def residuals(x):
        rr = build(x)
        pred = [estimate_layers(layers, replace(rr, unsupported=())).latency_ms for layers, _ in samples]
        return np.log(pred) - measured

    lo = x0 - 12.0
    hi = x0 + 12.0
    for i, n in enumerate(free):
        if n in ("dispatch_s", "invoke_s"):  # may be fitted to (almost) zero: start mid-range, not at the edge
            lo[i], hi[i] = np.log(1e-9), np.log(1e-1 if n == "invoke_s" else 1e-2)
            x0[i] = min(max(x0[i], lo[i] + 1), hi[i] - 1)
    for i, n in enumerate(free):
        if n.startswith("eff_"):
            hi[i] = 0.0  # an efficiency is at most 1
            x0[i] = min(x0[i], -1e-3)
    sol = least_squares(residuals, x0, bounds=(lo, hi), method="trf", x_scale=1.0)
    fitted = build(sol.x)
    return FitResult(fitted, free, len(samples), [float(v) for v in residuals(sol.x)])


# ---------------------------------------------------------------------------------------- published figures


def commented_csv(text: str) -> list[dict]:
    """Rows of a CSV whose ``#`` lines say where its figures come from."""
    return list(csv.DictReader(line for line in text.splitlines() if line and not line.startswith("#")))


def published_latencies() -> list[dict]:
    """MobileNetV4 paper Table 6 calibration rows: ``{"model", "resolution", "target", "ms"}``."""
    rows = []
    text = resources.files("deploykit.reference").joinpath("latency_calibration.csv").read_text()
    for rec in commented_csv(text):
        for key, value in rec.items():
            if key not in ("model", "resolution") and value:
                rows.append(
                    {"model": rec["model"], "resolution": int(rec["resolution"]), "target": key, "ms": float(value)}
                )
    return rows


def published_ridge_points() -> dict[str, float]:
    text = resources.files("deploykit.reference").joinpath("ridge_points.csv").read_text()
    return {rec["target"]: float(rec["ridge_point_macs_per_byte"]) for rec in commented_csv(text)}


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
        if layers is not None:
            if manifest is None:
                return p.stem, 0, layers
            return manifest.model["name"], manifest.model["resolution"], layers
        if manifest is None:
            raise DeploykitError(
                f"{p} has no manifest, and deploykit cannot read its graph: estimate its model by name"
            )
        model, resolution = manifest.model["name"], manifest.model["resolution"]
    from .analysis import analyze_spec
    from .zoo import get_spec

    spec = get_spec(model)
    res = spec.resolution if resolution is None else resolution
    return spec.name, res, layers_from_analysis(analyze_spec(spec.name, res))


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
        details=breakdown(est, layers) if layers is not None else {},
        env={"estimator": f"deploykit {__version__} roofline", "params": est.params},
        delegate={"unsupported_ops": est.unsupported_ops} if est.unsupported_ops else {},
        error=(
            "unsupported on this target: " + ", ".join(f"{k} ×{v}" for k, v in est.unsupported_ops.items())
            if est.unsupported_ops
            else None
        ),
    )


def training_rows(target: Target, store=None, published: bool = False) -> list[tuple[str, int, float, str]]:
    """(model, resolution, ms, source) rows to fit a target on: its measured ok rows in the store, and/or the
    published calibration rows for its paper target (never the held-out published latencies)."""
    rows = []
    if store is not None:
        for m in store.query(target=target.id, provenance="measured", status="ok"):
            rows.append((m.model, m.resolution, m.median_ms, "measured"))
    if published:
        paper = (target.roofline or {}).get("paper_target")
        for p in published_latencies():
            if paper and p["target"] == paper:
                rows.append((p["model"], p["resolution"], p["ms"], "published"))
    return rows


def default_free(target: Target, n_rows: int) -> tuple[str, ...]:
    """What a fit on ``n_rows`` rows moves. The fixed cost is per inference (``invoke_s``) on whole-graph
    accelerators and per op (``dispatch_s``) elsewhere. 2-4 rows move the peak and that fixed cost, the ridge
    point held at the profile's (published where the paper gives one); five or more also free the bandwidth and
    the depthwise efficiency."""
    fixed = "invoke_s" if target_class(target) in WHOLE_GRAPH_CLASSES else "dispatch_s"
    if n_rows >= 5:
        return ("peak_macs_per_s", fixed, "mem_bw_bytes_per_s", "eff_dwconv")
    return ("peak_macs_per_s", fixed)


def fit_target(target: Target, rows: list[tuple[str, int, float, str]], free: tuple[str, ...] | None = None):
    """Fit a target's roofline to (model, resolution, ms) rows, moving :func:`default_free` unless told."""
    if not rows:
        raise DeploykitError(
            f"no measured latencies for {target.id} to fit",
            hint="run `deploykit bench` on the device first, or --published for the paper's calibration rows",
        )
    cache: dict[tuple[str, int], list[Layer]] = {}
    samples = []
    for model, res, ms, _ in rows:
        if (model, res) not in cache:
            cache[(model, res)] = model_layers(model, res)[2]
        samples.append((cache[(model, res)], ms))
    free = default_free(target, len(rows)) if free is None else free
    return fit(roofline_for(target), samples, free=free, tie_ridge="mem_bw_bytes_per_s" not in free)


def fitted_target(target: Target, result: FitResult, note: str) -> Target:
    """The target with fitted figures written back (profile fields + [targets.roofline])."""
    r = result.roofline
    roof = dict(target.roofline or {})
    roof.update(dispatch_s=float(f"{r.dispatch_s:.4g}"), fit=note)
    if r.invoke_s or "invoke_s" in result.free:
        roof["invoke_s"] = float(f"{r.invoke_s:.4g}")
    if r.efficiency:
        roof["efficiency"] = {k: float(f"{v:.4g}") for k, v in r.efficiency.items()}
    return replace(
        target,
        peak_macs_per_s=float(f"{r.peak_macs_per_s:.4g}"),
        mem_bw_bytes_per_s=float(f"{r.mem_bw_bytes_per_s:.4g}"),
        roofline=roof,
    )
