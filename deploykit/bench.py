"""``deploykit bench``: every target of a device × the requested models → stored Measurements.

For each model and target: export what is missing (through the exporters' cache, in the precision the target
runs), run the target's runner, store the Measurement at once. A failing target (a crash in a delegate, a lost
device, a failed export) is stored as a failed Measurement with its error and the sweep goes on. Ctrl-C stops the
sweep; everything finished before it is already committed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .artifact import Manifest, TensorSpec, file_sha256, read_manifest
from .devices import Profile, Target, get_profile, reachability
from .errors import DeploykitError
from .measurement import Measurement
from .runners.host import Method
from .store import Store


@dataclass
class BenchRequest:
    device: str
    models: list[str]
    artifact: Path | None = None
    backends: list[str] | None = None
    precisions: list[str] | None = None
    method: Method = field(default_factory=Method)
    db: Path = Path("deploykit-results.db")
    out: Path = Path("artifacts")
    profiles: Path | None = None
    serial: str | None = None
    benchmark_binary: str | None = None


def plan(req: BenchRequest) -> tuple[Profile, list[Target], dict]:
    """Validate everything and choose targets before any slow work."""
    profile = get_profile(req.device, req.profiles)
    reach = reachability(profile)
    if not reach["reachable"]:
        raise DeploykitError(
            f"device {profile.name} is not reachable: {reach['how']}",
            hint=f"connect it ({profile.reach}); `deploykit estimate --device {profile.name}` predicts its latency without it",
        )
    targets = [t for t in profile.targets if t.available]
    if req.backends:
        targets = [t for t in targets if t.backend in req.backends or t.name in req.backends]
    if req.precisions:
        targets = [t for t in targets if t.precision in req.precisions]
    if req.artifact is not None:
        fmt = {".tflite": "tflite", ".onnx": "onnx", ".mlpackage": "coreml"}.get(req.artifact.suffix)
        if fmt is None or not req.artifact.exists():
            raise DeploykitError(f"cannot benchmark {req.artifact}: give an existing .tflite, .onnx or .mlpackage file")
        targets = [t for t in targets if t.format == fmt]
    if not targets:
        raise DeploykitError(
            f"no target of {profile.name} matches", hint=f"targets: {', '.join(t.id for t in profile.targets)}"
        )
    if not req.models and req.artifact is None:
        raise DeploykitError("nothing to benchmark", hint="give --model NAME (repeatable) or --artifact FILE")
    if req.models:
        from .zoo import get_spec

        for name in req.models:
            get_spec(name)  # unknown names fail now, not after the first target
    return profile, targets, reach


def run_bench(req: BenchRequest, on_event: Callable[[str, dict], None] | None = None) -> list[Measurement]:
    profile, targets, reach = plan(req)
    event = on_event or (lambda _kind, _info: None)
    jobs = [(model, t) for model in (req.models or [None]) for t in targets]
    event("plan", {"jobs": len(jobs), "profile": profile.name})
    done: list[Measurement] = []
    with Store(req.db) as store:
        for model, target in jobs:
            event("start", {"model": model or str(req.artifact), "target": target.id})
            m = measure_one(req, profile, reach, model, target)
            store.add(m)
            done.append(m)
            event("done", {"measurement": m})
    return done


def measure_one(req: BenchRequest, profile: Profile, reach: dict, model: str | None, target: Target) -> Measurement:
    try:
        artifact, manifest, name, res = _artifact_for(req, model, target)
    except DeploykitError as e:
        return Measurement.for_target(
            target,
            model or "?",
            0,
            status="failed",
            error=f"export failed: {e}",
        )
    if profile.reach == "host":
        from .runners.host import run_host

        return run_host(target, str(artifact) if artifact else None, manifest, name, res, req.method)
    if profile.reach == "adb":
        from .runners.adb import benchmark_binary, run_adb

        serial = req.serial or reach["serials"][0]
        return run_adb(target, artifact, name, res, serial, benchmark_binary(req.benchmark_binary), req.method)
    if profile.reach == "apple":
        from .runners.apple import run_coreml

        return run_coreml(target, str(artifact), manifest, name, res, req.method)
    from .runners.coral import run_edgetpu

    return run_edgetpu(target, str(artifact), manifest, name, res, req.method)


def _artifact_for(req: BenchRequest, model: str | None, target: Target):
    if req.artifact is not None:
        manifest = read_manifest(req.artifact) or manifest_from_file(req.artifact)
        return req.artifact, manifest, manifest.model["name"], manifest.model["resolution"]
    from .zoo import get_spec

    spec = get_spec(model)
    if target.format == "pytorch":
        return None, None, spec.name, spec.resolution
    from .exporters.pipeline import ExportRequest, export

    r = export(ExportRequest(spec.name, target.format, target.export_precision, out=req.out))
    return r.path, r.manifest, spec.name, spec.resolution


def manifest_from_file(path: Path) -> Manifest:
    """A minimal manifest for a file deploykit did not export (bring your own .tflite/.onnx)."""
    if path.suffix == ".tflite":
        from .exporters.pipeline import _tf_spec
        from .exporters.tflite_graph import read_tflite

        g = read_tflite(path)
        inputs = [
            _tf_spec(g.t(i), "NHWC" if len(g.t(i).shape) == 4 and g.t(i).shape[-1] in (1, 3) else "NCHW")
            for i in g.inputs
        ]
        outputs = [_tf_spec(g.t(i), "NC") for i in g.outputs]
        precision = "int8" if inputs[0].dtype in ("int8", "uint8") else "fp32"
    elif path.suffix == ".onnx":
        import onnxruntime as ort

        try:
            sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as e:
            raise DeploykitError(f"{path} is not a readable ONNX model: {str(e).splitlines()[0][:200]}") from None
        i = sess.get_inputs()[0]
        dtype = {"tensor(float)": "float32", "tensor(float16)": "float16"}.get(i.type, "float32")
        inputs = [TensorSpec(i.name, [d if isinstance(d, int) else 1 for d in i.shape], dtype, "NCHW")]
        outputs = [
            TensorSpec(o.name, [d if isinstance(d, int) else 1 for d in o.shape], "float32", "NC")
            for o in sess.get_outputs()
        ]
        precision = "fp16" if dtype == "float16" else "fp32"
    else:
        raise DeploykitError(f"no manifest next to {path}; export it with deploykit to benchmark a Core ML package")
    side = inputs[0].shape[1] if inputs[0].layout == "NHWC" else inputs[0].shape[-1]
    return Manifest(
        model={"name": path.stem, "family": "user", "source": f"file:{path}", "resolution": side},
        format=path.suffix.lstrip("."),
        precision=precision,
        file=path.name,
        inputs=inputs,
        outputs=outputs,
        normalization={},
        options={},
        cache_key="",
        sha256=file_sha256(path),
    )
