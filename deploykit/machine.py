"""This machine: CPU model, core counts, SIMD features, governor, clock. Ground floor.

Read by the host device profile (to derive a peak MAC/s), by the harness (stored with every measurement taken
here, so a report names the machine that measured, not the one that renders it) and by ``deploykit devices``.
"""

from __future__ import annotations

import os
import platform
import socket
from functools import cache
from pathlib import Path


def cache_dir() -> Path:
    """Where deploykit keeps this machine's state: ``$DEPLOYKIT_CACHE``, else ``$XDG_CACHE_HOME/deploykit``,
    else ``~/.cache/deploykit``."""
    if os.environ.get("DEPLOYKIT_CACHE"):
        return Path(os.environ["DEPLOYKIT_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "deploykit"


@cache
def host_info() -> dict:
    """CPU model, core counts, SIMD features and a derived peak MAC/s for this machine."""
    info = {
        "hostname": socket.gethostname(),
        "machine": platform.machine(),
        "system": platform.system(),
        "logical_cpus": os.cpu_count() or 1,
    }
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


def host_model() -> str:
    """What a host-reached profile's ``match`` is compared with: the board model where the kernel names one
    (a Raspberry Pi), else the CPU model."""
    try:
        return Path("/proc/device-tree/model").read_text().strip("\x00\n ")
    except OSError:
        return host_info().get("cpu_model", platform.node())


def process_memory() -> dict:
    """This process's memory as the kernel counts it, in bytes: ``hwm`` (the resident-set high-water mark since
    the process started, ``VmHWM``), ``rss`` (resident now, ``VmRSS``) and ``threads`` (OS threads now). The
    high-water mark is kept by the kernel, so reading it costs nothing between readings: no sampling thread runs
    beside the timed invocations. Where /proc is missing (macOS), ``ru_maxrss`` gives the high-water mark."""
    out: dict = {"source": "/proc/self/status VmHWM"}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                out[key[2:].lower()] = int(value.split()[0]) * 1024  # kB
            elif key == "Threads":
                out["threads"] = int(value)
    except (OSError, ValueError):
        pass
    if "hwm" not in out:
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out = {"source": "getrusage ru_maxrss", "hwm": peak if sys.platform == "darwin" else peak * 1024}
    return out
