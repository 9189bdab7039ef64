"""``deploykit bench``: every target of a device × the requested models → stored Measurements.

For each model and target: export what is missing (through the exporters' cache, in the precision the target
runs), hand the artifact to the backend plugin that serves the target through the one harness, store the
Measurement at once. A failing target (a crash in a delegate, a lost device, a failed export) is stored as a
failed Measurement with its error and the run goes on. Ctrl-C stops it; everything finished is committed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path

from .artifact import Manifest, read_manifest
from .backends.base import Artifact, cancelled, of_reach
from .backends.harness import measure
from .devices import Reach, backend_of, device_for, get_profile, reachability
from .errors import DeploykitError
from .events import Listener
from .exporters import base as formats
from .exporters.base import resolve_shapes
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
    strict: int = 0  # re-measure a noisy cell up to this many times, then fail it (0: keep it, marked noisy)
    input_shapes: dict = field(default_factory=dict)  # --input-shape NAME=1,3,640,640 for dynamic dimensions
    weights: str | None = None  # exports on demand with these weights (a file, "timm", "hf-hub:…")
    use_cache: bool = True  # exports on demand reuse and keep verified files in the artifact cache
    label: str | None = None  # the run's label (a git commit, say) on every row: what `deploykit compare` selects
    threads: list[int] | str | None = None  # --threads: each CPU target at each count ("all": 1..cores)
    batch: int | None = None  # --batch N: a throughput row per cell, at batch N, where the format runs it
    resolution: int | None = None  # zoo models exported at this input side (None: each model's default)
    user_file: Artifact | None = field(default=None, init=False)  # --artifact, read once by plan()
    swept: set = field(default_factory=set, init=False)  # targets copied at a --threads count
    shape_notes: list[str] = field(default_factory=list, init=False)  # defaults taken for dynamic dimensions


def plan(req: BenchRequest) -> tuple[Profile, list[Target], Reach]:
    """Validate everything and choose targets before any slow work."""
    if req.resolution is not None and req.artifact is not None:
        raise DeploykitError("--resolution is for zoo models: a file runs at the input it was exported with")
    profile = get_profile(req.device, req.profiles)
    for plugin in (p for reach in profile.reaches for p in of_reach(reach)):  # before discovery: --runner
        plugin.configure(req.backend_options)  # makes a phone's ExecuTorch usable
    reach = reachability(profile)
    if not reach.reachable:
        raise DeploykitError(
            f"device {profile.name} is not reachable: {reach.how}",
            hint=f"connect it ({profile.reach}); `deploykit estimate --device {profile.name}` predicts its latency without it",
        )
    if req.serial:  # picks among the devices of one reach; a hosted service's targets keep theirs
        chosen = [d for d in reach.devices if d.id == req.serial]
        if not chosen:
            raise DeploykitError(f"no attached {profile.name} with serial {req.serial!r}", hint=reach.how)
        reach.devices = [d for d in reach.devices if d in chosen or d.reach != chosen[0].reach]
    targets = profile.targets
    if req.backends:
        targets = [t for t in targets if t.backend in req.backends or t.name in req.backends]
        missing = [t for t in targets if t.id in reach.unavailable]
        if missing:  # asked for by name: say why it cannot run rather than skipping it
            raise DeploykitError(f"{missing[0].id} cannot run here: {reach.unavailable[missing[0].id]}")
    targets = [t for t in targets if t.id not in reach.unavailable]
    if req.artifact is not None:  # `available` says whether deploykit can export for a target; a file is given
        targets = _targets_for_file(req, targets)
    else:
        targets = [t for t in targets if t.available and (not req.precisions or t.precision in req.precisions)]
    if not targets:
        raise DeploykitError(
            f"no target of {profile.name} matches", hint=f"targets: {', '.join(t.id for t in profile.targets)}"
        )
    if not req.models and req.artifact is None:
        raise DeploykitError("nothing to benchmark", hint="give --model NAME (repeatable) or --artifact FILE")
    if req.models:
        from .zoo import get_spec

        for name in req.models:
            spec = get_spec(name)  # unknown names fail now, not after the first target
            if req.resolution is not None:
                spec.check_resolution(req.resolution)
            if req.weights:
                from .weights import resolve_weights

                resolve_weights(req.weights, spec)  # a cold cache or a wrong file fails now, in one line
    targets = thread_targets(req, profile, targets)
    for plugin in {backend_of(t).name: backend_of(t) for t in targets}.values():
        plugin.preflight(req.backend_options)
    return profile, targets, reach


def device_cores(profile: Profile, target: Target) -> int | None:
    """The CPU cores a target's threads run on, where deploykit can know them: this machine's (those this process
    may run on), or a profile's ``host.logical_cpus``; a phone's are not known here."""
    if target.reach == "host":
        import os

        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return None


def thread_targets(req: BenchRequest, profile: Profile, targets: list[Target]) -> list[Target]:
    """``--threads``: each CPU target (of a backend that sets its own threads: not a hosted service's) once per
    count, in count order; a count above the device's cores is refused before any work."""
    if not req.threads:
        return targets
    out = []
    for t in targets:
        if t.processor != "cpu" or backend_of(t).hosted:
            out.append(t)
            continue
        cores = device_cores(profile, t)
        if req.threads == "all":
            if cores is None:
                raise DeploykitError(
                    f"--threads all: the cores of {profile.name} are not known here",
                    hint="give the counts: --threads 1,2,4",
                )
            counts = list(range(1, cores + 1))
        else:
            counts = list(req.threads)
            above = [n for n in counts if cores is not None and n > cores]
            if above:
                raise DeploykitError(f"--threads {above[0]}: {profile.name} has {cores} CPU core(s)")
        for n in counts:
            copy = replace(t, threads=n)
            req.swept.add(copy)
            out.append(copy)
    return out


def _targets_for_file(req: BenchRequest, targets: list[Target]) -> list[Target]:
    """A file runs on the targets of its own format and precision: what its manifest says, or (a file deploykit
    did not write) what the file itself says. A ``--precision`` that contradicts the file is a usage error."""
    fmt = formats.for_path(req.artifact)
    if not req.artifact.exists():
        raise DeploykitError(f"cannot benchmark {req.artifact}: file not found")
    manifest = read_manifest(req.artifact) or fmt.manifest_from_file(req.artifact)
    shapes, req.shape_notes = resolve_shapes(manifest.inputs, req.input_shapes)
    req.user_file = Artifact(manifest.model["name"], manifest.model["resolution"], req.artifact, manifest, shapes)
    precision = manifest.precision
    if req.precisions and not any(same_precision(p, precision) for p in req.precisions):
        raise DeploykitError(
            f"{req.artifact.name} is a {precision} {fmt.name} file; --precision {', '.join(req.precisions)}"
            " contradicts it",
            hint="leave --precision out: the file's own precision chooses its targets",
        )
    of_format = [t for t in targets if t.format == fmt.name]
    if not of_format and req.backends and targets:  # the backends asked for run other formats: say which
        raise DeploykitError(
            f"{req.artifact.name} is a {fmt.name} file, and no target of --backend {', '.join(req.backends)} runs"
            f" {fmt.name} files (they run {', '.join(sorted({t.format for t in targets}))})",
            hint=f"leave --backend out, or name a backend that runs {fmt.name} files",
        )
    fits = [t for t in of_format if same_precision(t.export_precision, precision)]
    if fits or not of_format:
        return fits
    # No target takes this precision (a CPU profile lists fp32 and int8, the file has fp16 weights): run it on
    # each backend that runs the format, under a target named for what the file is, and say so.
    derived = {t.backend: replace(t, precision=precision, export_precision=precision) for t in of_format}
    req.shape_notes.append(
        f"no {of_format[0].device} target lists {precision} {fmt.name} files: measured as "
        + ", ".join(t.id for t in derived.values())
    )
    return list(derived.values())


def same_precision(a: str, b: str) -> bool:
    """An EdgeTPU-ready file is a full-integer int8 file: CPUs run it as such (the reverse is not true for a TPU,
    but a target names the precision it exports, so only int8 targets ask for int8 files)."""
    return a == b or {a, b} == {"int8", "int8-edgetpu"}


# Hosted-service jobs (AI Hub) in flight at once: each holds no local device, only a queue slot at the service.
HOSTED_PARALLEL = 4


def run_bench(req: BenchRequest, listener: Listener | None = None) -> list[Measurement]:
    profile, targets, reach = plan(req)
    listener = listener or Listener()
    batches = [None, req.batch] if req.batch else [None]
    jobs = [(model, t, batch) for model in (req.models or [None]) for t in targets for batch in batches]
    for t in profile.targets:
        asked = (not req.precisions or t.precision in req.precisions) and not req.backends and not req.artifact
        if t.available and t.id in reach.unavailable and asked:
            listener.warn(f"{t.id} skipped: {reach.unavailable[t.id]}")
    listener.planned(len(jobs), title=f"benchmarking {profile.name}")
    done: list[Measurement] = []
    with Store(req.db) as store:
        cells = run_cells(
            jobs,
            label=lambda job: (
                f"{job[0] or req.artifact.name} on {job[1].id}"
                + (f" ({job[1].threads} threads)" if job[1] in req.swept else "")
                + (f" at batch {job[2]}" if job[2] else "")
            ),
            prepare=lambda job: prepare_cell(req, *job),
            finish=lambda job, prepared: finish_cell(req, reach, job[1], prepared),
            hosted=lambda job: backend_of(job[1]).hosted,
            listener=listener,
        )
        for job, (m, manifest) in cells:
            if m is None:  # --batch where the format cannot run it: said in one line, nothing stored
                listener.warn(
                    f"{job[0] or req.artifact.name} on {job[1].id}: no throughput at batch {job[2]}: {manifest}"
                )
                continue
            m.label = req.label
            store.add(m, manifest)
            done.append(m)
            listener.finished(m)
    return done


def run_cells(
    cells: Iterable,
    label: Callable,
    prepare: Callable,
    finish: Callable,
    hosted: Callable,
    listener: Listener,
    parallel: int = HOSTED_PARALLEL,
) -> Iterator[tuple]:
    """Yield ``(cell, finish(cell, prepare(cell)))`` for every cell, as each completes.

    ``prepare`` (an export: CPU-heavy, writes files) always runs here, one cell at a time. ``finish`` runs here
    for cells on local devices (one device, one benchmark at a time) and in up to ``parallel`` threads for
    cells on a hosted service, whose jobs wait on a remote queue, not on this machine. The caller stores what
    is yielded (one writer). An interrupt cancels the hosted jobs' waits (:data:`cancelled`) and re-raises."""
    pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="hosted")
    pending: dict[Future, object] = {}

    def collect(block: bool) -> Iterator[tuple]:
        finished, _ = wait(pending, timeout=None if block else 0, return_when=FIRST_COMPLETED)
        for f in finished:
            yield pending.pop(f), f.result()

    cancelled.clear()
    try:
        for cell in cells:
            listener.started(label(cell))
            prepared = prepare(cell)
            if hosted(cell):
                while len(pending) >= parallel:
                    yield from collect(block=True)
                pending[pool.submit(finish, cell, prepared)] = cell
            else:
                yield cell, finish(cell, prepared)
            if pending:
                yield from collect(block=False)
        while pending:
            yield from collect(block=True)
    except BaseException:
        cancelled.set()  # hosted waits return at once; their jobs stay recorded for the next run to collect
        for f in pending:
            f.cancel()
        raise
    finally:
        pool.shutdown(wait=not cancelled.is_set(), cancel_futures=True)


def measure_one(
    req: BenchRequest, reach: Reach, model: str | None, target: Target
) -> tuple[Measurement, Manifest | None]:
    """One cell: its Measurement (re-measured while noisy, under ``strict``), and the manifest of the artifact it
    ran (stored beside it)."""
    return finish_cell(req, reach, target, prepare_cell(req, model, target))


@dataclass
class NoBatch:
    """A --batch cell whose format cannot run that batch: why, said once, and no row stored."""

    why: str


def prepare_cell(
    req: BenchRequest, model: str | None, target: Target, batch: int | None = None
) -> Artifact | Measurement | NoBatch:
    """The artifact a cell runs (exported when missing), or the failed Measurement saying why there is none; for a
    throughput cell (``batch``), the artifact at that batch as its format makes it, or why it cannot."""
    try:
        artifact = artifact_for(req, model, target)
    except DeploykitError as e:
        failed = Measurement.for_target(target, model, 0, status="failed")
        failed.error = f"export failed: {e}"
        return failed
    if batch is None:
        return artifact
    if artifact.path is None or artifact.manifest is None:
        return NoBatch(f"{target.format} runs the model itself, at batch 1 only here")
    try:
        b = formats.get(target.format).batched(artifact.path, artifact.manifest, batch)
    except DeploykitError as e:
        return NoBatch(str(e))
    return replace(artifact, path=b.path, manifest=b.manifest, input_shapes=b.input_shapes, batch=(batch, b.how))


def finish_cell(
    req: BenchRequest, reach: Reach, target: Target, artifact: Artifact | Measurement | NoBatch
) -> tuple[Measurement | None, Manifest | str | None]:
    if isinstance(artifact, Measurement):  # the export failed: that is the row
        if target in req.swept:
            artifact.env["threads_requested"] = target.threads
        return artifact, None
    if isinstance(artifact, NoBatch):
        return None, artifact.why
    device = device_for(reach, target)  # the first matching one of the target's reach, or the --serial one
    m = measure(backend_of(target), artifact, target, req.method, device)
    for _ in range(req.strict):
        if m.quality != "noisy":
            break
        m = measure(backend_of(target), artifact, target, req.method, device)
    if req.strict and m.quality == "noisy":
        m.status, m.error = "failed", f"noisy after {req.strict + 1} tries: {'; '.join(m.details['quality_reasons'])}"
    if target in req.swept:  # a row of --threads: its count is part of what tells it apart
        m.env["threads_requested"] = target.threads
    if artifact.input_shapes:  # a file of the user's: its inputs, as fed, say what was measured
        m.env["input_shapes"] = artifact.input_shapes
        m.warnings += req.shape_notes
    if artifact.batch:  # a throughput row: its batch, how it was made, and images per second
        n, how = artifact.batch
        m.env.update(batch=n, batch_how=how)
        if m.status == "ok" and m.median_ms:
            m.details["throughput_ips"] = n * 1000 / m.median_ms
    manifest = artifact.manifest
    if manifest is not None and manifest.status == "failed-fidelity":
        m.warnings.append(f"{manifest.file} failed its fidelity check: its latency is of a file that computes wrongly")
    return m, manifest


def artifact_for(req: BenchRequest, model: str | None, target: Target) -> Artifact:
    """The file a target runs: the user's (with its manifest, or one read from the file), or the zoo model's
    export in the target's format and precision (from the export cache when it is there)."""
    if req.user_file is not None:
        return req.user_file
    from .zoo import get_spec

    spec = get_spec(model)
    res = spec.resolution if req.resolution is None else req.resolution
    if formats.get(target.format).suffix is None:  # the backend runs the model itself
        return Artifact(spec.name, res)
    from .exporters.pipeline import ExportRequest, export

    r = export(
        ExportRequest(
            spec.name, target.format, target.export_precision, out=req.out, resolution=res, weights=req.weights,
            use_cache=req.use_cache,
        )
    )  # fmt: skip
    return Artifact(spec.name, res, r.path, r.manifest, reused_from=r.reused_from)
