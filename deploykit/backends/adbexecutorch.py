"""ExecuTorch programs on Android phones over adb, timed on the phone by the user's own ExecuTorch runner.

ExecuTorch publishes no prebuilt Android runner, so the user builds one (``xnn_executor_runner``: ExecuTorch's
``examples/portable/executor_runner/executor_runner.cpp`` linked with the XNNPACK backend, cross-compiled for
arm64-v8a with the Android NDK) and passes it with ``--runner PATH`` (or ``$DEPLOYKIT_EXECUTORCH_RUNNER``, or
``~/.cache/deploykit/executor_runner``). The .pte and the runner are pushed to /data/local/tmp, and each of the R
repetitions is one runner process:

    executor_runner --model_path=M.pte --num_executions=N --cpu_threads=T

The output is parsed in the format that source prints (pytorch/executorch, commit
018a3a524425b33dcf8be85894ee5a1e83bc138c, examples/portable/executor_runner/executor_runner.cpp), through
``ET_LOG``, whose POSIX platform layer (runtime/platform/default/posix.cpp) prefixes each line with
``I 00:00:00.123456 executorch:executor_runner.cpp:612] ``; an Android-PAL build logs the same messages to
logcat under the tag ``ExecuTorch`` instead, so when stdout/stderr carry no timing the runner's logcat lines are
read (``logcat -d -s ExecuTorch``, cleared before each run). The lines read:

- ``Model loaded in %f ms.`` (load time; newer runners only),
- ``Iteration %u of %u: %f ms`` (one per execution; newer runners only): per-invocation samples, so p50/p90,
- ``Model executed successfully %u time(s) in %f ms.`` (every runner): the total, the mean when no per-iteration
  lines exist.

The runner has no warm-up flag: each repetition (a new, cold process) runs ``warmup`` extra executions, whose
iteration lines are dropped (a runner that prints only the total cannot separate them, and says so in the row's
note).
No real phone output could be recorded on this project's machines: the stand-in (``tests/adb_standin.py``)
prints lines built from the format strings above, not a captured log.
"""

from __future__ import annotations

import os
import re
import statistics
from pathlib import Path

from ..errors import DeploykitError
from ..measurement import LatencyStats
from ..targets import FoundDevice, Profile
from .adb import _LOGCAT_PREFIX, find_adb_devices, open_phone
from .base import Artifact, Backend, BackendError, Runtime, register

# ET_LOG's POSIX prefix: level, time since start, "executorch:FILE:LINE] ".
_ET_PREFIX = re.compile(r"^[DIEF] \d+:\d\d:\d\d\.\d+ executorch:[\w.]+:\d+\] ")
_LOADED = re.compile(r"Model loaded in ([\d.]+) ms\.")
_ITERATION = re.compile(r"Iteration (\d+) of (\d+): ([\d.]+) ms")
_TOTAL = re.compile(r"Model executed successfully (\d+) time\(s\) in ([\d.]+) ms\.")
# An error line: ET_LOG(Error|Fatal, …) under the POSIX prefix, or logcat's E/F level under the Android one.
_ERROR = re.compile(r"^(?:[EF] \d+:\d\d:\d\d\.\d+ executorch:|\d\d-\d\d \S+\s+\d+\s+\d+ [EF] )")


def parse_runner_output(text: str) -> dict:
    """``{"load_ms", "iterations": [ms, …], "executions", "total_ms", "errors"}`` from a runner's output, plain
    (POSIX PAL) or logcat lines (Android PAL)."""
    out: dict = {"load_ms": None, "iterations": [], "executions": None, "total_ms": None, "errors": []}
    for raw in text.splitlines():
        line = _ET_PREFIX.sub("", _LOGCAT_PREFIX.sub("", raw)).strip()
        if m := _LOADED.search(line):
            out["load_ms"] = float(m.group(1))
        elif m := _ITERATION.search(line):
            out["iterations"].append(float(m.group(3)))
        elif m := _TOTAL.search(line):
            out["executions"], out["total_ms"] = int(m.group(1)), float(m.group(2))
        elif _ERROR.match(raw):
            out["errors"].append(line)
    return out


def runner_args(remote_runner: str, remote_model: str, executions: int, threads: int) -> list[str]:
    """The device-side command of one repetition, as words (``--cpu_threads`` only when a count is set)."""
    args = [remote_runner, f"--model_path={remote_model}", f"--num_executions={executions}"]
    if threads:
        args.append(f"--cpu_threads={threads}")
    return args


def runner_binary(explicit: str | None = None) -> Path:
    """The user's runner: ``--runner``, else ``$DEPLOYKIT_EXECUTORCH_RUNNER``, else the cache's. A missing one is a
    usage error (exit 2) said before any work."""
    if explicit:
        if not Path(explicit).is_file():
            raise DeploykitError(f"--runner {explicit}: file not found", hint="give your built executor_runner binary")
        return Path(explicit)
    for c in (os.environ.get("DEPLOYKIT_EXECUTORCH_RUNNER"), Path.home() / ".cache/deploykit/executor_runner"):
        if c and Path(c).is_file():
            return Path(c)
    raise DeploykitError(
        "executorch-xnnpack on a phone needs your ExecuTorch runner binary",
        hint="build xnn_executor_runner for Android arm64 (docs/executorch.md) and pass --runner PATH,"
        " or leave ExecuTorch out with --backend litert-xnnpack",
    )


class AdbExecutorch(Backend):
    name = "adbexecutorch"
    reach = "adb"
    serves = {"executorch-xnnpack": Runtime("executorch", "cpu")}
    remote = True
    description = "Android phones over adb, ExecuTorch programs timed by your own executor_runner (--runner)"

    runner: Path | None = None
    cooldown_s: float = 60.0

    def configure(self, options: dict) -> None:
        """``--runner`` as given (a path that does not exist is a usage error now), or the defaults."""
        try:
            self.runner = runner_binary(options.get("runner"))
        except DeploykitError:
            if options.get("runner"):
                raise
            self.runner = None

    def preflight(self, options: dict) -> None:
        self.runner = runner_binary(options.get("runner"))
        if options.get("cooldown_s") is not None:
            self.cooldown_s = float(options["cooldown_s"])

    def discover(self) -> list[FoundDevice]:
        """The attached phones, once a runner is known: without one a phone's ExecuTorch targets are listed as
        not runnable here, with the reason (``how_to_reach``), and a bench of the phone skips them."""
        if self.runner is None:
            try:
                self.runner = runner_binary()
            except DeploykitError:
                return []
        found = find_adb_devices()
        if found is None:
            return []
        return [FoundDevice("adb", d["serial"], d.get("model", ""), d["state"], how="adb devices -l") for d in found]

    def how_to_reach(self, profile: Profile) -> str:
        if find_adb_devices() is None:  # the first thing missing: without adb the runner is no use
            return "adb not on PATH (install Android platform-tools)"
        if self.runner is None:
            return "needs your ExecuTorch runner binary: pass --runner PATH (see docs/executorch.md)"
        return f"no phone in state 'device' with model {profile.match!r}"

    def op_profiler(self, target) -> str | None:
        return (
            "executor_runner prints no per-op times: an ETDump needs a runner built with event tracing"
            " (record one on the phone and pass it with --from)"
        )

    def measure(self, artifact: Artifact, target, method, device: FoundDevice | None):
        dev, env, before, waited = open_phone(device, target, method, self.cooldown_s, "executorch executor_runner")
        remote_model, remote_bin = dev.stage(artifact.path, self.runner or runner_binary(), "executor_runner")
        reps, totals, load_ms = [], [], None
        for r in range(method.repetitions):
            warm = method.warmup  # every repetition is a new process, cold again: warm-up in each
            words = runner_args(remote_bin, remote_model, method.runs + warm, target.threads)
            if target.affinity:
                words = ["taskset", target.affinity, *words]
            dev.shell(["logcat", "-c"])
            proc = dev.shell(words)
            parsed = parse_runner_output(proc.stdout + "\n" + proc.stderr)
            if parsed["total_ms"] is None:  # an Android-PAL build: its ET_LOG lines went to logcat
                parsed = parse_runner_output(dev.shell(["logcat", "-d", "-s", "ExecuTorch"]).stdout)
            if proc.returncode != 0 or parsed["total_ms"] is None:
                why = parsed["errors"][-1:] or (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:]
                why = (why or ["no output"])[0]
                raise BackendError(f"repetition {r + 1}: executor_runner failed on {device.id}: {why}")
            load_ms = load_ms if load_ms is not None else parsed["load_ms"]
            reps.append(parsed["iterations"][warm:])
            totals.append(parsed["total_ms"] / parsed["executions"])
        after = dev.thermal()
        env.update(thermal_before=before["status"], thermal_after=after["status"], cooldown_waited_s=round(waited, 1))
        env["thermal"] = {"before": before, "after": after}
        if all(reps):
            stats = LatencyStats.from_samples(reps)
            stats.init_ms = load_ms
        else:  # an older runner prints only the total: one mean per repetition, warm-up executions included
            stats = LatencyStats(
                median_ms=statistics.median(totals),
                rep_means=totals,
                n=method.runs * len(totals),
                min=min(totals),
                max=max(totals),
                init_ms=load_ms,
                note="executor_runner printed only its total time: repetition means, warm-up executions included",
            )
        return stats, env, {"delegate": "XnnpackBackend", "runner": self.runner.name if self.runner else None}


register(AdbExecutorch())
