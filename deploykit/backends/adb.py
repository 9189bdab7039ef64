"""Android phones over adb: push the .tflite and the official ``benchmark_model`` binary, run it per target, parse.

One backend, three delegates: ``litert-xnnpack`` (CPU), ``litert-gpu`` (the GPU delegate) and ``litert-nnapi``
(NNAPI, onto the accelerator a target names: a Hexagon DSP, or Pixel's Edge TPU, which takes the int8-edgetpu
file). Devices are found with ``adb devices -l``; a profile matches a phone by its ``ro.product.model``.

``benchmark_model`` (TFLite's native benchmark tool, ``android_aarch64_benchmark_model`` in TF's releases) is
looked for in ``$DEPLOYKIT_BENCHMARK_MODEL``, then ``~/.cache/deploykit/benchmark_model``; pass another with
``--benchmark-binary``. Each of the R repetitions is one ``benchmark_model`` run of N invocations; the tool
reports per run count/min/max/avg/std (not per-invocation samples), so a Measurement from adb keeps those per
repetition (:meth:`~deploykit.measurement.LatencyStats.from_repetitions`), and its p50/p90 are ``None``.

Every command is an argument list (no shell string is built on the host side); the device-side command is
passed to ``adb shell`` as separate words, with paths under /data/local/tmp that deploykit chooses.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DeploykitError
from ..measurement import LatencyStats
from ..targets import FoundDevice, Profile, Target
from .base import Artifact, Backend, BackendError, Runtime, register

REMOTE_DIR = "/data/local/tmp/deploykit"
_LOGCAT_PREFIX = re.compile(r"^\d\d-\d\d \d\d:\d\d:\d\d\.\d+\s+\d+\s+\d+ [VDIWEF] [\w.]+\s*:\s?")
_RUN = re.compile(r"count=(\d+) first=(\d+) curr=(\d+) min=(\d+) max=(\d+) avg=([\d.e+]+) std=(\d+)")
_TIMINGS = re.compile(
    r"Inference timings in us: Init: ([\d.]+), First inference: ([\d.]+), Warmup \(avg\): ([\d.e+]+), Inference \(avg\): ([\d.e+]+)"
)
_REPLACING = re.compile(
    r"Replacing (\d+) out of (\d+) node\(s\) with delegate \((\w+)\) node, yielding (\d+) partitions"
)
# benchmark_model's memory lines (tensorflow/lite/tools/benchmark/benchmark_model.cc,
# BenchmarkLoggingListener::OnBenchmarkEnd): the footprint deltas from the tool's start (MB, always printed where
# the platform supports it), and the peak of a monitoring thread's readings with --report_peak_memory_footprint
_MEMORY = re.compile(r"Memory footprint delta from the start of the tool \(MB\): init=([\d.e+-]+) overall=([\d.e+-]+)")
_PEAK = re.compile(r"Overall peak memory footprint \(MB\) via periodic monitoring: ([\d.e+-]+)")
_MODEL_SIZE = re.compile(r"The input model file size \(MB\): ([\d.e+-]+)")
_DELEGATE_KERNELS = re.compile(r"partially executed by the delegate w/ (\d+) delegate kernels")
# An external delegate's own summary, e.g. Qualcomm's QNN delegate (tensorflow/tensorflow#83344's log):
# "TfLiteQnnDelegate delegate: 0 nodes delegated out of 31 nodes with 0 partitions."
_EXTERNAL = re.compile(r"(\w+) delegate: (\d+) nodes delegated out of (\d+) nodes with (\d+) partitions")


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
    init_mem_mb: float | None = None  # footprint delta from the tool's start after Init()
    overall_mem_mb: float | None = None  # ... after the timed runs
    peak_mem_mb: float | None = None  # the monitoring thread's peak (--report_peak_memory_footprint)
    model_size_mb: float | None = None


def parse_benchmark_output(text: str) -> BenchmarkOutput:
    """Parse ``benchmark_model`` output, plain or as logcat lines (the Android benchmark app)."""
    out = BenchmarkOutput()
    for raw in text.splitlines():
        line = _LOGCAT_PREFIX.sub("", raw).removeprefix("INFO: ").strip()
        if m := _RUN.search(line):
            out.runs.append(dict(zip(("count", "first", "curr", "min", "max", "avg", "std"), map(float, m.groups()))))
        elif m := _TIMINGS.search(line):
            out.init_us, out.first_us, out.warmup_avg_us, out.avg_us = map(float, m.groups())
        elif m := _MEMORY.search(line):
            out.init_mem_mb, out.overall_mem_mb = map(float, m.groups())
        elif m := _PEAK.search(line):
            out.peak_mem_mb = float(m.group(1))
        elif m := _MODEL_SIZE.search(line):
            out.model_size_mb = float(m.group(1))
        elif m := _REPLACING.search(line):
            out.delegate.update(
                delegated_nodes=int(m.group(1)),
                total_nodes=int(m.group(2)),
                name=m.group(3),
                partitions=int(m.group(4)),
            )
        elif m := _EXTERNAL.search(line):
            out.delegate.update(
                name=m.group(1),
                delegated_nodes=int(m.group(2)),
                total_nodes=int(m.group(3)),
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


def benchmark_args(
    target: Target,
    remote_model: str,
    remote_binary: str,
    runs: int,
    warmup: int,
    delegate: dict | None = None,
    peak_memory: bool = False,
) -> list[str]:
    """The device-side command for one repetition, as a list of words. ``delegate``: an external delegate
    library already on the phone, ``{"path": remote .so, "options": "key:value;key:value"}``, loaded through
    benchmark_model's ``--external_delegate_path``/``--external_delegate_options`` (a vendor NPU's delegate,
    e.g. Qualcomm's libQnnTFLiteDelegate.so with ``backend_type:htp``), its folder on the library paths.
    ``peak_memory``: the tool's own peak-footprint monitor on (the memory run after the timed repetitions)."""
    args = [
        remote_binary,
        f"--graph={remote_model}",
        f"--num_threads={target.threads}",
        f"--num_runs={runs}",
        "--min_secs=0",
        f"--warmup_runs={warmup}",
        "--warmup_min_secs=0",
    ]
    if peak_memory:  # a thread reads the footprint every 50 ms: only on the extra memory run, never a timed one
        args.append("--report_peak_memory_footprint=true")
    if target.backend == "litert-xnnpack":
        args.append("--use_xnnpack=true")
    elif target.backend == "litert-gpu":
        args += ["--use_gpu=true", "--gpu_precision_loss_allowed=true"]
    elif target.backend == "litert-nnapi":
        args += ["--use_nnapi=true", "--use_xnnpack=false"]
        if target.nnapi_accelerator:
            args.append(f"--nnapi_accelerator_name={target.nnapi_accelerator}")
    if delegate:
        args.append(f"--external_delegate_path={delegate['path']}")
        if delegate.get("options"):
            args.append(f"--external_delegate_options={delegate['options']}")
        folder = delegate["path"].rsplit("/", 1)[0]
        # the delegate's own libraries (QNN's HTP backend and its DSP skeletons) are looked for on these paths
        args = ["env", f"LD_LIBRARY_PATH={folder}", f"ADSP_LIBRARY_PATH={folder}", *args]
    if target.affinity:
        args = ["taskset", target.affinity, *args]
    return args


def benchmark_binary(explicit: str | None = None) -> Path:
    for c in (explicit, os.environ.get("DEPLOYKIT_BENCHMARK_MODEL"), Path.home() / ".cache/deploykit/benchmark_model"):
        if c and Path(c).is_file():
            return Path(c)
    raise DeploykitError(
        "benchmark_model binary not found",
        hint="download TFLite's android_aarch64_benchmark_model and pass --benchmark-binary or set DEPLOYKIT_BENCHMARK_MODEL",
    )


_THERMAL_STATUS = re.compile(r"^Thermal Status:\s*(\d+)", re.M)
_TEMPERATURE = re.compile(r"Temperature\{mValue=([-\d.]+), mType=\d+, mName=([^,]+),")


def parse_thermal(text: str) -> dict:
    """``dumpsys thermalservice``: the thermal status (0 none, 1 light … 6 shutdown; Android's
    PowerManager.THERMAL_STATUS_*) and the hottest cached temperature."""
    status = _THERMAL_STATUS.search(text)
    temps = [float(v) for v, _name in _TEMPERATURE.findall(text)]
    return {"status": int(status.group(1)) if status else None, "max_temp_c": max(temps) if temps else None}


def open_phone(device: FoundDevice | None, target: Target, method, cooldown_s: float, runtime: str):
    """The attached phone a target runs on, the env every adb row starts from, and its thermal state after
    waiting up to ``cooldown_s`` to cool: ``(AdbDevice, env, before, waited_s)``."""
    if device is None:
        raise BackendError(f"no phone attached for {target.id}")
    dev = AdbDevice(device.id, method.timeout_s)
    env = {"device": dev.metadata(), "runtime": runtime, "threads": target.threads, "affinity": target.affinity}
    before, waited = dev.cool_down(cooldown_s)
    return dev, env, before, waited


# Invocations of the extra run that reads the peak memory footprint (after the timed repetitions)
MEMORY_RUNS = 20
LOAD_COVERS = (
    "benchmark_model's Init(): the model loaded, the interpreter built, the delegate applied and tensors allocated"
    " (its 'Initialized session in' figure)"
)


def phone_memory(timed: BenchmarkOutput, peak: BenchmarkOutput | None) -> dict | None:
    """A phone row's ``env["memory"]`` from benchmark_model's own lines: the footprint deltas from the tool's start
    of the first timed repetition (after Init, and overall), and the peak of the memory run where it printed one.
    ``bytes`` (what tables show) is the overall delta: the model's cost over the tool, as a host row's is over
    an empty process."""
    if timed.overall_mem_mb is None and (peak is None or peak.peak_mem_mb is None):
        return None
    mb = lambda v: None if v is None else round(v * 1024 * 1024)  # noqa: E731  (the tool's MB are MiB: kB/1024)
    return {
        "what": "benchmark_model's memory footprint delta from the start of the tool, after the timed runs",
        "bytes": mb(timed.overall_mem_mb),
        "load_bytes": mb(timed.init_mem_mb),
        "peak_footprint_bytes": mb(peak.peak_mem_mb) if peak else None,
        "source": "benchmark_model (tensorflow/lite/tools/benchmark/benchmark_model.cc)"
        + ("; peak from one extra run with --report_peak_memory_footprint=true" if peak else ""),
    }


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

    def stage(self, model: Path, tool: Path, tool_name: str) -> tuple[str, str]:
        """Push a model file and the tool that times it into deploykit's folder on the phone: their remote paths."""
        self.shell(["mkdir", "-p", REMOTE_DIR])
        remote_model, remote_tool = f"{REMOTE_DIR}/{model.name}", f"{REMOTE_DIR}/{tool_name}"
        self.push(model, remote_model)
        self.push(tool, remote_tool)
        self.shell(["chmod", "755", remote_tool])
        return remote_model, remote_tool

    def thermal(self) -> dict:
        p = self._adb("shell", "dumpsys", "thermalservice", timeout=30)
        return parse_thermal(p.stdout) if p.returncode == 0 else {"status": None, "max_temp_c": None}

    def cool_down(self, limit_s: float, poll_s: float = 5.0) -> tuple[dict, float]:
        """Wait (up to ``limit_s``) until the phone reports no thermal throttling; returns (state, seconds waited)."""
        t0 = time.monotonic()
        state = self.thermal()
        while (state["status"] or 0) > 0 and time.monotonic() - t0 < limit_s:
            time.sleep(min(poll_s, max(0.0, limit_s - (time.monotonic() - t0))))
            state = self.thermal()
        return state, time.monotonic() - t0


def find_adb_devices() -> list[dict] | None:
    """``adb devices -l`` parsed; ``None`` when adb is not installed."""
    if shutil.which("adb") is None:
        return None
    try:
        proc = subprocess.run(["adb", "devices", "-l"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
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


class Adb(Backend):
    name = "adb"
    reach = "adb"
    serves = {
        "litert-xnnpack": Runtime("tflite", "cpu"),
        "litert-gpu": Runtime("tflite", "gpu"),
        "litert-nnapi": Runtime("tflite", "dsp"),
    }
    remote = True
    description = "Android phones over adb, timed on the phone by TFLite's benchmark_model"

    binary: Path | None = None
    cooldown_s: float = 60.0  # at most this long waiting for a throttled phone to cool before each cell

    def preflight(self, options: dict) -> None:
        """Before any work: the benchmark_model binary must exist (``--benchmark-binary`` or its defaults)."""
        self.binary = benchmark_binary(options.get("benchmark_binary"))
        if options.get("cooldown_s") is not None:
            self.cooldown_s = float(options["cooldown_s"])

    def discover(self) -> list[FoundDevice]:
        found = find_adb_devices()
        if found is None:
            return []
        return [FoundDevice("adb", d["serial"], d.get("model", ""), d["state"], how="adb devices -l") for d in found]

    def transient(self, error: str) -> bool:
        """adb's words for a phone that dropped off the bus (a cable, a USB reset): worth another try."""
        return any(w in error for w in ("not found", "device offline", "no devices/emulators", "closed"))

    def how_to_reach(self, profile: Profile) -> str:
        found = find_adb_devices()
        if found is None:
            return "adb not on PATH (install Android platform-tools)"
        return f"adb devices: {len(found)} attached, none in state 'device' with model {profile.match!r}"

    def push_delegate(self, dev: AdbDevice, target: Target) -> dict | None:
        """An external delegate library for this target, pushed to the phone (``adbdelegate.py``); None here."""
        return None

    def target_runtime(self, target: Target) -> tuple[Runtime, str]:
        if target.backend == "litert-nnapi" and (target.nnapi_accelerator or "").endswith("edgetpu"):
            return Runtime("tflite", "npu"), "int8-edgetpu"  # Pixel's Edge TPU takes the EdgeTPU-ready file
        return self.serves[target.backend], target.precision

    def measure(self, artifact: Artifact, target: Target, method, device: FoundDevice | None):
        """R repetitions of ``benchmark_model`` on the phone; a lost device raises, and becomes the row."""
        dev, env, before, waited = open_phone(device, target, method, self.cooldown_s, "benchmark_model")
        remote_model, remote_bin = dev.stage(artifact.path, self.binary or benchmark_binary(), "benchmark_model")
        external = self.push_delegate(dev, target)
        reps, outputs = [], []
        for r in range(method.repetitions):
            warmup = method.warmup if r == 0 else 0
            proc = dev.shell(benchmark_args(target, remote_model, remote_bin, method.runs, warmup, external))
            parsed = parse_benchmark_output(proc.stdout + "\n" + proc.stderr)
            if proc.returncode != 0 or parsed.avg_us is None:
                why = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or ["no output"]
                raise BackendError(f"repetition {r + 1}: benchmark_model failed on {device.id}: {why[0]}")
            reps.append({k: v / 1000 if k != "count" else v for k, v in parsed.runs[-1].items()})
            outputs.append(parsed)
        # The peak footprint needs benchmark_model's monitoring thread, which the tool says may disturb its timing:
        # one short extra run after the timed repetitions, its latency discarded.
        words = benchmark_args(target, remote_model, remote_bin, min(method.runs, MEMORY_RUNS), 0, external, True)
        proc = dev.shell(words)
        peak = parse_benchmark_output(proc.stdout + "\n" + proc.stderr) if proc.returncode == 0 else None
        after = dev.thermal()
        env.update(thermal_before=before["status"], thermal_after=after["status"], cooldown_waited_s=round(waited, 1))
        if (memory := phone_memory(outputs[0], peak)) is not None:
            env["memory"] = memory
        env["load_covers"] = LOAD_COVERS
        env["thermal"] = {"before": before, "after": after}
        first = outputs[0]
        stats = LatencyStats.from_repetitions(
            reps,
            note="benchmark_model reports per-run count/min/max/avg/std, not per-invocation samples",
            init_ms=first.init_us / 1000 if first.init_us else None,
            first_ms=first.first_us / 1000 if first.first_us else None,
        )
        delegate = dict(first.delegate)
        if first.nnapi_accelerators:
            delegate["nnapi_accelerators"] = first.nnapi_accelerators
        return stats, env, delegate

    def op_profiler(self, target: Target) -> str | None:
        return None  # benchmark_model --enable_op_profiling, whatever the delegate

    def profile(self, artifact: Artifact, target: Target, method, device: FoundDevice | None):
        """One ``benchmark_model`` run with its op profiler on, its CSV table read from the tool's output."""
        from ..profiling.tflite_csv import read_csv

        dev, _, _, _ = open_phone(device, target, method, self.cooldown_s, "benchmark_model")
        remote_model, remote_bin = dev.stage(artifact.path, self.binary or benchmark_binary(), "benchmark_model")
        words = benchmark_args(
            target, remote_model, remote_bin, method.runs, method.warmup, self.push_delegate(dev, target)
        )
        proc = dev.shell([*words, "--enable_op_profiling=true", "--op_profiling_output_mode=csv"])
        if proc.returncode != 0:
            why = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or ["no output"]
            raise BackendError(f"benchmark_model --enable_op_profiling failed on {device.id}: {why[0]}")
        processor = self.target_runtime(target)[0].processor
        return read_csv(proc.stdout + "\n" + proc.stderr, processor, runtime="benchmark_model")


register(Adb())
