"""The export pipeline: build → convert (→ quantize) → verify → check, writing an Artifact + manifest.

Files appear atomically: the converter writes to a hidden ``.partial`` path in the output folder, which is
renamed into place only when conversion succeeded; the manifest (written last) says whether the file passed its
fidelity check. A failed conversion leaves nothing that looks like an artifact. Exporting the same model with
the same weights and options again reuses the artifact (keyed by a hash of both, :func:`export_key`) unless
``force``: the output folder's, else the artifact cache's (:mod:`.cache`), without converting or verifying again.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from deploykit import __version__
from deploykit.artifact import (
    Manifest,
    file_sha256,
    options_key,
    path_size,
    read_manifest,
    tool_versions,
    write_manifest,
)
from deploykit.errors import DeploykitError

from . import base as formats
from . import cache as artifact_cache
from .cache import remove_path as _remove
from .calibration import calibration_inputs
from .compat import compatibility

STAGES = ("build", "convert", "verify", "check")


class FidelityError(DeploykitError):
    """The artifact was written but computes something too different from PyTorch."""

    exit_code = 3


class ConversionError(DeploykitError):
    """A converter failed on this model (not a user mistake, but said in one line with the cause)."""

    exit_code = 1


@dataclass
class ExportRequest:
    model: str  # zoo name/alias, or "package.module:factory" for your own nn.Module
    fmt: str
    precision: str | None = None  # default: the format's own (fp32; fp16 for Core ML)
    out: Path = Path("artifacts")
    resolution: int | None = None
    weights: str | Path | None = None  # a checkpoint file, "timm", or "hf-hub:ORG/NAME" (deploykit.weights)
    calibration: Path | None = None
    calibration_samples: int = 32
    verify_samples: int = 8
    input_shape: tuple[int, ...] | None = None  # required for your own model
    fp16_input: bool = False  # FP16 model input (Core ML's Neural Engine setup); formats that take it say so
    force: bool = False  # convert and verify again, even when a file with the same key exists
    use_cache: bool = True  # the artifact cache (exporters/cache.py): --no-cache neither reads nor writes it
    weights_source: object = None  # the resolved WeightsSource (validate() fills it in)


@dataclass
class ExportResult:
    path: Path
    manifest: Manifest
    reused: bool = False
    reused_from: str | None = None  # "out" (the output folder's file) or "cache" (the artifact cache's)
    stage_seconds: dict = field(default_factory=dict)


@dataclass
class _Built:
    name: str
    family: str
    source: str
    model: torch.nn.Module
    resolution: int
    mean: tuple
    std: tuple


def validate(req: ExportRequest) -> ExportRequest:
    """Check everything a user typed before any slow work; fills defaults."""
    fmt = formats.get(req.fmt)
    if fmt.suffix is None:
        raise DeploykitError(f"{req.fmt} is not a file format", hint=f"use one of {', '.join(formats.names(True))}")
    req.precision = req.precision or fmt.default_precision
    if req.precision not in fmt.precisions:
        raise DeploykitError(
            f"precision {req.precision!r} is not available for {req.fmt}",
            hint=f"{req.fmt} takes {', '.join(fmt.precisions)}",
        )
    if req.fp16_input and "fp16_input" not in fmt.options:
        takers = [f.name for f in formats.formats() if "fp16_input" in f.options]
        raise DeploykitError(f"--fp16-input applies to {', '.join(takers)} exports only")
    if req.calibration_samples < 1 or req.verify_samples < 1:
        raise DeploykitError("sample counts must be at least 1")
    if req.calibration is not None:
        from .calibration import list_images

        list_images(req.calibration)  # empty or missing folder: exit 2 now, not after converting
    if req.weights is not None:
        if ":" in req.model and not Path(req.weights).is_file():  # your own model: a state dict file
            raise DeploykitError(f"weights file not found: {req.weights}")
        if ":" not in req.model:  # a zoo model: a file, or its timm checkpoint from the Hugging Face cache/hub
            from deploykit.weights import resolve_weights
            from deploykit.zoo import get_spec

            req.weights_source = resolve_weights(str(req.weights), get_spec(req.model))
    _check_writable(Path(req.out))
    return req


def _check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".deploykit-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise DeploykitError(f"cannot write to output folder {out}: {e.strerror or e}", hint="choose --out") from None


def build(req: ExportRequest) -> _Built:
    """The model in deploy form, eval mode, with its preprocessing facts."""
    if ":" in req.model:
        return _build_user_model(req)
    from deploykit.weights import load_source, resolve_weights
    from deploykit.zoo import get_spec

    spec = get_spec(req.model)
    res = _requested_side(req, spec.resolution)  # --input-shape too: one CI recipe for zoo and own models
    spec.check_resolution(res)
    torch.manual_seed(0)  # without --weights, the seeded random weights are reproducible
    model = spec.build()
    if req.weights:
        req.weights_source = req.weights_source or resolve_weights(str(req.weights), spec)
        load_source(model, spec, req.weights_source)
    else:
        recalibrate_batchnorm(model, res, spec.mean, spec.std)
    if hasattr(model, "reparameterize"):
        model.reparameterize()
    return _Built(spec.name, spec.family, "zoo", model.eval(), res, spec.mean, spec.std)


@torch.no_grad()
def recalibrate_batchnorm(model: torch.nn.Module, resolution: int, mean, std, samples: int = 16) -> None:
    """Set every BatchNorm's running statistics from synthetic images (cumulative average, seeded).

    Randomly initialised networks have identity BN statistics, so activations shrink layer by layer and the
    logits are little more than the classifier bias: every export then "matches" PyTorch trivially (cosine ≈ 1,
    arg-max agreement 0). With statistics estimated on image-like inputs each layer sees unit-scale activations,
    as in a trained network, and the fidelity check measures the converter. Only used without ``--weights``.
    """
    from .calibration import normalize, synthetic_images

    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average over all batches
    model.train()
    x = normalize(synthetic_images(samples, resolution, seed=123), mean, std)
    for i in range(0, samples, 8):
        model(x[i : i + 8])
    model.eval()


def _requested_side(req: ExportRequest, default: int | None) -> int | None:
    """The input side asked for: S of ``--input-shape 1,3,S,S`` (the one input shape deploykit exports), or
    ``-r``, which must agree with it, or ``default``."""
    if not req.input_shape:
        return default if req.resolution is None else req.resolution
    shape = tuple(req.input_shape)
    text = ",".join(map(str, shape))
    if len(shape) != 4 or shape[0] != 1 or shape[1] != 3 or shape[2] != shape[3] or min(shape) < 1:
        raise DeploykitError(f"--input-shape {text}: deploykit exports 1,3,S,S image models")
    if req.resolution is not None and req.resolution != shape[2]:
        raise DeploykitError(f"--input-shape {text} and -r {req.resolution} disagree: give one")
    return shape[2]


def _build_user_model(req: ExportRequest) -> _Built:
    module_name, _, attr = req.model.partition(":")
    if not req.input_shape:
        raise DeploykitError("your own model needs --input-shape, e.g. --input-shape 1,3,224,224")
    side = _requested_side(req, None)
    shape = (1, 3, side, side)
    sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
        factory = getattr(module, attr)
    except (ImportError, AttributeError) as e:
        raise DeploykitError(
            f"cannot load {req.model}: {e}", hint="give package.module:callable on PYTHONPATH"
        ) from None
    finally:
        sys.path.remove(os.getcwd())
    try:
        model = factory()
    except Exception as e:
        raise DeploykitError(f"{req.model}() failed: {type(e).__name__}: {e}") from None
    if not isinstance(model, torch.nn.Module):
        raise DeploykitError(f"{req.model}() returned {type(model).__name__}, not a torch.nn.Module")
    if req.weights:
        from deploykit.weights import read_state_dict

        try:
            model.load_state_dict(read_state_dict(req.weights))
        except RuntimeError as e:
            raise DeploykitError(f"weights do not fit {req.model}: {str(e).splitlines()[0]}") from None
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{module_name}.{attr}")
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    return _Built(safe, "user", f"user:{req.model}", model.eval(), shape[-1], mean, std)


def export(req: ExportRequest, on_stage: Callable[[str], None] | None = None) -> ExportResult:
    """Export one model to one format/precision. ``on_stage(name)`` is called as each stage starts.

    A file exported before under the same key is reused, not converted nor verified again: the one in the output
    folder, else the artifact cache's (:mod:`.cache`; ``use_cache=False`` neither reads nor writes it)."""
    req = validate(req)
    stage = on_stage or (lambda _s: None)
    t0 = time.perf_counter()
    stage("build")
    b = build(req)
    from deploykit.weights import state_dict_sha256

    weights_sha = state_dict_sha256(b.model)
    key = export_key(req, b, weights_sha)
    path = Path(req.out) / formats.artifact_name(b.name, b.resolution, req.fmt, req.precision)
    times = {"build": time.perf_counter() - t0}
    result = _reuse(req, path, key, times)
    if result is None:
        result = _convert_and_verify(req, b, path, key, weights_sha, stage, times)
        if req.use_cache:
            artifact_cache.store(key, path, result.manifest)
    if result.manifest.status == "failed-fidelity":
        raise _fidelity_error(path, result.manifest.fidelity)
    return result


def export_key(req: ExportRequest, b: _Built, weights_sha: str) -> str:
    """Everything that changes the file (and its verification): the output folder's reuse and the artifact cache
    are keyed by it."""
    calib_desc = None
    if req.precision in ("int8", "int8-edgetpu"):
        calib_desc = _calibration_digest(req.calibration) if req.calibration else "synthetic"
    return options_key(
        deploykit=__version__,
        exporters=_exporters_source_hash(),
        tools=tool_versions(formats.get(req.fmt).tools),  # torch, numpy and the format's converter and runtime
        model=b.source + ":" + b.name,
        weights=weights_sha,
        resolution=b.resolution,
        fmt=req.fmt,
        precision=req.precision,
        calibration=calib_desc,
        calibration_samples=req.calibration_samples if calib_desc else None,
        fp16_input=req.fp16_input,
    )


def _calibration_digest(folder: Path) -> str:
    """A calibration folder by content (its images' names and bytes), not by path: the same images elsewhere hit
    the cache, changed images in the same folder do not."""
    import hashlib

    from .calibration import list_images

    root = Path(folder)
    h = hashlib.sha256()
    for image in list_images(root):
        h.update(str(image.relative_to(root)).encode())
        h.update(file_sha256(image).encode())
    return "images:" + h.hexdigest()


def _reuse(req: ExportRequest, path: Path, key: str, times: dict) -> ExportResult | None:
    """The file already exported under ``key``: the output folder's (same sha256 as its manifest says), else the
    artifact cache's, placed in the output folder. Its manifest holds its verification: not run again."""
    if req.force:
        return None
    existing = read_manifest(path) if path.exists() else None
    if existing and existing.cache_key == key and file_sha256(path) == existing.sha256:
        return ExportResult(path, existing, reused=True, reused_from="out", stage_seconds=times)
    if not req.use_cache:
        return None
    t0 = time.perf_counter()
    cached = artifact_cache.fetch(key, path)
    if cached is None:
        return None
    times["cache"] = time.perf_counter() - t0
    return ExportResult(path, cached, reused=True, reused_from="cache", stage_seconds=times)


def _convert_and_verify(req, b: _Built, path: Path, key: str, weights_sha: str, stage, times: dict) -> ExportResult:
    """Convert (the file appears only when conversion succeeded), verify against PyTorch, check, write the
    manifest."""
    calib, calib_info = None, None
    if req.precision in ("int8", "int8-edgetpu"):
        calib, calib_info = calibration_inputs(
            req.calibration_samples, b.resolution, b.mean, b.std, req.calibration, seed=0
        )
    fmt = formats.get(req.fmt)
    stage("convert")
    t0 = time.perf_counter()
    partial = path.with_name(f".{path.stem}.partial{path.suffix}")  # converters insist on the real suffix
    _remove(partial)
    example = torch.zeros(1, 3, b.resolution, b.resolution)
    try:
        info = fmt.convert(b.model, example, partial, req.precision, calib, {"fp16_input": req.fp16_input})
    except DeploykitError:
        _remove(partial)
        raise
    except Exception as e:
        _remove(partial)
        detail = traceback.format_exception_only(type(e), e)[-1].strip().splitlines()[0][:300]
        raise ConversionError(f"{req.fmt}/{req.precision} conversion of {b.name} failed: {detail}") from e
    _remove(path)
    partial.rename(path)
    times["convert"] = time.perf_counter() - t0

    reference = info.pop("_quantized_reference", None)
    # A format with no second int8 kernel set hands over a second int8 implementation of the same program
    # (ExecuTorch: PyTorch's int8 program with one-LSB rounding noise, executorch_convert.with_rounding_noise;
    # ONNX int8: its Q/DQ program with that noise, onnx_quantize.with_rounding_noise).
    reference_noisy = info.pop("_rounding_reference", None)
    # What the reference program is: PyTorch's simulated int8 program, unless the format says otherwise (an ONNX
    # QDQ file's own Q/DQ program run in float).
    reference_name = info.pop("_reference_name", "pytorch-int8-simulated")
    manifest = _manifest(req, b, path, key, weights_sha, info, calib_info)
    stage("verify")
    t0 = time.perf_counter()
    manifest.fidelity = _verify(req, b, path, manifest, reference, reference_noisy, reference_name)
    times["verify"] = time.perf_counter() - t0
    stage("check")
    t0 = time.perf_counter()
    manifest.compatibility = compatibility(fmt, path, req.precision)
    times["check"] = time.perf_counter() - t0
    manifest.status = manifest.fidelity.get("status", "unverified")
    write_manifest(path, manifest)
    return ExportResult(path, manifest, stage_seconds=times)


def _exporters_source_hash() -> str:
    """The exporters' own code is part of the cache key: a changed conversion (a new graph rewrite, say) must
    not hand back a file the old code wrote, even when the version number did not move."""
    import hashlib

    h = hashlib.sha256()
    for f in sorted(Path(__file__).parent.glob("*.py")):
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _fidelity_error(path: Path, f: dict) -> FidelityError:
    missed = "; ".join(f.get("shortfalls") or [f"{f['criterion']} {f[f['criterion']]:.6f} < {f['threshold']}"])
    return FidelityError(
        f"{path.name} failed its fidelity check against {f['reference']}: {missed};"
        " the file is kept, marked failed-fidelity in its manifest"
    )


def _manifest(req, b: _Built, path: Path, key: str, weights_sha: str, info: dict, calib_info) -> Manifest:
    notes = list(info.get("notes", []))
    if b.source == "zoo" and not req.weights:
        notes.append(
            "no --weights: seeded random weights, BatchNorm statistics estimated on synthetic images"
            " (fidelity tests the converter, not accuracy)"
        )
    if calib_info and calib_info.get("source") == "synthetic":
        notes.append(
            f"no --calibration: int8 ranges calibrated on {calib_info['samples']} synthetic images (random colour"
            " fields), not photos; give --calibration FOLDER of real images for a file to ship"
        )
    res = b.resolution
    described = formats.get(req.fmt).describe(path, req.precision, {**info, "resolution": res})
    notes += described.notes
    info = {**info, **described.extra}
    extra = {k: v for k, v in info.items() if k not in ("ops", "notes")}
    return Manifest(
        model={
            "name": b.name,
            "family": b.family,
            "source": b.source,
            "resolution": res,
            "weights": str(req.weights) if req.weights else None,
            "weights_source": req.weights_source.source if req.weights_source else None,
            "weights_file_sha256": req.weights_source.sha256 if req.weights_source else None,
            "weights_sha256": weights_sha,
            # trained weights (a checkpoint, or the user's own model as built) vs deploykit's seeded random ones:
            # an accuracy measured on this file means something only when this is true
            "weights_real": bool(req.weights) or b.source != "zoo",
        },
        format=req.fmt,
        precision=req.precision,
        file=path.name,
        inputs=described.inputs,
        outputs=described.outputs,
        normalization={"mean": list(b.mean), "std": list(b.std), "pixel_range": [0.0, 1.0]},
        options={**extra, "fp16_input": req.fp16_input},
        cache_key=key,
        sha256=file_sha256(path),
        size_bytes=path_size(path),
        ops=described.ops,
        tools=tool_versions(formats.get(req.fmt).tools),
        calibration=calib_info,
        notes=notes,
    )


def _verify(
    req, b: _Built, path: Path, manifest: Manifest, reference=None, reference_noisy=None, reference_name=""
) -> dict:
    """The file run beside PyTorch on the same inputs: against float PyTorch for a float file, against its
    simulated-int8 program (PyTorch's, or an ONNX file's own Q/DQ program; and float PyTorch) for a static int8
    one; where the format cannot run here, its structure only."""
    from .fidelity import compare, run_artifact

    fmt = formats.get(req.fmt)
    cannot = fmt.cannot_run_here()
    if cannot:
        return {
            "verified": False,
            "reason": f"{cannot}; checked structurally on this host",
            "structure_ok": fmt.structure_ok(manifest),
        }
    x, info = calibration_inputs(req.verify_samples, b.resolution, b.mean, b.std, req.calibration, seed=1)
    with torch.no_grad():
        ref = b.model(x).numpy()
    got = run_artifact(path, manifest, x.numpy().astype(np.float32))
    if reference is None and req.precision == "int8-dynamic" and b.source == "zoo" and not req.weights:
        # No simulated PyTorch program exists for dynamic quantization, and seeded random weights amplify
        # per-op int8 rounding (LiteRT's own kernels disagree on the same file): no honest threshold. Report.
        kernels = compare(run_artifact(path, manifest, x.numpy().astype(np.float32), reference_kernels=True), got)
        return {
            "verified": False,
            "reason": "int8-dynamic on seeded random weights is not judged (no int8 PyTorch reference; random "
            "weights amplify activation rounding); give --weights to judge it against float PyTorch at 0.99",
            "measured_vs_fp32": compare(ref, got),
            "kernel_agreement": kernels,
            "inputs": info["source"],
        }
    if reference is None:  # float files (and int8-dynamic on real weights): float PyTorch is the reference
        return _verify_float(req.precision, ref, got, info)
    return _verify_static_int8(req, fmt, path, manifest, x, ref, got, info, reference, reference_noisy, reference_name)


def _verify_float(precision: str, ref, got, info: dict) -> dict:
    from .fidelity import FLOORS_VS_FLOAT, FLOORS_VS_REFERENCE, compare, floor_key, judge, shortfalls

    metrics = compare(ref, got)
    key = floor_key(precision)
    floors = FLOORS_VS_FLOAT[key] if key == "int8" else FLOORS_VS_REFERENCE[key]
    missed = shortfalls(metrics, floors)
    return {
        **judge(metrics, precision),
        "reference": "pytorch-fp32",
        "inputs": info["source"],
        "floors": floors,
        "shortfalls": missed,
        "status": "failed-fidelity" if missed else "verified",
    }


def _verify_static_int8(req, fmt, path, manifest, x, ref, got, info, reference, reference_noisy, name) -> dict:
    """Static int8: against the simulated-int8 program ``name`` (the same scales: PyTorch's, or an ONNX file's
    own Q/DQ graph run in float), and against float PyTorch. The program takes the file's own input layout (NHWC
    for TFLite, NCHW for ExecuTorch and ONNX)."""
    from .fidelity import FLOORS_VS_FLOAT, FLOORS_VS_REFERENCE, compare, judge, shortfalls

    nhwc = manifest.inputs[0].layout == "NHWC"

    def run_program(program) -> np.ndarray:
        with torch.no_grad():
            return np.concatenate(
                [program(x[i : i + 1].permute(0, 2, 3, 1) if nhwc else x[i : i + 1]).numpy() for i in range(len(x))]
            )

    qref = run_program(reference)
    run_noisy = (lambda: run_program(reference_noisy)) if reference_noisy is not None else None
    kernels, threshold, rule = _int8_threshold(req.precision, fmt, path, manifest, x, got, qref, run_noisy, name)
    vs_int8, vs_fp32 = compare(qref, got), compare(ref, got)
    judged = judge(vs_int8, req.precision, threshold)
    missed = shortfalls(vs_int8, FLOORS_VS_REFERENCE["int8"]) + [
        f"vs float: {x}" for x in shortfalls(vs_fp32, FLOORS_VS_FLOAT["int8"])
    ]
    if not missed:
        status = "verified"
    else:  # the fixed floors are not met: is the file at least what the converter's own int8 program computes?
        status = "converter-consistent" if judged["passed"] else "failed-fidelity"
    return {
        **judged,
        "reference": name,
        "threshold_rule": rule,
        "kernel_agreement": kernels,
        "inputs": info["source"],
        "vs_fp32": vs_fp32,
        "floors": {"vs_reference": FLOORS_VS_REFERENCE["int8"], "vs_float": FLOORS_VS_FLOAT["int8"]},
        "shortfalls": missed,
        "status": status,
    }


def _int8_threshold(
    precision: str, fmt, path, manifest, x, got, qref, run_noisy, name
) -> tuple[dict | None, float, str]:
    """(the agreement the threshold calibrates on, the threshold, its rule in words): a second int8 kernel set on
    the same file where the format has one, else how far one-LSB rounding differences grow in the reference
    program ``name``, else the fixed threshold alone."""
    from .fidelity import KERNEL_SLACK, ROUNDING_NOISE_SHARE, THRESHOLDS, compare, run_artifact

    if fmt.reference_kernels:
        kernels = compare(run_artifact(path, manifest, x.numpy().astype(np.float32), reference_kernels=True), got)
        rule = f"min({THRESHOLDS[precision]}, {fmt.reference_kernels} kernel cosine - {KERNEL_SLACK})"
    elif run_noisy is not None:
        kernels = compare(qref, run_noisy())
        rule = (
            f"min({THRESHOLDS[precision]}, the {name} program vs itself with 1-LSB rounding noise on"
            f" 1/{round(1 / ROUNDING_NOISE_SHARE)} of its activations, cosine - {KERNEL_SLACK})"
        )
    else:
        return None, THRESHOLDS[precision], f"{THRESHOLDS[precision]} (no second int8 implementation to compare with)"
    return kernels, min(THRESHOLDS[precision], kernels["cosine_min"] - KERNEL_SLACK), rule
