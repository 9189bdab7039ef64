"""``deploykit sweep``: the whole matrix — models × devices' targets — exported, verified, then measured where
the device is attached and estimated where it is not, stored, and reported.

A sweep is a list of independent :class:`Job` values (plain data, ``to_dict``/``from_dict``), so another
executor can run them anywhere; :func:`run_job` runs one against a results database. The sweep is resumable:
a job whose result (ok or unsupported) is already in the database is skipped, failed ones are retried.
This module is the serial executor; :mod:`deploykit.farm` runs the same jobs on a Ray cluster, through
:func:`measure_job` (no store: the farm's driver alone writes it) and with the same job keys.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .devices import backend_of, get_profile, reachability
from .errors import DeploykitError
from .events import Listener
from .exporters import base as formats_registry
from .measurement import STATUSES, Method
from .store import Store


@dataclass(frozen=True)
class Job:
    model: str
    device: str
    target: str  # target id: device/backend-or-name/precision
    mode: str  # "measure" (device attached) or "estimate"

    @property
    def provenance(self) -> str:
        return "measured" if self.mode == "measure" else "estimated"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Job:
        return cls(**d)


@dataclass
class SweepSummary:
    """What a sweep run did, counted the same way by every executor (:func:`summary`): its jobs, those already
    done, those run now with a count per status (and ``noisy``), every failed cell of the sweep with its reason,
    and how the measured cells got their files (the serial executor's)."""

    jobs: int
    skipped: int
    ran: int
    counts: dict[str, int]
    failed_cells: list[dict]
    exports: dict[str, int] | None = None
    report: str | None = None  # the HTML report written at the end, if one was asked for

    def count(self, status: str) -> int:
        return self.counts.get(status, 0)

    def to_dict(self) -> dict:
        """The ``--json`` shape: the counts flat beside the totals, as it always was."""
        out = {"jobs": self.jobs, "skipped": self.skipped, "ran": self.ran, **self.counts}
        out["failed_cells"] = self.failed_cells
        if self.exports is not None:
            out["exports"] = self.exports
        if self.report is not None:
            out["report"] = self.report
        return out


@dataclass
class SweepOptions:
    db: Path = Path("deploykit-results.db")
    out: Path = Path("artifacts")
    profiles: Path | None = None
    method: Method = field(default_factory=Method)  # the one benchmark method, bench's defaults
    retry_failed: bool = False  # re-run cells whose latest result failed
    strict: int = 0  # re-measure noisy cells up to this many times, then fail them
    weights: str | None = None  # "timm" (every model's, or fail), "cached" (where the cache has it), a file
    use_cache: bool = True  # the artifact cache (exporters/cache.py) for the exports of measured cells
    label: str | None = None  # the run's label on every row it stores; cells count as finished per label


def plan_sweep(
    models: list[str], devices: list[str], formats: list[str] | None = None, profiles=None, reach=reachability
) -> list[Job]:
    """The jobs; ``reach(profile)`` says which targets' devices answer (here, or for the farm: in the cluster)."""
    from . import estimator as E
    from .zoo import get_spec

    if not models or not devices:
        raise DeploykitError("a sweep needs --models and --devices")
    names = [get_spec(m).name for m in models]  # unknown names fail before any work
    for f in formats or []:
        formats_registry.get(f)  # unknown formats fail now
    jobs = []
    for device in devices:
        profile = get_profile(device, profiles)
        found = reach(profile)
        # Measured where a device of the target's reach answers; estimated where no device of its reach does
        # (an S23 not on this desk but on AI Hub: its AI Hub targets measured, its adb targets estimated).
        # A target whose file deploykit cannot export (a format at a precision its plugin does not write) is
        # estimated even where its device answers.
        reached = {t.reach for t in profile.targets if t.id not in found.unavailable}
        measured = [t for t in profile.targets if t.available and t.id not in found.unavailable and _exportable(t)]
        try:
            estimated = [t for t in E.select_targets(profile) if t.reach not in reached or not _exportable(t)]
        except DeploykitError:
            estimated = []
        for mode, targets in (("measure", measured), ("estimate", estimated)):
            for name in names:
                for t in targets:
                    if not formats or t.format in formats:
                        jobs.append(Job(name, profile.name, t.id, mode))
    if not jobs:
        raise DeploykitError("the sweep is empty: no target of those devices matches those formats")
    return jobs


def _exportable(t) -> bool:
    """Whether deploykit can write the file a target runs (its format at its artifact precision)."""
    return t.export_precision in formats_registry.get(t.format).precisions


def run_job(job: Job, opts: SweepOptions):
    """Run one job and store its Measurement; returns it."""
    m, manifest = finish_job(job, prepare_job(job, opts))
    m.label = opts.label
    with Store(opts.db) as store:
        store.add(m, manifest)
    return m


def prepare_job(job: Job, opts: SweepOptions) -> tuple:
    """What a job needs before it runs: its target and, to measure, its artifact (exported now when missing)."""
    from .bench import prepare_cell

    profile = get_profile(job.device, opts.profiles)
    target = target_of(job, opts.profiles)
    if job.mode == "estimate":
        return target, None, None, None
    req = bench_request(job, opts)
    return target, req, reachability(profile), prepare_cell(req, job.model, target)


def target_of(job: Job, profiles=None):
    return next(t for t in get_profile(job.device, profiles).targets if t.id == job.target)


def bench_request(job: Job, opts: SweepOptions):
    """The bench request a measured job runs under (the farm's export and bench tasks use the same one)."""
    from .bench import BenchRequest

    return BenchRequest(
        device=job.device,
        models=[job.model],
        method=opts.method,
        db=opts.db,
        out=opts.out,
        profiles=opts.profiles,
        strict=opts.strict,
        weights=weights_for(job.model, opts.weights),
        use_cache=opts.use_cache,
    )


def measure_job(job: Job, opts: SweepOptions, serial: str | None = None, artifact=None):
    """One job's ``(Measurement, manifest)``, not stored (the farm's bench task): ``serial`` is which attached
    device; ``artifact`` the export already made for it (the farm's export task) instead of preparing it here."""
    from .bench import prepare_cell

    target = target_of(job, opts.profiles)
    if job.mode == "estimate":
        return finish_job(job, (target, None, None, None))
    req = bench_request(job, opts)
    reach = reachability(get_profile(job.device, opts.profiles))
    if serial is not None:
        reach.devices = [d for d in reach.devices if d.id == serial]
    return finish_job(job, (target, req, reach, artifact or prepare_cell(req, job.model, target)))


def finish_job(job: Job, prepared: tuple):
    """Measure or estimate a prepared job: ``(Measurement, manifest or None)``."""
    from .bench import finish_cell

    target, req, reach, artifact = prepared
    if job.mode == "estimate":
        from . import estimator as E

        name, res, layers = _zoo_layers(job.model)
        return E.to_measurement(name, res, target, E.estimate_layers(layers, E.roofline_for(target)), layers), None
    return finish_cell(req, reach, target, artifact)


def is_hosted(job: Job, opts: SweepOptions) -> bool:
    """A job on a hosted service's device (AI Hub): it may run beside others."""
    if job.mode != "measure":
        return False
    return backend_of(target_of(job, opts.profiles)).hosted


@functools.lru_cache(maxsize=64)
def _zoo_layers(model: str):
    """A model's estimator layers, once per process: a sweep estimates each model on a dozen targets."""
    from . import estimator as E

    return E.model_layers(model)


def weights_for(model: str, choice: str | None) -> str | None:
    """The weights a sweep exports a model with: ``cached`` takes the timm checkpoint when the Hugging Face cache
    holds it (never downloading), else the seeded random weights."""
    if choice != "cached":
        return choice
    from .weights import cached_timm_weights
    from .zoo import get_spec

    return "timm" if cached_timm_weights(get_spec(model)) is not None else None


def check_weights(models: list[str], choice: str | None) -> dict[str, str]:
    """Before any work: the weights ``choice`` names exist for every measured model (a cold cache for 'timm' fails
    now, in one line, not after an hour of exports), and per model, in words, which weights the sweep uses."""
    if choice == "timm":
        from .weights import resolve_weights
        from .zoo import get_spec

        for name in dict.fromkeys(models):
            resolve_weights("timm", get_spec(name))
    elif choice not in (None, "cached") and not Path(choice).is_file():
        raise DeploykitError(f"--weights {choice!r}: give timm, cached, or a checkpoint file")
    return weights_plan(models, choice)


def weights_plan(models: list[str], choice: str | None) -> dict[str, str]:
    """Per model, in words: which weights the sweep uses (said before it starts)."""
    out = {}
    for m in dict.fromkeys(models):
        w = weights_for(m, choice)
        out[m] = "seeded random weights" if w is None else ("timm checkpoint" if w == "timm" else w)
    return out


def finished(jobs: list[Job], db: Path, retry_failed: bool = False, label: str | None = None) -> set[Job]:
    """Jobs with a result in the store: ok or unsupported, and failed ones too unless ``retry_failed`` (a failure
    is a result: re-running it every time would repeat a broken export or a crashing delegate for nothing).
    ``device-unavailable`` (the farm's device left the cluster) is never final: the next run tries again.
    A labelled sweep counts only its own label's rows: a new commit's run measures every cell again."""
    if not Path(db).exists():
        return set()
    final = ("ok", "unsupported") if retry_failed else ("ok", "unsupported", "failed")
    with Store(db) as store:
        latest = {(m.model, m.target, m.provenance): m.status for m in store.query(label=label)}
    return {j for j in jobs if latest.get((j.model, j.target, j.provenance)) in final}


def failed_cells(jobs: list[Job], db: Path) -> list[dict]:
    """The sweep's cells whose latest row failed, each with its reason."""
    if not Path(db).exists():
        return []
    with Store(db) as store:
        latest = {(m.model, m.target, m.provenance): m for m in store.query()}
    rows = [latest.get((j.model, j.target, j.provenance)) for j in jobs]
    return [
        {"model": m.model, "target": m.target, "error": m.error or "failed"}
        for m in rows
        if m is not None and m.status == "failed"
    ]


def store_published(devices: list[str], db: Path, profiles=None) -> int:
    """The corpus's published latencies for these devices' targets (deploykit/reference/
    published_latencies.csv), as ``published`` rows (once), each with its citation and method."""
    from . import corpus
    from .measurement import Measurement

    added = 0
    with Store(db) as store:
        have = {(m.model, m.resolution, m.target) for m in store.query(provenance="published")}
        for device in devices:
            for t in get_profile(device, profiles).targets:
                for r in corpus.rows_for(t, "fit") + corpus.rows_for(t, "heldout"):
                    if (r.model, r.resolution, t.id) in have:
                        continue
                    have.add((r.model, r.resolution, t.id))
                    store.add(
                        Measurement.for_target(
                            t,
                            r.model,
                            r.resolution,
                            provenance="published",
                            median_ms=r.latency_ms,
                            env={"source": r.ref, "method": r.method, "corpus_source": r.source},
                        )
                    )
                    added += 1
    return added


def run_sweep(jobs: list[Job], opts: SweepOptions, listener: Listener | None = None) -> SweepSummary:
    """Run what is not finished; the summary counts this run's cells and names every failed cell of the sweep
    (this run's, and earlier ones not retried). Local jobs run one at a time; jobs on a hosted service run
    several at once (:func:`deploykit.bench.run_cells`); one writer stores every row as it comes back."""
    from .bench import run_cells

    listener = listener or Listener()
    skip = finished(jobs, opts.db, opts.retry_failed, opts.label)
    todo = [j for j in jobs if j not in skip]
    listener.planned(len(todo), skipped=len(skip), title="sweep")
    counts = dict.fromkeys(STATUSES, 0)
    exports = dict.fromkeys(("exported", "reused", "reused_from_cache"), 0)

    def prepare(job: Job) -> tuple:
        prepared = prepare_job(job, opts)
        _count_export(exports, prepared[3])
        return prepared

    cells = run_cells(
        todo,
        label=lambda job: f"{job.mode} {job.model} on {job.target}",
        prepare=prepare,
        finish=finish_job,
        hosted=lambda job: is_hosted(job, opts),
        listener=listener,
    )
    with Store(opts.db) as store:
        for _, (m, manifest) in cells:
            m.label = opts.label
            store.add(m, manifest)
            counts[m.status] += 1
            if m.quality == "noisy":
                counts["noisy"] = counts.get("noisy", 0) + 1
            listener.finished(m)
    done = summary(jobs, opts, skip, todo, counts)
    done.exports = exports
    return done


def _count_export(exports: dict, artifact) -> None:
    """How a measured cell got its file: exported (converted and verified) now, or reused, said in the summary."""
    from .backends.base import Artifact

    if not isinstance(artifact, Artifact) or artifact.path is None:
        return  # an estimate, a failed export (its row says why), or a backend that runs the model itself
    key = {"out": "reused", "cache": "reused_from_cache"}.get(artifact.reused_from, "exported")
    exports[key] += 1


def summary(jobs: list[Job], opts: SweepOptions, skip, todo, counts: dict) -> SweepSummary:
    return SweepSummary(len(jobs), len(skip), len(todo), counts, failed_cells(jobs, opts.db))
