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
from ..artifact import path_size
from ..errors import DeploykitError
from ..machine import host_info, process_memory
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


def run_session(open_session, method: Method, memory: bool = False) -> tuple[object, dict]:
    """Open a session and time it: ``(session, {"samples", "load_ms", "first_ms", "memory"})``.

    ``load_ms`` is ``open_session()`` (what it covers is the backend's ``load_covers``), ``first_ms`` the first
    invocation after it, alone; then :func:`time_invocations` (its warm-up, then the timed repetitions). With
    ``memory``, this process's high-water mark is read after the load and after the timed runs (and its RSS and
    thread count at the end): two reads of /proc outside the timed loop, nothing while it runs."""
    t0 = time.perf_counter_ns()
    session = open_session()
    load_ms = (time.perf_counter_ns() - t0) / 1e6
    at_load = process_memory() if memory else None
    t0 = time.perf_counter_ns()
    session.run()
    first_ms = (time.perf_counter_ns() - t0) / 1e6
    reps = time_invocations(session.run, method)
    at_end = process_memory() if memory else None
    return session, {"samples": reps, "load_ms": load_ms, "first_ms": first_ms, "memory": _readings(at_load, at_end)}


def _readings(at_load: dict | None, at_end: dict | None) -> dict | None:
    if at_load is None or at_end is None:
        return None
    return {
        "load_hwm_bytes": at_load.get("hwm"),
        "peak_hwm_bytes": at_end.get("hwm"),
        "end_rss_bytes": at_end.get("rss"),
        "process_threads": at_end.get("threads"),
        "source": at_end["source"],
    }


# The baseline of each runtime: a child that imports it and loads no model, run once per plugin per process
_BASELINES: dict[str, dict] = {}


def baseline_memory(backend: Backend, target: Target, timeout: float = 300) -> dict:
    """The memory of a benchmark child that imported ``backend``'s runtime and loaded no model (cached per plugin):
    what a measured row's memory is the delta over. ``{"error": why}`` when that child failed."""
    if backend.name not in _BASELINES:
        try:
            _BASELINES[backend.name] = run_child(
                {"baseline": True, "plugin": backend.name, "target": asdict(target)}, timeout
            )
        except RuntimeError as e:
            _BASELINES[backend.name] = {"error": str(e)}
    return _BASELINES[backend.name]


def memory_env(readings: dict | None, baseline: dict) -> dict | None:
    """A measured row's ``env["memory"]``: the readings of the benchmark child, and their deltas over the
    runtime's empty child. ``bytes`` (the headline, what tables show) is the peak delta."""
    if readings is None:
        return None
    base = baseline.get("hwm")
    out = {
        "what": "peak RSS of the benchmark process (VmHWM) over a process that imported the runtime and loaded no model",
        "bytes": readings["peak_hwm_bytes"] - base if base and readings.get("peak_hwm_bytes") else None,
        "load_bytes": readings["load_hwm_bytes"] - base if base and readings.get("load_hwm_bytes") else None,
        **readings,
        "baseline_hwm_bytes": base,
    }
    if base is None:
        out["baseline_error"] = baseline.get("error", "no baseline reading")
    return out


def measure(
    backend: Backend,
    artifact: Artifact,
    target: Target,
    method: Method,
    device: FoundDevice | None = None,
    memory: bool = True,
) -> Measurement:
    """Run one artifact on one target; never raises for a failure of the run itself (it becomes the row).

    ``memory``: read the benchmark child's memory (isolated backends), and its runtime's baseline once; off, the
    run is exactly as it was before memory was read (``scripts/bench_memory_overhead.py`` compares the two)."""
    m = Measurement.for_target(
        target,
        artifact.model,
        artifact.resolution,
        artifact=str(artifact.path) if artifact.path else None,
        artifact_sha256=artifact.manifest.sha256 if artifact.manifest else None,
        env={"host": socket.gethostname(), "method": method.to_dict(), "plugin": backend.name},
    )
    if artifact.path is not None and artifact.path.exists():
        m.env["artifact_bytes"] = path_size(artifact.path)
    if not backend.remote:  # it runs on this machine: store which one, so reports name it wherever they render
        m.env = {**host_info(), **m.env}
    before, t0 = quality.snapshot(), time.perf_counter()
    try:
        if backend.remote:
            stats, env, delegate = backend.measure(artifact, target, method, device)
            samples: list[float] = []
        elif backend.isolate:
            stats, samples, env, delegate = _in_child(backend, artifact, target, method, memory)
        else:  # in this process: its memory is everything deploykit holds, so none is read
            backend.import_runtime(target)
            session, run = run_session(lambda: backend.open(artifact, target), method)
            stats, samples, env, delegate = _stats(run), _flat(run["samples"]), session.env, session.delegate
    except StopRun:
        raise  # the run's failure (a refused token, an unreachable service), not this cell's: nothing is stored
    except (DeploykitError, RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        m.status, m.error = "failed", str(e)
        return m
    m.set_stats(stats)
    m.samples_ms = samples
    m.env.update(env)
    if not backend.remote and backend.load_covers:
        m.env.setdefault("load_covers", backend.load_covers)
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
    job = {**child_job(backend, artifact, target, method), "profile": True}
    return OpProfile.from_dict(run_child(job, method.timeout_s)["profile"])


def _flat(reps: list[list[float]]) -> list[float]:
    return [x for r in reps for x in r]


def _stats(run: dict) -> LatencyStats:
    stats = LatencyStats.from_samples(run["samples"])
    stats.init_ms, stats.first_ms = run["load_ms"], run["first_ms"]
    return stats


def child_job(backend: Backend, artifact: Artifact, target: Target, method: Method, memory: bool = False) -> dict:
    """The JSON job a benchmark child process reads (``worker.py``; ``_serve.py`` for interleaved A/B rounds)."""
    return {
        "plugin": backend.name,
        "target": asdict(target),
        "model": artifact.model,
        "resolution": artifact.resolution,
        "path": str(artifact.path) if artifact.path else None,
        "manifest": artifact.manifest.to_dict() if artifact.manifest else None,
        "input_shapes": artifact.input_shapes,
        "method": method.to_dict(),
        "memory": memory,
    }


def _in_child(backend: Backend, artifact: Artifact, target: Target, method: Method, memory: bool = True):
    baseline = baseline_memory(backend, target) if memory else {}
    result = run_child(child_job(backend, artifact, target, method, memory), method.timeout_s)
    env = result["env"]
    mem = memory_env(result.get("memory"), baseline)
    if mem is not None:
        env["memory"] = mem
    return _stats(result), _flat(result["samples"]), env, result["delegate"]


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
