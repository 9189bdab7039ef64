"""An estimate as a store row (provenance ``estimated``), with what the report draws of it."""

from __future__ import annotations

from ..graph import Layer
from ..targets import Target
from .memory import memory_details
from .model import INTERVAL, Estimate, sweep_ridge


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
    from .. import __version__
    from ..measurement import Measurement

    return Measurement.for_target(
        target,
        model,
        resolution,
        provenance="estimated",
        status="ok" if est.status == "ok" else "unsupported",
        median_ms=est.latency_ms,
        details={
            **(breakdown(est, layers) if layers is not None else {}),
            # the deployment's peak memory and file size, estimated from the model's graph (estimator/memory.py)
            **memory_details(model, target.export_precision or target.precision, resolution),
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
