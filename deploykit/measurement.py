"""Measurement: latency samples and statistics of one artifact on one target, with provenance.

Method (MobileNetV4 paper, Appendix B): warm up, then R repetitions (default 5) of N invocations (default 1000,
or as many as fit a time budget); the reported figure is the **median of the repetition means**; p50, p90, min
and stdev are over all samples, which are kept raw.

Provenance is one of ``measured`` (with device serial, runtime versions, threads, affinity), ``estimated``
(estimator version and profile) or ``published`` (a citation). Reports mark them differently and never mix them.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field

PROVENANCES = ("measured", "estimated", "published")
STATUSES = ("ok", "failed", "unsupported")


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
    median_ms: float | None = None  # median of repetition means
    stats: dict = field(default_factory=dict)  # p50, p90, min, max, stdev, mean, n, repetitions, rep_means
    samples_ms: list[float] = field(default_factory=list)
    env: dict = field(default_factory=dict)  # runtime versions, CPU, threads, affinity, governor, serial, SoC
    delegate: dict = field(default_factory=dict)  # ops per delegate, fallbacks
    error: str | None = None
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

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

    def to_dict(self, samples: bool = True) -> dict:
        d = asdict(self)
        if not samples:
            d.pop("samples_ms")
        return d


def time_invocations(
    invoke, warmup: int, repetitions: int, runs: int, budget_s: float | None = None
) -> list[list[float]]:
    """The method's loop: ``warmup`` calls, then ``repetitions`` × ``runs`` calls each timed alone (ms).

    ``budget_s`` caps the whole timed part: each repetition stops early (after at least 10 runs) once its share
    of the budget is spent, so slow targets still get R repetitions."""
    for _ in range(warmup):
        invoke()
    reps = []
    for _ in range(repetitions):
        deadline = time.perf_counter() + budget_s / repetitions if budget_s else None
        samples = []
        for _ in range(runs):
            t0 = time.perf_counter_ns()
            invoke()
            samples.append((time.perf_counter_ns() - t0) / 1e6)
            if deadline and len(samples) >= 10 and time.perf_counter() > deadline:
                break
        reps.append(samples)
    return reps


def summarize(repetitions: list[list[float]]) -> dict:
    """Statistics of R repetitions of per-invocation times (ms). The headline is the median of rep means."""
    reps = [r for r in repetitions if r]
    if not reps:
        raise ValueError("no samples")
    flat = sorted(x for r in reps for x in r)
    means = [statistics.fmean(r) for r in reps]
    return {
        "median_of_means": statistics.median(means),
        "rep_means": means,
        "repetitions": len(reps),
        "n": len(flat),
        "mean": statistics.fmean(flat),
        "p50": _percentile(flat, 50),
        "p90": _percentile(flat, 90),
        "min": flat[0],
        "max": flat[-1],
        "stdev": statistics.stdev(flat) if len(flat) > 1 else 0.0,
    }


def _percentile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), on an already sorted list."""
    if len(sorted_values) == 1:
        return sorted_values[0]
    pos = (len(sorted_values) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)
