"""Measurement: latency statistics of one artifact on one target, with provenance. Ground floor.

Method (MobileNetV4 paper, Appendix B): warm up, then R repetitions (default 5) of N invocations (default 1000,
or as many as fit a time budget); the reported figure is the **median of the repetition means**; p50, p90, min
and stdev are over all samples, which are kept raw.

Every backend hands back the same :class:`LatencyStats`: in-process and child-process backends from their
per-invocation samples (:meth:`LatencyStats.from_samples`), remote tools such as ``benchmark_model`` from
their own per-repetition summaries (:meth:`LatencyStats.from_repetitions`; no per-invocation percentiles).

Provenance is one of ``measured`` (with device serial, runtime versions, threads, affinity), ``estimated``
(estimator version and profile) or ``published`` (a citation). Reports mark them differently and never mix them.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum


class Provenance(StrEnum):
    """Where a row's latency comes from; the stored strings are the values."""

    MEASURED = "measured"
    ESTIMATED = "estimated"
    PUBLISHED = "published"


class Status(StrEnum):
    """How a row's run ended."""

    OK = "ok"
    FAILED = "failed"
    UNSUPPORTED = "unsupported"
    # a farm bench job whose device left the cluster (deploykit.farm); not final, a re-run retries it
    DEVICE_UNAVAILABLE = "device-unavailable"


class Quality(StrEnum):
    """Whether a measured row's repetitions agreed (:mod:`deploykit.quality`)."""

    CLEAN = "clean"
    NOISY = "noisy"


# p99 is given where a row has at least this many per-invocation samples
P99_MIN_SAMPLES = 100

# What Measurement.cost() adds to what rows always had: a row with none of them has no "cost" in its JSON
NEW_COST_KEYS = ("load_ms", "first_ms", "p99_ms", "memory_bytes", "size_bytes", "batch", "throughput_ips")

# The values as plain strings, in the enums' order: what callers list in messages and count by
PROVENANCES = tuple(x.value for x in Provenance)
STATUSES = tuple(x.value for x in Status)
QUALITIES = tuple(x.value for x in Quality)


@dataclass
class Method:
    """The one benchmark method, for bench, sweep and every backend: warm-up, then ``repetitions`` × ``runs`` invocations; ``budget_s`` caps each target's timed part."""

    warmup: int = 50
    repetitions: int = 5
    runs: int = 1000
    budget_s: float | None = None
    timeout_s: float = 900

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class LatencyStats:
    """Milliseconds. ``median_ms`` (the headline) is the median of the repetition means."""

    median_ms: float
    rep_means: list[float]
    n: int  # invocations timed, all repetitions together
    min: float
    max: float
    mean: float | None = None
    p50: float | None = None  # None where the tool reports no per-invocation samples
    p90: float | None = None
    stdev: float | None = None
    p99: float | None = None  # only where there are at least P99_MIN_SAMPLES per-invocation samples
    rep_stdev: list[float] | None = None  # per repetition, where a tool reports only that
    init_ms: float | None = None
    first_ms: float | None = None
    note: str | None = None

    @property
    def repetitions(self) -> int:
        return len(self.rep_means)

    @classmethod
    def from_samples(cls, repetitions: list[list[float]]) -> LatencyStats:
        """Statistics of R repetitions of per-invocation times (ms)."""
        reps = [r for r in repetitions if r]
        if not reps:
            raise ValueError("no samples")
        flat = [x for r in reps for x in r]
        means = [statistics.fmean(r) for r in reps]
        if len(flat) > 1:
            # "inclusive" is linear interpolation between closest ranks, numpy's default percentile.
            cuts = statistics.quantiles(flat, n=100, method="inclusive")
            p50, p90 = cuts[49], cuts[89]
        else:
            p50 = p90 = flat[0]
        # the 99th percentile of fewer than 100 samples is the maximum or an interpolation next to it: not said
        p99 = cuts[98] if len(flat) >= P99_MIN_SAMPLES else None
        return cls(
            median_ms=statistics.median(means),
            rep_means=means,
            n=len(flat),
            min=min(flat),
            max=max(flat),
            mean=statistics.fmean(flat),
            p50=p50,
            p90=p90,
            stdev=statistics.stdev(flat) if len(flat) > 1 else 0.0,
            p99=p99,
        )

    @classmethod
    def from_repetitions(cls, reps: list[dict], note: str, **extra) -> LatencyStats:
        """From a tool's per-repetition summaries ``{"count", "min", "max", "avg", "std"}`` in ms."""
        means = [r["avg"] for r in reps]
        return cls(
            median_ms=statistics.median(means),
            rep_means=means,
            n=int(sum(r["count"] for r in reps)),
            min=min(r["min"] for r in reps),
            max=max(r["max"] for r in reps),
            rep_stdev=[r["std"] for r in reps],
            note=note,
            **extra,
        )

    def to_dict(self) -> dict:
        d = {**asdict(self), "repetitions": self.repetitions}
        if d["p99"] is None:  # added after release 5: rows without it print as they always did
            del d["p99"]
        return d

    @classmethod
    def from_dict(cls, d: dict | None) -> LatencyStats | None:
        """Also reads rows written before this type existed (``median_of_means`` and free-form keys)."""
        if not d:
            return None
        d = dict(d)
        if "median_ms" not in d and "median_of_means" in d:
            d["median_ms"] = d.pop("median_of_means")
        if "median_ms" not in d:
            return None
        d.setdefault("rep_means", [d["median_ms"]])
        d.setdefault("n", 0)
        d.setdefault("min", d["median_ms"])
        d.setdefault("max", d["median_ms"])
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class Measurement:
    model: str
    resolution: int
    format: str
    precision: str
    target: str  # device/backend/precision, e.g. host/litert-xnnpack/int8
    device: str
    backend: str
    provenance: str = "measured"
    status: str = "ok"
    artifact_sha256: str | None = None
    artifact: str | None = None
    median_ms: float | None = None  # median of repetition means (= stats.median_ms when measured)
    stats: LatencyStats | None = None
    samples_ms: list[float] = field(default_factory=list)
    env: dict = field(default_factory=dict)  # runtime versions, CPU, threads, affinity, host name, serial, SoC
    delegate: dict = field(default_factory=dict)  # ops per delegate, fallbacks
    details: dict = field(default_factory=dict)  # estimates: per-layer breakdown; measured: quality reasons
    error: str | None = None
    quality: str | None = None  # measured here: "clean" or "noisy" (deploykit.quality); None where not judged
    warnings: list[str] = field(default_factory=list)  # said with the row wherever it is shown
    label: str | None = None  # the run it belongs to (`bench --label`): what `deploykit compare` selects by
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    id: int | None = None  # the store's row id, once stored

    @classmethod
    def for_target(cls, target, model: str, resolution: int, **fields) -> Measurement:
        """A Measurement of ``model`` on a device-profile Target: format, precision and ids from the target."""
        return cls(
            model=model,
            resolution=resolution,
            format=target.format,
            precision=target.export_precision,
            target=target.id,
            device=target.device,
            backend=target.backend,
            **fields,
        )

    def __post_init__(self):
        if self.provenance not in PROVENANCES:
            raise ValueError(f"provenance must be one of {PROVENANCES}")
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}")
        if self.quality is not None and self.quality not in QUALITIES:
            raise ValueError(f"quality must be one of {QUALITIES}")

    def set_stats(self, stats: LatencyStats) -> Measurement:
        self.stats, self.median_ms = stats, stats.median_ms
        return self

    def cost(self) -> dict:
        """The whole cost of the deployment this row measured, flat, ``None`` where the row does not say: load
        (session creation, ``env["load_covers"]`` says what it includes for this runtime), first inference,
        warm median, p90, p99, memory (``env["memory"]["bytes"]``, what it is in ``["what"]``), the file's size,
        the threads used, and for a throughput row its batch and images per second. Everything is read from
        ``stats`` and ``env``/``details``: no column of the store holds it, so older rows answer ``None``."""
        s, mem = self.stats, self.env.get("memory") or {}
        threads = self.env.get("threads_used", self.env.get("threads"))
        if self.provenance == "estimated":  # estimator/memory.py: weights plus the planned arena, from the graph
            mem = {"bytes": (self.details.get("memory") or {}).get("total_bytes")}
        return {
            "load_ms": s.init_ms if s else None,
            "first_ms": s.first_ms if s else None,
            "median_ms": self.median_ms,
            "p90_ms": s.p90 if s else None,
            "p99_ms": s.p99 if s else None,
            "memory_bytes": mem.get("bytes"),
            "size_bytes": self.env.get("artifact_bytes", self.details.get("size_bytes")),
            "threads": threads if isinstance(threads, int) else None,
            "batch": self.env.get("batch"),
            "throughput_ips": self.details.get("throughput_ips"),
        }

    def to_dict(self, samples: bool = True) -> dict:
        d = asdict(self)
        d["stats"] = self.stats.to_dict() if self.stats else {}
        cost = self.cost()
        if any(cost[k] is not None for k in NEW_COST_KEYS):  # rows written before these existed print as they did
            d["cost"] = cost
        if not samples:
            d.pop("samples_ms")
        return d


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion k/n: honest at small n (4 images: 0/4 is 0-49%)."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)
