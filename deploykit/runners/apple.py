"""Apple: Core ML prediction loops per compute unit, on the Mac deploykit runs on (macOS only).

Compute units: ``coreml-cpu`` = CPU_ONLY, ``coreml-gpu`` = CPU_AND_GPU, ``coreml-ane`` = CPU_AND_NE,
``coreml-all`` = ALL. Where coremltools offers ``MLComputePlan`` (macOS 14.4+), the per-op preferred device
is recorded, so a Neural Engine number that silently ran on the CPU is reported as such. Never exercised on
real hardware in this project's CI (no Mac); on Linux it refuses with a clear message instead of faking.
"""

from __future__ import annotations

import platform
from collections import Counter

from ..devices import Target
from ..errors import DeploykitError
from ..measurement import Measurement, summarize, time_invocations

COMPUTE_UNITS = {"coreml-cpu": "CPU_ONLY", "coreml-gpu": "CPU_AND_GPU", "coreml-ane": "CPU_AND_NE", "coreml-all": "ALL"}


def run_coreml(target: Target, artifact: str, manifest, model: str, resolution: int, method) -> Measurement:
    if platform.system() != "Darwin":
        raise DeploykitError("Core ML benchmarks need macOS", hint="run `deploykit bench` on a Mac")
    import coremltools as ct
    import numpy as np

    units = getattr(ct.ComputeUnit, COMPUTE_UNITS[target.backend])
    mlmodel = ct.models.MLModel(artifact, compute_units=units)
    spec = manifest.inputs[0]
    x = {spec.name: np.random.default_rng(0).standard_normal(spec.shape).astype(spec.dtype)}
    reps = time_invocations(lambda: mlmodel.predict(x), method.warmup, method.repetitions, method.runs, method.budget_s)
    m = Measurement.for_target(
        target,
        model,
        resolution,
        artifact=artifact,
        artifact_sha256=manifest.sha256,
        env={
            "os": platform.mac_ver()[0],
            "machine": platform.machine(),
            "coremltools": ct.__version__,
            "compute_units": COMPUTE_UNITS[target.backend],
        },
    )
    m.stats = summarize(reps)
    m.median_ms = m.stats["median_of_means"]
    m.samples_ms = [s for r in reps for s in r]
    m.delegate = compute_plan(artifact, units)
    return m


def compute_plan(artifact: str, units) -> dict:
    """Ops per preferred compute device from MLComputePlan, where this coremltools/macOS offers it."""
    try:
        from coremltools.models.compute_plan import MLComputePlan
    except ImportError:
        return {"compute_plan": "unavailable in this coremltools"}
    try:
        plan = MLComputePlan.load_from_path(artifact, compute_units=units)
        program = plan.model_structure.program
        devices: Counter = Counter()
        for fn in program.functions.values():
            for op in fn.block.operations:
                usage = plan.get_compute_device_usage_for_mlprogram_operation(op)
                if usage is not None:
                    devices[type(usage.preferred_compute_device).__name__] += 1
        return {"ops_per_device": dict(devices)}
    except Exception as e:  # the plan API varies across macOS versions; a missing plan is not a failed benchmark
        return {"compute_plan": f"unavailable: {type(e).__name__}: {e}"}
