"""Core ML on the Mac deploykit runs on, one target per compute unit (macOS only).

Backend names: ``coreml-cpu`` = CPU_ONLY, ``coreml-gpu`` = CPU_AND_GPU, ``coreml-ane`` = CPU_AND_NE,
``coreml-all`` = ALL. The session is the Core ML format's own (the one ``eval`` and verification use), timed in
this process. Where coremltools offers ``MLComputePlan`` (macOS 14.4+) the per-op preferred device is recorded,
so a Neural Engine number that silently ran on the CPU is reported as such.

Discovery finds this Mac (``hw.model``, e.g. ``Mac14,2``), which the ``mac`` profile matches. iPhones are not
reachable from deploykit: their profiles say to measure with Xcode's Core ML performance report and import the
numbers (``deploykit results import``). Never exercised on real hardware in this project's CI (no Mac); the
macOS workflow in ``.github/workflows/macos.yml`` runs its tests on a Mac runner.
"""

from __future__ import annotations

import platform
import subprocess
from collections import Counter

from ..machine import host_info
from ..targets import FoundDevice, Profile, Target
from .base import Artifact, Backend, Runtime, register

COMPUTE_UNITS = {"coreml-cpu": "CPU_ONLY", "coreml-gpu": "CPU_AND_GPU", "coreml-ane": "CPU_AND_NE", "coreml-all": "ALL"}
XCODE_HINT = (
    "iPhones are measured with Xcode's Core ML performance report (Xcode > open the .mlpackage > Performance);"
    " import the numbers with `deploykit results import FILE`"
)


def mac_model() -> str:
    try:
        out = subprocess.run(["sysctl", "-n", "hw.model"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        out = ""
    return out or "Mac"


class CoreML(Backend):
    name = "coreml"
    reach = "apple"
    serves = {
        "coreml-cpu": Runtime("coreml", "cpu"),
        "coreml-gpu": Runtime("coreml", "gpu"),
        "coreml-ane": Runtime("coreml", "npu"),
        "coreml-all": Runtime("coreml", "cpu"),
    }
    isolate = False  # coremltools' predict loop, timed in this process
    # What Xcode's performance report and coremltools call the compute units (for `deploykit results import`).
    aliases = {
        **{unit: backend for backend, unit in COMPUTE_UNITS.items()},
        "CPU": "coreml-cpu",
        "GPU": "coreml-gpu",
        "Neural Engine": "coreml-ane",
        "ANE": "coreml-ane",
    }
    description = "Core ML on this Mac, per compute unit"

    def discover(self) -> list[FoundDevice]:
        if platform.system() != "Darwin":
            return []
        return [FoundDevice("apple", host_info()["hostname"], mac_model(), how="this Mac (hw.model)")]

    def how_to_reach(self, profile: Profile) -> str:
        if "iphone" in (profile.match or profile.name).lower():
            return XCODE_HINT
        return f"needs macOS with coremltools (this host is {platform.system()})"

    def open(self, artifact: Artifact, target: Target):
        from ..exporters.base import get

        units = COMPUTE_UNITS[target.backend]
        session = get(self.serves[target.backend].format).open_session(
            artifact.path, artifact.manifest, compute_units=units
        )
        session.feed_random(seed=0)
        session.delegate = compute_plan(str(artifact.path), units)
        return session


def compute_plan(artifact: str, units: str) -> dict:
    """Ops per preferred compute device from MLComputePlan, where this coremltools/macOS offers it."""
    try:
        import coremltools as ct
        from coremltools.models.compute_plan import MLComputePlan
    except ImportError:
        return {"compute_plan": "unavailable in this coremltools"}
    try:
        plan = MLComputePlan.load_from_path(artifact, compute_units=getattr(ct.ComputeUnit, units))
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


register(CoreML())
