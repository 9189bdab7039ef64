"""Device profiles: what a device is, how it is reached, which targets it runs, and its hardware figures.

Profiles are TOML files: the ones shipped in ``device_profiles/``, then any in ``$DEPLOYKIT_PROFILES`` or a
``--profiles DIR`` (a later file with the same ``name`` replaces an earlier one). Each is validated against
:data:`SCHEMA`; a bad file is a one-line error naming the file and the field.

Reach: ``host`` (this machine), ``adb`` (Android over adb), ``apple`` (Core ML on a Mac), ``coral`` (Edge TPU
through libedgetpu). :func:`reachability` says, per profile, whether it can be benchmarked now and what was
looked for.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from .errors import DeploykitError

REACHES = ("host", "adb", "apple", "coral")
BACKENDS = {
    # backend: (artifact format, reaches that can run it)
    "litert-xnnpack": ("tflite", ("host", "adb")),
    "litert-gpu": ("tflite", ("adb",)),
    "litert-nnapi": ("tflite", ("adb",)),
    "onnxruntime": ("onnx", ("host",)),
    "onnxruntime-cuda": ("onnx", ("host",)),
    "onnxruntime-tensorrt": ("onnx", ("host",)),
    "pytorch": ("pytorch", ("host",)),
    "coreml-cpu": ("coreml", ("apple",)),
    "coreml-gpu": ("coreml", ("apple",)),
    "coreml-ane": ("coreml", ("apple",)),
    "coreml-all": ("coreml", ("apple",)),
    "edgetpu": ("tflite", ("coral",)),
}
PRECISIONS = ("fp32", "fp16", "int8", "int8-dynamic", "int8-edgetpu")

# field: (type, required)
SCHEMA = {
    "profile": {
        "name": (str, True),
        "display": (str, True),
        "reach": (str, True),
        "match": (str, False),
        "notes": (str, False),
        "targets": (list, True),
    },
    "target": {
        "backend": (str, True),
        "precision": (str, True),
        "name": (str, False),
        "threads": (int, False),
        "affinity": (str, False),
        "nnapi_accelerator": (str, False),
        "peak_macs_per_s": ((int, float), False),
        "mem_bw_bytes_per_s": ((int, float), False),
        "onchip_bytes": (int, False),
        "source": (str, False),
        "available": (bool, False),
        "roofline": (dict, False),
    },
}


@dataclass(frozen=True)
class Target:
    device: str
    backend: str
    precision: str
    name: str = ""  # distinguishes two targets with the same backend (e.g. nnapi hexagon vs edgetpu)
    threads: int = 1
    affinity: str | None = None
    nnapi_accelerator: str | None = None
    peak_macs_per_s: float | None = None
    mem_bw_bytes_per_s: float | None = None
    onchip_bytes: int | None = None
    source: str = ""
    available: bool = True
    roofline: dict | None = field(default=None, hash=False, compare=False)  # estimator parameters (estimator.py)

    @property
    def id(self) -> str:
        """``device/backend/precision`` (or ``device/name/precision`` when the target is named)."""
        return f"{self.device}/{self.name or self.backend}/{self.precision}"

    @property
    def format(self) -> str:
        return BACKENDS[self.backend][0]

    @property
    def export_precision(self) -> str:
        """The artifact precision this target runs; Edge TPUs take the EdgeTPU-ready int8 file."""
        if self.backend in ("edgetpu",) or (self.nnapi_accelerator or "").endswith("edgetpu"):
            return "int8-edgetpu"
        return self.precision


@dataclass
class Profile:
    name: str
    display: str
    reach: str
    targets: list[Target]
    path: str
    match: str | None = None
    notes: str = ""
    host: dict = field(default_factory=dict)


def profile_dirs(extra: str | Path | None = None) -> list[Path]:
    dirs = [Path(str(resources.files("deploykit.device_profiles")))]
    for d in (os.environ.get("DEPLOYKIT_PROFILES"), extra):
        if d:
            p = Path(d)
            if not p.is_dir():
                raise DeploykitError(f"profiles folder not found: {p}")
            dirs.append(p)
    return dirs


def load_profiles(extra: str | Path | None = None) -> dict[str, Profile]:
    profiles: dict[str, Profile] = {}
    for d in profile_dirs(extra):
        for f in sorted(d.glob("*.toml")):
            p = load_profile(f)
            profiles[p.name] = p
    return profiles


def get_profile(name: str, extra: str | Path | None = None) -> Profile:
    profiles = load_profiles(extra)
    if name not in profiles:
        import difflib

        close = difflib.get_close_matches(name, list(profiles), n=3)
        hint = f"did you mean {', '.join(close)}?" if close else f"known: {', '.join(sorted(profiles))}"
        raise DeploykitError(f"unknown device {name!r}", hint=hint)
    return profiles[name]


def load_profile(path: Path) -> Profile:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise DeploykitError(f"bad device profile {path}: {e}") from None
    _validate(data, SCHEMA["profile"], path, "")
    if data["reach"] not in REACHES:
        raise DeploykitError(f"bad device profile {path}: reach {data['reach']!r} is not one of {', '.join(REACHES)}")
    targets = []
    for i, t in enumerate(data["targets"]):
        where = f"targets[{i}]."
        if not isinstance(t, dict):
            raise DeploykitError(f"bad device profile {path}: {where[:-1]} is not a table")
        _validate(t, SCHEMA["target"], path, where)
        if t["backend"] not in BACKENDS:
            raise DeploykitError(f"bad device profile {path}: {where}backend {t['backend']!r} is unknown")
        if t["precision"] not in PRECISIONS:
            raise DeploykitError(f"bad device profile {path}: {where}precision {t['precision']!r} is unknown")
        if data["reach"] not in BACKENDS[t["backend"]][1]:
            raise DeploykitError(
                f"bad device profile {path}: {where}backend {t['backend']} cannot run over {data['reach']}"
            )
        targets.append(Target(device=data["name"], **t))
    ids = [t.id for t in targets]
    if len(set(ids)) != len(ids):
        raise DeploykitError(f"bad device profile {path}: two targets share an id; give one a name")
    profile = Profile(
        data["name"], data["display"], data["reach"], targets, str(path), data.get("match"), data.get("notes", "")
    )
    if profile.name == "host":
        profile.host = host_info()
        profile.targets = [_host_target(t, profile.host) for t in targets]
    return profile


def _validate(data: dict, schema: dict, path: Path, where: str) -> None:
    for key, (typ, required) in schema.items():
        if required and key not in data:
            raise DeploykitError(f"bad device profile {path}: missing {where}{key}")
        if key in data and not isinstance(data[key], typ) or (typ is int and isinstance(data.get(key), bool)):
            raise DeploykitError(f"bad device profile {path}: {where}{key} has the wrong type")
    unknown = set(data) - set(schema)
    if unknown:
        raise DeploykitError(f"bad device profile {path}: unknown field {where}{sorted(unknown)[0]}")


def host_info() -> dict:
    """CPU model, core counts, SIMD features and a derived peak MAC/s for this machine."""
    info = {"machine": platform.machine(), "system": platform.system(), "logical_cpus": os.cpu_count() or 1}
    flags: set[str] = set()
    try:
        text = Path("/proc/cpuinfo").read_text()
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and "cpu_model" not in info:
                info["cpu_model"] = value.strip()
            if key.strip() in ("flags", "Features") and not flags:
                flags = set(value.split())
        cores = {line.split(":")[1].strip() for line in text.splitlines() if line.startswith("core id")}
        info["physical_cores"] = max(len(cores), 1) if cores else info["logical_cpus"]
    except OSError:
        info["physical_cores"] = info["logical_cpus"]
    info["simd"] = sorted(
        f for f in flags if f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "asimddp", "sve")
    )
    governor = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    if governor.exists():
        info["governor"] = governor.read_text().strip()
    mhz = _cpu_mhz()
    if mhz:
        info["cpu_mhz"] = mhz
    return info


def _cpu_mhz() -> float | None:
    for p in ("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq",):
        try:
            return int(Path(p).read_text()) / 1000
        except (OSError, ValueError):
            pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("cpu MHz"):
                return float(line.split(":")[1])
    except (OSError, ValueError):
        pass
    return None


def _host_target(t: Target, info: dict) -> Target:
    from dataclasses import replace

    threads = t.threads or info["physical_cores"]
    ghz = (info.get("cpu_mhz") or 2000) / 1000
    simd = set(info["simd"])
    # fp32 MAC/cycle/core: 2 FMA ports × vector lanes. int8 on x86 without VNNI runs at about the fp32 rate
    # (vpmaddwd); with VNNI/SDOT it is 4× (measured on this machine: XNNPACK int8 ≈ fp32 per pointwise conv).
    lanes = 16 if "avx512f" in simd else 8 if "avx2" in simd else 4
    fp32 = 2 * lanes
    per_cycle = fp32 * (4 if simd & {"avx512_vnni", "avx_vnni", "asimddp"} and t.precision.startswith("int8") else 1)
    peak = threads * ghz * 1e9 * per_cycle
    src = f"derived: {threads} core(s) x {ghz:.2f} GHz x {per_cycle} MAC/cycle ({', '.join(sorted(simd)) or 'scalar'})"
    return replace(t, threads=threads, peak_macs_per_s=t.peak_macs_per_s or peak, source=t.source or src)


def reachability(profile: Profile) -> dict:
    """Can this profile be benchmarked now? ``{"reachable": bool, "how": text, "detail": ...}``."""
    if profile.reach == "host":
        if profile.name == "host":
            return {"reachable": True, "how": "this machine"}
        ok = bool(profile.match) and profile.match.lower() in _host_model().lower()
        return {"reachable": ok, "how": f"run deploykit on the device itself (host model {_host_model()!r})"}
    if profile.reach == "adb":
        from .runners.adb import find_adb_devices

        devices = find_adb_devices()
        if devices is None:
            return {"reachable": False, "how": "adb not on PATH (install Android platform-tools)"}
        serials = [
            d["serial"]
            for d in devices
            if d["state"] == "device" and profile.match and profile.match in d.get("model", "")
        ]
        return {
            "reachable": bool(serials),
            "how": f"adb devices: {len(devices)} attached, matching model {profile.match!r}: {serials or 'none'}",
            "serials": serials,
        }
    if profile.reach == "apple":
        mac = platform.system() == "Darwin"
        return {
            "reachable": False,
            "how": "Core ML on this Mac"
            if mac
            else "needs macOS with coremltools (this host is " + platform.system() + ")",
            "detail": "iPhones are measured with Xcode's Core ML performance report; deploykit measures the Mac it runs on",
        }
    from .runners.coral import find_edgetpu

    found = find_edgetpu()
    return {"reachable": found["present"], "how": found["how"]}


def _host_model() -> str:
    try:
        return Path("/proc/device-tree/model").read_text().strip("\x00\n ")
    except OSError:
        return platform.node()


def adb_path() -> str | None:
    return shutil.which("adb")


def run_quiet(args: list[str], timeout: float = 10) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
