"""``deploykit bench``: every target of a device × the requested models → stored Measurements.

For each model and target: export what is missing (through the exporters' cache, in the precision the target
runs), hand the artifact to the backend plugin that serves the target through the one harness, store the
Measurement at once. A failing target (a crash in a delegate, a lost device, a failed export) is stored as a
failed Measurement with its error and the run goes on. Ctrl-C stops it; everything finished is committed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .artifact import Manifest, read_manifest
from .backends.base import Artifact
from .backends.harness import measure
from .devices import Reach, backend_of, get_profile, reachability
from .errors import DeploykitError
from .events import Listener
from .exporters import base as formats
from .measurement import Measurement, Method
from .store import Store
from .targets import Profile, Target


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
    serial: str | None = None  # which attached device, when several match
    backend_options: dict = field(default_factory=dict)  # e.g. {"benchmark_binary": PATH} for adb


def plan(req: BenchRequest) -> tuple[Profile, list[Target], Reach]:
    """Validate everything and choose targets before any slow work."""
    profile = get_profile(req.device, req.profiles)
    reach = reachability(profile)
    if not reach.reachable:
        raise DeploykitError(
            f"device {profile.name} is not reachable: {reach.how}",
            hint=f"connect it ({profile.reach}); `deploykit estimate --device {profile.name}` predicts its latency without it",
        )
    if req.serial:
        reach.devices = [d for d in reach.devices if d.id == req.serial]
        if not reach.devices:
            raise DeploykitError(f"no attached {profile.name} with serial {req.serial!r}", hint=reach.how)
    targets = [t for t in profile.targets if t.available]
    if req.backends:
        targets = [t for t in targets if t.backend in req.backends or t.name in req.backends]
        missing = [t for t in targets if t.id in reach.unavailable]
        if missing:  # asked for by name: say why it cannot run rather than skipping it
            raise DeploykitError(f"{missing[0].id} cannot run here: {reach.unavailable[missing[0].id]}")
    targets = [t for t in targets if t.id not in reach.unavailable]
    if req.precisions:
        targets = [t for t in targets if t.precision in req.precisions]
    if req.artifact is not None:
        fmt = formats.for_path(req.artifact)
        if not req.artifact.exists():
            raise DeploykitError(f"cannot benchmark {req.artifact}: file not found")
        targets = [t for t in targets if t.format == fmt.name]
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
    for plugin in {backend_of(t).name: backend_of(t) for t in targets}.values():
        plugin.preflight(req.backend_options)
    return profile, targets, reach


def run_bench(req: BenchRequest, listener: Listener | None = None) -> list[Measurement]:
    profile, targets, reach = plan(req)
    listener = listener or Listener()
    jobs = [(model, t) for model in (req.models or [None]) for t in targets]
    for t in profile.targets:
        asked = (not req.precisions or t.precision in req.precisions) and not req.backends and not req.artifact
        if t.available and t.id in reach.unavailable and asked:
            listener.warn(f"{t.id} skipped: {reach.unavailable[t.id]}")
    listener.planned(len(jobs), title=f"benchmarking {profile.name}")
    done: list[Measurement] = []
    with Store(req.db) as store:
        for model, target in jobs:
            listener.started(f"{model or req.artifact.name} on {target.id}")
            m, manifest = measure_one(req, reach, model, target)
            store.add(m, manifest)
            done.append(m)
            listener.finished(m)
    return done


def measure_one(
    req: BenchRequest, reach: Reach, model: str | None, target: Target
) -> tuple[Measurement, Manifest | None]:
    """One cell: its Measurement, and the manifest of the artifact it ran (stored beside it)."""
    try:
        artifact = artifact_for(req, model, target)
    except DeploykitError as e:
        failed = Measurement.for_target(target, model or req.artifact.name, 0, status="failed")
        failed.error = f"export failed: {e}"
        return failed, None
    device = reach.devices[0] if reach.devices else None  # the first matching one, or the --serial one
    return measure(backend_of(target), artifact, target, req.method, device), artifact.manifest


def artifact_for(req: BenchRequest, model: str | None, target: Target) -> Artifact:
    """The file a target runs: the user's (with its manifest, or one read from the file), or the zoo model's
    export in the target's format and precision (from the export cache when it is there)."""
    if req.artifact is not None:
        manifest = read_manifest(req.artifact) or formats.for_path(req.artifact).manifest_from_file(req.artifact)
        return Artifact(manifest.model["name"], manifest.model["resolution"], req.artifact, manifest)
    from .zoo import get_spec

    spec = get_spec(model)
    if formats.get(target.format).suffix is None:  # the backend runs the model itself
        return Artifact(spec.name, spec.resolution)
    from .exporters.pipeline import ExportRequest, export

    r = export(ExportRequest(spec.name, target.format, target.export_precision, out=req.out))
    return Artifact(spec.name, spec.resolution, r.path, r.manifest)
