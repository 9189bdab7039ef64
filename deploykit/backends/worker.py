"""The child-process side of isolated benchmarks: open one artifact with one backend plugin and time it.

Reads a JSON job on stdin (``{"plugin", "target", "model", "resolution", "path", "manifest", "method", "memory"}``,
written by :func:`deploykit.backends.harness.run_child`); prints ``{"samples": [[ms, ...], ...], "load_ms",
"first_ms", "memory", "env", "delegate"}``. A baseline job (``{"baseline": true, "plugin", "target"}``) imports
the plugin's runtime as a run would, loads no model, and prints this process's memory.
A job with ``"profile": true`` prints ``{"profile": OpProfile}`` of a run with the runtime's op profiler on.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from deploykit.artifact import Manifest
from deploykit.backends import base
from deploykit.backends.harness import run_session
from deploykit.errors import DeploykitError
from deploykit.machine import process_memory
from deploykit.measurement import Method
from deploykit.targets import Target

EXIT_REFUSED = 3  # the runtime refused the file; stdout holds {"error": one line}


def affinity_cpus(mask: str | None) -> list[int] | None:
    """A hex CPU mask as in ``taskset`` ("f0" = CPUs 4–7) → a CPU list; ``None`` leaves affinity alone."""
    if not mask:
        return None
    bits = int(mask, 16)
    return [i for i in range(bits.bit_length()) if bits >> i & 1]


def pinned_target(job: dict) -> Target:
    """The job's target, this process pinned to its CPUs (where it names an affinity)."""
    target = Target(**job["target"])
    cpus = affinity_cpus(target.affinity)
    if cpus:
        os.sched_setaffinity(0, cpus)
    return target


def artifact_of(job: dict) -> base.Artifact:
    return base.Artifact(
        job["model"],
        job["resolution"],
        Path(job["path"]) if job["path"] else None,
        Manifest.from_dict(job["manifest"]) if job["manifest"] else None,
        job.get("input_shapes"),
    )


def main() -> None:
    job = json.load(sys.stdin)
    target = pinned_target(job)
    if job.get("baseline"):
        base.get(job["plugin"]).import_runtime(target)
        print(json.dumps(process_memory()))
        return
    artifact = artifact_of(job)
    method = Method(**job["method"])
    try:
        plugin = base.get(job["plugin"])
        if job.get("profile"):  # a profiled run: warm-up, then the runs, then the profiler's per-op times
            session = plugin.open(artifact, target, profile=True)
            for _ in range(method.warmup + method.runs):
                session.run()
            print(json.dumps({"profile": session.op_profile(skip=method.warmup).to_dict()}))
            return
        plugin.import_runtime(target)  # before the clock starts: the load time is the session's, not an import
        session, run = run_session(lambda: plugin.open(artifact, target), method, job.get("memory", False))
    except DeploykitError as e:  # the runtime refused the file: one line for the row, not a traceback
        print(json.dumps({"error": str(e)}))
        sys.exit(EXIT_REFUSED)
    env = {**session.env, "affinity": sorted(os.sched_getaffinity(0))}
    env["threads_used"] = plugin.threads_used(session, target)
    print(json.dumps({**run, "env": env, "delegate": session.delegate}))


if __name__ == "__main__":
    main()
