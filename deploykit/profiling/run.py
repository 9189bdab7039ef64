"""``deploykit profile``: where a model's time goes on each target of a device that can say.

Per target whose backend has an op profiler (:meth:`~deploykit.backends.base.Backend.op_profiler`; the others
get one line saying why not): export what is missing (as ``bench`` does), a timed run through the one harness
(a normal, small measurement: the stored row's latency), then a separate profiled run (a profiler's own cost
must not reach a stored latency), the join of its ops to the zoo model's layers with the estimator's
per-layer prediction and ``check``'s findings beside each, stored in the row's ``details["layers_measured"]``.

A profile recorded on a device that is not attached (``--from FILE``: a ``benchmark_model`` CSV, an ONNX Runtime
trace, an ETDump, an AI Hub profile) is read and joined the same way, and printed, not stored: there is no timed
run to store it with.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DeploykitError, FileError
from ..events import Listener
from ..measurement import Measurement, Method
from ..targets import Target
from .join import join
from .records import OpProfile, ProfileError


@dataclass
class ProfileRequest:
    model: str  # a zoo model, or an exported file
    device: str
    targets: list[str] | None = None  # only these (id, name, backend or precision)
    method: Method = field(default_factory=lambda: Method(warmup=10, repetitions=3, runs=50))
    db: Path | None = Path("deploykit-results.db")  # None: print only
    out: Path = Path("artifacts")
    profiles: Path | None = None
    serial: str | None = None
    backend_options: dict = field(default_factory=dict)
    resolution: int | None = None  # --from: the resolution the recording ran at (default: the model's)


@dataclass
class Profiled:
    """One target's outcome: its per-layer table and the timed row it is stored with, or why there is none."""

    target: Target
    table: dict | None = None
    measurement: Measurement | None = None
    skipped: str | None = None  # the backend has no op profiler (one line)
    error: str | None = None  # the export, the timed run or the profiled run failed (one line)


def run_profile(req: ProfileRequest, listener: Listener | None = None) -> list[Profiled]:
    from ..bench import BenchRequest, finish_cell, plan, prepare_cell
    from ..devices import backend_of, device_for
    from ..store import Store

    listener = listener or Listener()
    path = Path(req.model)
    if path.is_dir():
        raise DeploykitError(f"{req.model} is a folder: give a model file or a zoo model name")
    is_file = path.suffix != "" and not _is_zoo_name(req.model)
    breq = BenchRequest(
        device=req.device, models=[] if is_file else [req.model], artifact=path if is_file else None,
        method=req.method, db=req.db or Path("deploykit-results.db"), out=req.out, profiles=req.profiles,
        serial=req.serial, backend_options=req.backend_options,
    )  # fmt: skip
    _, targets, reach = plan(breq)
    targets = chosen(targets, req.targets)
    why_not = {t.id: backend_of(t).op_profiler(t) for t in targets}
    if all(why_not.values()):  # nothing to run or store: said before a database is created or a model exported
        reasons = "; ".join(f"{tid}: {why}" for tid, why in why_not.items())
        raise FileError(f"no target of {req.device} asked for gives per-op times ({reasons})")
    done = []
    listener.planned(len(targets), title=f"profiling {req.model} on {req.device}")
    store = Store(req.db) if req.db else None
    try:
        for t in targets:
            listener.started(f"{req.model} on {t.id}")
            backend = backend_of(t)
            why = why_not[t.id]
            if why:
                done.append(Profiled(t, skipped=why))
                continue
            artifact = prepare_cell(breq, None if is_file else req.model, t)
            if isinstance(artifact, Measurement):  # the export failed
                done.append(Profiled(t, measurement=artifact, error=artifact.error))
                continue
            m, manifest = finish_cell(breq, reach, t, artifact)
            if m.status != "ok":
                done.append(Profiled(t, measurement=m, error=f"timed run failed: {m.error}"))
                continue
            try:
                ops = _profiled_run(backend, artifact, t, req.method, device_for(reach, t))
            except (DeploykitError, RuntimeError, OSError, subprocess.TimeoutExpired) as e:
                done.append(Profiled(t, measurement=m, error=f"profiled run failed: {e}"))
                continue
            table = layer_table(ops, artifact.model, artifact.resolution, t, manifest)
            table["timed_median_ms"] = m.median_ms
            # medians of single inferences, like the op times: on a busy machine the repetition means (the
            # median's inputs) carry every preempted inference, and the gap to the op sum is then the machine's
            table["timed_p50_ms"], table["timed_min_ms"] = m.stats.p50, m.stats.min
            m.details["layers_measured"] = table
            if store is not None:
                store.add(m, manifest)
            done.append(Profiled(t, table, m))
    finally:
        if store is not None:
            store.close()
    return done


def _profiled_run(backend, artifact, target, method: Method, device) -> OpProfile:
    from ..backends.harness import profile_ops

    return profile_ops(backend, artifact, target, method, device)


def _is_zoo_name(name: str) -> bool:
    from ..zoo import get_spec

    try:
        get_spec(name)
        return True
    except DeploykitError:
        return False


def chosen(targets: list[Target], names: list[str] | None) -> list[Target]:
    """The targets ``--target`` names (by id, name, backend or precision); all of them without it."""
    if not names:
        return targets
    wanted = set(names)
    picked = [t for t in targets if wanted & {t.id, t.name, t.backend, t.precision}]
    if not picked:
        raise DeploykitError(
            f"--target {', '.join(names)} names none of the targets here", hint=", ".join(t.id for t in targets)
        )
    return picked


def layer_table(profile: OpProfile, model: str, resolution: int, target: Target, manifest=None) -> dict:
    """The stored per-layer table: ``profile``'s ops joined to ``model``'s deployed layers at ``resolution``, with
    the estimator's per-layer prediction on ``target`` and the artifact's ``check`` findings for it."""
    from .. import estimator as E
    from ..analysis import analyze_spec

    notes = []
    try:
        analysis = analyze_spec(model, resolution or None)
    except DeploykitError as e:  # a user's own model: its ops are listed, with nothing to join them to
        return _unjoined(profile, target, f"no zoo layers to join to: {e.message}")
    layers = E.layers_from_analysis(analysis)
    predicted, predicted_ms = None, None
    try:
        estimate = E.estimate_layers(layers, E.roofline_for(target))
        predicted, predicted_ms = estimate.layers, estimate.latency_ms
    except DeploykitError as e:
        notes.append(f"no roofline prediction: {e.message}")
    joined = join(profile, analysis, [x.kind for x in layers], predicted, findings_for(manifest, target))
    table = joined.to_dict(profile)
    table.update(model=analysis.model, resolution=analysis.resolution, target=target.id)
    table["predicted_total_ms"] = predicted_ms
    table["notes"] = [*table["notes"], *notes]
    return table


def _unjoined(profile: OpProfile, target: Target, why: str) -> dict:
    from .join import Joined

    table = Joined([], list(profile.ops)).to_dict(profile)
    table.update(target=target.id, predicted_total_ms=None, notes=[*table["notes"], why])
    return table


def findings_for(manifest, target: Target) -> list[dict]:
    """The artifact's ``check`` findings under the rule set named for the target's backend (as its manifest
    stored them at export), or none."""
    if manifest is None:
        return []
    rules = manifest.compatibility or {}
    return list((rules.get(target.backend) or {}).get("findings", []))


def from_recording(
    path: Path, model: str, device: str, target_names: list[str] | None, resolution: int | None, profiles=None
) -> Profiled:
    """A profile recorded elsewhere, joined to ``model`` on the device's target it was recorded on."""
    from ..devices import get_profile
    from ..zoo import get_spec

    spec = get_spec(model)  # a zoo model: the recording is joined to its layers
    profile = get_profile(device, profiles)
    targets = chosen(profile.targets, target_names)
    if len(targets) > 1:
        raise DeploykitError(
            f"{path.name}: which of {device}'s targets recorded it? give --target",
            hint=", ".join(t.id for t in targets),
        )
    if path.is_dir():
        raise DeploykitError(f"--from {path} is a folder: give the recorded profile file")
    if not path.is_file():
        raise DeploykitError(f"--from {path}: file not found")
    t = targets[0]
    ops = read_recording(path, t.processor)
    return Profiled(t, layer_table(ops, spec.name, resolution or spec.resolution, t))


def read_recording(path: Path, processor: str = "cpu") -> OpProfile:
    """Whichever recorded profile ``path`` holds, told by its content: an ONNX Runtime trace or an AI Hub profile
    (JSON), a ``benchmark_model`` op-profiling CSV or log (text), an ETDump (a binary flatbuffer). A file none
    of them reads is a one-line :class:`ProfileError` naming it (exit 1)."""
    try:
        return _read(path.read_bytes(), processor)
    except ProfileError as e:
        raise ProfileError(f"{path.name}: {e.message}") from None


def _read(data: bytes, processor: str) -> OpProfile:
    import json

    from . import aihub_detail, etdump, ort_trace, tflite_csv

    if b"\0" in data[:4096]:  # a flatbuffer, not text
        return etdump.read_etdump(data)
    text = data.decode(errors="replace")
    if text.lstrip().startswith(("[", "{")):
        try:
            value = json.loads(text)
        except ValueError as e:
            raise ProfileError(f"truncated or broken JSON ({str(e)[:80]})") from None
        if isinstance(value, dict) and "execution_detail" in value:
            unit = {"cpu": "CPU", "gpu": "GPU"}.get(processor, "NPU")  # AI Hub's compute units
            return aihub_detail.read_profile(value, unit)
        return ort_trace.read_trace(text)
    if tflite_csv.SECTION in text:
        return tflite_csv.read_csv(text, processor)
    raise ProfileError(
        "none of the recorded profiles deploykit reads"
        " (benchmark_model op-profiling CSV, ONNX Runtime trace, ETDump, AI Hub profile)"
    )
