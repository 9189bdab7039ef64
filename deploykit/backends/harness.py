"""The one harness: warm-up, repetitions, timing and summary for every backend, and the Measurement it makes.

Method (docs/architecture.md; MobileNetV4 paper, Appendix B): ``warmup`` invocations, then ``repetitions`` × ``runs``
invocations, each timed alone with ``perf_counter_ns``; the headline is the median of the repetition means.

How a backend's session runs depends on what it says of itself:
- ``isolate`` (LiteRT, ONNX Runtime, PyTorch on this host): in a child process
  (``python -m deploykit.backends.worker``) with a timeout, so a native crash or a hang becomes a failed
  Measurement carrying the child's stderr, and the sweep goes on;
- in-process (Core ML on a Mac, an Edge TPU through libedgetpu): the session's ``run()`` timed here;
- ``remote`` (``benchmark_model`` over adb): the backend times on the device and hands back LatencyStats.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from dataclasses import asdict
from typing import TYPE_CHECKING

from .. import quality
from ..errors import DeploykitError
from ..machine import host_info
from ..measurement import LatencyStats, Measurement, Method
from ..targets import FoundDevice, Target
from .base import Artifact, Backend, StopRun

if TYPE_CHECKING:
    from ..profiling.records import OpProfile


def time_invocations(invoke, method: Method) -> list[list[float]]:
    """``warmup`` calls, then ``repetitions`` × ``runs`` calls each timed alone (ms).

    ``budget_s`` caps the whole timed part: each repetition stops early (after at least 10 runs) once its share
    of the budget is spent, so slow targets still get R repetitions."""
    for _ in range(method.warmup):
        invoke()
    reps = []
    for _ in range(method.repetitions):
        deadline = time.perf_counter() + method.budget_s / method.repetitions if method.budget_s else None
        samples = []
        for _ in range(method.runs):
            t0 = time.perf_counter_ns()
            invoke()
            samples.append((time.perf_counter_ns() - t0) / 1e6)
            if deadline and len(samples) >= 10 and time.perf_counter() > deadline:
                break
        reps.append(samples)
    return reps


def measure(
    backend: Backend, artifact: Artifact, target: Target, method: Method, device: FoundDevice | None = None
) -> Measurement:
    """Run one artifact on one target; never raises for a failure of the run itself (it becomes the row)."""
    m = Measurement.for_target(
        target,
        artifact.model,
        artifact.resolution,
        artifact=str(artifact.path) if artifact.path else None,
        artifact_sha256=artifact.manifest.sha256 if artifact.manifest else None,
        env={"host": socket.gethostname(), "method": method.to_dict(), "plugin": backend.name},
    )
    if not backend.remote:  # it runs on this machine: store which one, so reports name it wherever they render
        m.env = {**host_info(), **m.env}
    before, t0 = quality.snapshot(), time.perf_counter()
    try:
        if backend.remote:
            stats, env, delegate = backend.measure(artifact, target, method, device)
            samples: list[float] = []
        elif backend.isolate:
            stats, samples, env, delegate = _in_child(backend, artifact, target, method)
        else:
            session = backend.open(artifact, target)
            reps = time_invocations(session.run, method)
            stats, samples, env, delegate = LatencyStats.from_samples(reps), _flat(reps), session.env, session.delegate
    except StopRun:
        raise  # the run's failure (a refused token, an unreachable service), not this cell's: nothing is stored
    except (DeploykitError, RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        m.status, m.error = "failed", str(e)
        return m
    m.set_stats(stats)
    m.samples_ms = samples
    m.env.update(env)
    m.delegate = delegate
    if backend.remote:  # this machine's load says nothing about the phone's; its thermal state does
        r = quality.Readings(time.perf_counter() - t0, 0, rep_spread=quality.rep_spread(stats.rep_means))
        r.thermal_before, r.thermal_after = env.get("thermal_before"), env.get("thermal_after")
    else:
        r = quality.readings(before, quality.snapshot(), time.perf_counter() - t0, stats.rep_means)
    m.quality, reasons = quality.judge(r)
    m.env["interference"] = r.to_dict()
    m.details["quality_reasons"] = reasons
    return m


def profile_ops(
    backend: Backend, artifact: Artifact, target: Target, method: Method, device: FoundDevice | None = None
) -> OpProfile:
    """A profiled run, separate from the timed ones (a profiler's own cost must not reach a stored latency):
    ``method.warmup`` invocations, then ``method.runs``, with the runtime's op profiler on. Isolated backends run
    it in the same child process as their timing, for the same reason; the others are asked themselves.
    Raises what the run raised (a runtime error, a lost device): the caller says it in one line."""
    from ..profiling.records import OpProfile

    if backend.remote or not backend.isolate:
        return backend.profile(artifact, target, method, device)
    job = {**_job(backend, artifact, target, method), "profile": True}
    return OpProfile.from_dict(run_child(job, method.timeout_s)["profile"])


def _flat(reps: list[list[float]]) -> list[float]:
    return [x for r in reps for x in r]


def _job(backend: Backend, artifact: Artifact, target: Target, method: Method) -> dict:
    return {
        "plugin": backend.name,
        "target": asdict(target),
        "model": artifact.model,
        "resolution": artifact.resolution,
        "path": str(artifact.path) if artifact.path else None,
        "manifest": artifact.manifest.to_dict() if artifact.manifest else None,
        "input_shapes": artifact.input_shapes,
        "method": method.to_dict(),
    }


def _in_child(backend: Backend, artifact: Artifact, target: Target, method: Method):
    result = run_child(_job(backend, artifact, target, method), method.timeout_s)
    reps = result["samples"]
    return LatencyStats.from_samples(reps), _flat(reps), result["env"], result["delegate"]


def run_child(job: dict, timeout: float) -> dict:
    """Run ``deploykit.backends.worker`` on a JSON job; its one JSON result line, or a RuntimeError saying why
    not (a signal, a timeout, a Python error: the child's stderr tail)."""
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "deploykit.backends.worker"],
            input=json.dumps(job, default=str),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"timed out after {timeout:.0f} s") from None
    said = next((json.loads(x) for x in proc.stdout.splitlines()[::-1] if x.startswith('{"error"')), None)
    if said is not None:  # the worker's own one-line account of why the runtime refused the file
        raise RuntimeError(said["error"])
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        signal = f" (signal {-proc.returncode})" if proc.returncode < 0 else ""
        raise RuntimeError(f"benchmark process exited with {proc.returncode}{signal}: {tail}")
    for line in reversed(proc.stdout.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError("benchmark process printed no result: " + proc.stderr.strip()[-500:])
