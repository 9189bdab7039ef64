"""Does the exported file compute what PyTorch computes? Run it on its host runtime and compare.

The host runtime is the format plugin's session (``Format.open_session``): ONNX Runtime for .onnx, LiteRT
(XNNPACK) for .tflite, Core ML for .mlpackage, which can only predict on macOS: where a format cannot run, the
artifact gets a structural check only and its fidelity block says ``verified: false`` with the reason, never
a number.

Metrics, per artifact, over the same N inputs given to PyTorch (logits compared as float):
cosine similarity (the minimum over samples is what is judged), max abs error, SNR in dB
(10·log10 Σref² / Σ(ref−out)²), top-1 agreement (share of samples whose arg-max matches) and top-5 agreement
(share whose PyTorch top-1 is in the artifact's top-5).

Reference and threshold (minimum per-sample cosine), and why:
- fp32: float PyTorch, 0.9999 — only operator order and fused-kernel rounding differ.
- fp16: float PyTorch, 0.999 — fp16 weights (10-bit mantissa) through 20–100 layers.
- int8-dynamic: float PyTorch, 0.99 — int8 weights, activations quantized per op at run time.
- int8 / int8-edgetpu: PyTorch's *simulated* int8 program (the PT2E-converted model, same scales and zero
  points). What remains is integer rounding (TFLite requantizes with fixed-point multipliers, PyTorch simulates
  in float), and how far 1-LSB differences grow depends on the weights: on seeded random weights LiteRT's own
  XNNPACK and reference int8 kernels disagree with each other at ~0.92–0.97 cosine on the *same file*. So the
  threshold calibrates itself: the file (run with XNNPACK) must agree with PyTorch's int8 program at least as
  well as LiteRT's reference kernels agree with XNNPACK on it, less 0.02, and never needs more than 0.99. A
  converter error (a wrong scale, layout or op) lands far below that floor. The cost of int8 itself against float
  PyTorch (``vs_fp32``: cosine, SNR, top-1 agreement) is reported beside it, not judged: it depends on the weights
  and calibration images, not on the converter; docs/exports.md lists it per model.
  Where the int8 program is not PyTorch's (ONNX QDQ files, quantized by ONNX Runtime), the reference is the
  file's own Q/DQ program run in float (``onnx-qdq-simulated``); where no second int8 kernel set exists
  (ExecuTorch, ONNX Runtime) the threshold calibrates on that program with one-LSB rounding noise
  (:data:`ROUNDING_NOISE_SHARE` of each activation quantize's values) instead of on a second kernel set.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deploykit.artifact import Manifest

from .base import get as get_format

THRESHOLDS = {"fp32": 0.9999, "fp16": 0.999, "int8-dynamic": 0.99, "int8": 0.99, "int8-edgetpu": 0.99}

# Fixed floors a file must meet to be called "verified" (docs/fidelity.md gives the published figures they come
# from: deploykit/reference/int8_accuracy.csv). Against the program the file claims to compute, only rounding
# may differ; against float PyTorch an int8 file may cost what good 8-bit recipes cost these models (0-1.6
# top-1 points published; the floor allows 2): top-1 agreement >= 95% and cosine >= 0.98 on average.
FLOORS_VS_REFERENCE = {
    "fp32": {"cosine_mean": 0.99999, "cosine_min": 0.9999, "top1_agreement": 0.999},
    "fp16": {"cosine_mean": 0.9995, "cosine_min": 0.999, "top1_agreement": 0.995},
    "int8": {"cosine_mean": 0.999, "cosine_min": 0.99, "top1_agreement": 0.995},
}
FLOORS_VS_FLOAT = {"int8": {"cosine_mean": 0.98, "cosine_min": 0.90, "top1_agreement": 0.95}}
WHAT_STATUS_MEANS = {
    "verified": "meets the fixed floors against the program it claims to compute (and, for int8, against float"
    " PyTorch)",
    "converter-consistent": "computes what its int8 reference program computes (PyTorch's own int8 program, or"
    " an ONNX file's own Q/DQ program in float; see reference), within the int8 rounding disagreement measured on"
    " this file (see threshold_rule); NOT shown: that it keeps the float model's predictions (the fixed floors)",
    "failed-fidelity": "computes something too different from the program it claims to compute",
    "unverified": "not judged (see the reason)",
}


def shortfalls(metrics: dict, floors: dict) -> list[str]:
    """Each floor the metrics miss, as "cosine_mean 0.9431 < 0.999"."""
    return [f"{k} {metrics[k]:.4g} < {v}" for k, v in floors.items() if metrics[k] < v]


def floor_key(precision: str) -> str:
    return "int8" if precision.startswith("int8") else precision


def compare(reference: np.ndarray, output: np.ndarray) -> dict:
    ref = reference.reshape(len(reference), -1).astype(np.float64)
    out = output.reshape(len(output), -1).astype(np.float64)
    cos = (ref * out).sum(1) / np.maximum(np.linalg.norm(ref, axis=1) * np.linalg.norm(out, axis=1), 1e-30)
    noise = ((ref - out) ** 2).sum()
    snr = float("inf") if noise == 0 else 10 * np.log10((ref**2).sum() / noise)
    top1 = ref.argmax(1) == out.argmax(1)
    top5 = [r in set(np.argsort(-o)[:5]) for r, o in zip(ref.argmax(1), out)]
    return {
        "samples": len(ref),
        "cosine_min": float(cos.min()),
        "cosine_mean": float(cos.mean()),
        "max_abs_error": float(np.abs(ref - out).max()),
        "snr_db": float(snr),
        "top1_agreement": float(top1.mean()),
        "top5_agreement": float(np.mean(top5)),
    }


KERNEL_SLACK = 0.02
# The share of activation values moved by one LSB in the rounding-noise program (docs/decisions.md,
# "ExecuTorch's rounding-noise share"): the largest whose threshold is not far below two real kernel sets'.
ROUNDING_NOISE_SHARE = 1 / 16


def judge(metrics: dict, precision: str, threshold: float | None = None) -> dict:
    threshold = THRESHOLDS[precision] if threshold is None else threshold
    passed = metrics["cosine_min"] >= threshold
    return {
        **metrics,
        "verified": True,
        "criterion": "cosine_min",
        "threshold": threshold,
        "passed": bool(passed),
        "margin": metrics["cosine_min"] - threshold,
    }


def run_artifact(path: Path, manifest: Manifest, x_nchw: np.ndarray, reference_kernels: bool = False) -> np.ndarray:
    """Logits (float32, one row per sample) of an artifact on its host runtime, one sample at a time.

    ``reference_kernels``: LiteRT's portable reference kernels instead of XNNPACK (TFLite only)."""
    options = {"reference_kernels": True} if reference_kernels else {}
    session = get_format(manifest.format).open_session(path, manifest, threads=2, **options)
    return np.concatenate([session(x_nchw[i : i + 1]) for i in range(len(x_nchw))])
