"""Android over adb: push the .tflite and the official ``benchmark_model`` binary, run it per target, parse.

``benchmark_model`` (TFLite's native benchmark tool, ``android_aarch64_benchmark_model`` in TF's releases) is
looked for in ``$DEPLOYKIT_BENCHMARK_MODEL``, then ``~/.cache/deploykit/benchmark_model``; pass another with
``--benchmark-binary``. Each of the R repetitions is one ``benchmark_model`` run of N invocations; the tool
reports per run count/min/max/avg/std (not per-invocation samples), so a Measurement from adb keeps those per
repetition, and its p50/p90 are ``None`` (said in ``stats["note"]``).

Every command is an argument list (no shell string is built on the host side); the device-side command is
passed to ``adb shell`` as separate words, with paths under /data/local/tmp that deploykit chooses.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from ..devices import Target
from ..errors import DeploykitError
from ..measurement import Measurement

REMOTE_DIR = "/data/local/tmp/deploykit"
_LOGCAT_PREFIX = re.compile(r"^\d\d-\d\d \d\d:\d\d:\d\d\.\d+\s+\d+\s+\d+ [VDIWEF] [\w.]+\s*:\s?")
_RUN = re.compile(r"count=(\d+) first=(\d+) curr=(\d+) min=(\d+) max=(\d+) avg=([\d.e+]+) std=(\d+)")
_TIMINGS = re.compile(
    r"Inference timings in us: Init: ([\d.]+), First inference: ([\d.]+), Warmup \(avg\): ([\d.e+]+), Inference \(avg\): ([\d.e+]+)"
)
_REPLACING = re.compile(
    r"Replacing (\d+) out of (\d+) node\(s\) with delegate \((\w+)\) node, yielding (\d+) partitions"
)
_DELEGATE_KERNELS = re.compile(r"partially executed by the delegate w/ (\d+) delegate kernels")


@dataclass
class BenchmarkOutput:
    init_us: float | None = None
    first_us: float | None = None
    warmup_avg_us: float | None = None
    avg_us: float | None = None
    runs: list[dict] = field(default_factory=list)  # each "count=… avg=…" line
    delegate: dict = field(default_factory=dict)
    nnapi_accelerators: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def parse_benchmark_output(text: str) -> BenchmarkOutput:
    """Parse ``benchmark_model`` output, plain or as logcat lines (the Android benchmark app)."""
    out = BenchmarkOutput()
    for raw in text.splitlines():
        line = _LOGCAT_PREFIX.sub("", raw).removeprefix("INFO: ").strip()
        if m := _RUN.search(line):
            out.runs.append(dict(zip(("count", "first", "curr", "min", "max", "avg", "std"), map(float, m.groups()))))
        elif m := _TIMINGS.search(line):
            out.init_us, out.first_us, out.warmup_avg_us, out.avg_us = map(float, m.groups())
        elif m := _REPLACING.search(line):
            out.delegate.update(
                delegated_nodes=int(m.group(1)),
                total_nodes=int(m.group(2)),
                name=m.group(3),
                partitions=int(m.group(4)),
            )
        elif "will be completely executed by the delegate" in line:
            out.delegate.setdefault("fully_delegated", True)
            out.delegate["applied"] = line.split("applied ")[1].split(" delegate")[0] if "applied " in line else None
        elif m := _DELEGATE_KERNELS.search(line):
            out.delegate.update(fully_delegated=False, delegate_kernels=int(m.group(1)))
        elif "will not be executed by the delegate" in line:
            out.delegate.update(fully_delegated=False, delegate_kernels=0)
        elif line.startswith("NNAPI accelerators available:"):
            out.nnapi_accelerators = line.split("[", 1)[1].rstrip("]").split(",")
        elif line.startswith(("ERROR", "error:")) or "Failed to" in line:
            out.errors.append(line)
    return out


def benchmark_args(target: Target, remote_model: str, remote_binary: str, runs: int, warmup: int) -> list[str]:
    """The device-side command for one repetition, as a list of words."""
    args = [
        remote_binary,
        f"--graph={remote_model}",
        f"--num_threads={target.threads}",
        f"--num_runs={runs}",
        "--min_secs=0",
        f"--warmup_runs={warmup}",
        "--warmup_min_secs=0",
    ]
    if target.backend == "litert-xnnpack":
        args.append("--use_xnnpack=true")
    elif target.backend == "litert-gpu":
        args += ["--use_gpu=true", "--gpu_precision_loss_allowed=true"]
    elif target.backend == "litert-nnapi":
        args += ["--use_nnapi=true", "--use_xnnpack=false"]
        if target.nnapi_accelerator:
            args.append(f"--nnapi_accelerator_name={target.nnapi_accelerator}")
    if target.affinity:
        args = ["taskset", target.affinity, *args]
    return args


def find_adb_devices() -> list[dict] | None:
    """``adb devices -l`` parsed; ``None`` when adb is not installed."""
    from ..devices import adb_path, run_quiet

    if adb_path() is None:
        return None
    proc = run_quiet(["adb", "devices", "-l"])
    if proc is None:
        return []
    devices = []
    for line in proc.stdout.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 2:
            d = {"serial": parts[0], "state": parts[1]}
            for p in parts[2:]:
                k, _, v = p.partition(":")
                d[k] = v.replace("_", " ") if k == "model" else v
            devices.append(d)
    return devices


def benchmark_binary(explicit: str | None = None) -> Path:
    for c in (explicit, os.environ.get("DEPLOYKIT_BENCHMARK_MODEL"), Path.home() / ".cache/deploykit/benchmark_model"):
        if c and Path(c).is_file():
            return Path(c)
    raise DeploykitError(
        "benchmark_model binary not found",
        hint="download TFLite's android_aarch64_benchmark_model and pass --benchmark-binary or set DEPLOYKIT_BENCHMARK_MODEL",
    )


class AdbDevice:
    def __init__(self, serial: str, timeout: float = 900):
        self.serial, self.timeout = serial, timeout

    def _adb(self, *args: str, timeout: float | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["adb", "-s", self.serial, *args], capture_output=True, text=True, timeout=timeout or self.timeout
        )

    def metadata(self) -> dict:
        props = {"model": "ro.product.model", "soc": "ro.soc.model", "android": "ro.build.version.release"}
        props["hardware"] = "ro.hardware"
        out = {"serial": self.serial}
        for k, prop in props.items():
            p = self._adb("shell", "getprop", prop, timeout=30)
            out[k] = p.stdout.strip() if p.returncode == 0 else None
        return out

    def push(self, local: Path, remote: str) -> None:
        p = self._adb("push", str(local), remote, timeout=300)
        if p.returncode != 0:
            raise DeploykitError(
                f"adb push to {self.serial} failed: {(p.stderr or p.stdout).strip().splitlines()[-1:]}"
            )

    def shell(self, words: list[str]) -> subprocess.CompletedProcess:
        return self._adb("shell", *words)


def run_adb(
    target: Target, artifact: Path, model: str, resolution: int, serial: str, binary: Path, method
) -> Measurement:
    """R repetitions of ``benchmark_model`` on the phone; a lost device becomes a failed Measurement."""
    m = Measurement.for_target(
        target,
        model,
        resolution,
        artifact=str(artifact),
    )
    dev = AdbDevice(serial, method.timeout_s)
    try:
        m.env = {"device": dev.metadata(), "runtime": "benchmark_model", "threads": target.threads}
        m.env["affinity"] = target.affinity
        dev.shell(["mkdir", "-p", REMOTE_DIR])
        remote_model, remote_bin = f"{REMOTE_DIR}/{artifact.name}", f"{REMOTE_DIR}/benchmark_model"
        dev.push(artifact, remote_model)
        dev.push(binary, remote_bin)
        dev.shell(["chmod", "755", remote_bin])
        reps, outputs = [], []
        for r in range(method.repetitions):
            proc = dev.shell(
                benchmark_args(target, remote_model, remote_bin, method.runs, method.warmup if r == 0 else 0)
            )
            parsed = parse_benchmark_output(proc.stdout + "\n" + proc.stderr)
            if proc.returncode != 0 or parsed.avg_us is None:
                why = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or ["no output"]
                raise RuntimeError(f"repetition {r + 1}: benchmark_model failed on {serial}: {why[0]}")
            reps.append(parsed.runs[-1])
            outputs.append(parsed)
    except (RuntimeError, DeploykitError, subprocess.TimeoutExpired, OSError) as e:
        m.status, m.error = "failed", str(e)
        return m
    means = [rep["avg"] / 1000 for rep in reps]
    import statistics

    m.median_ms = statistics.median(means)
    m.stats = {
        "median_of_means": m.median_ms,
        "rep_means": means,
        "repetitions": len(reps),
        "n": int(sum(rep["count"] for rep in reps)),
        "min": min(rep["min"] for rep in reps) / 1000,
        "max": max(rep["max"] for rep in reps) / 1000,
        "rep_stdev": [rep["std"] / 1000 for rep in reps],
        "p50": None,
        "p90": None,
        "init_ms": outputs[0].init_us / 1000 if outputs[0].init_us else None,
        "first_ms": outputs[0].first_us / 1000 if outputs[0].first_us else None,
        "note": "benchmark_model reports per-run count/min/max/avg/std, not per-invocation samples",
    }
    m.delegate = outputs[0].delegate
    if outputs[0].nnapi_accelerators:
        m.delegate["nnapi_accelerators"] = outputs[0].nnapi_accelerators
    return m
