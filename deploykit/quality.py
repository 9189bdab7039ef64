"""Was the machine quiet while a measurement ran? Readings taken around each run, and a verdict with reasons.

Careful benchmark tools refuse to let interference pass silently: hyperfine warns when other processes or
outliers disturb a run, the MobileNetV4 paper reports the median of repetition means. deploykit takes, around
every measurement on this machine,

- the CPU time other processes used (all CPUs' busy time from ``/proc/stat``, less this process tree's own CPU
  time), as a share of the machine's CPU capacity over the run;
- the CPU time a hypervisor stole (``/proc/stat``'s steal column: another VM on the same cores);
- the 1-minute load average before and after;
- the CPU clock where the kernel exposes it (``scaling_cur_freq``), and how much it moved;
- the spread of the repetition means, (max − min) / median: what the run itself says about its stability.

:func:`judge` turns readings into ``clean`` or ``noisy`` with one reason per threshold crossed. It is a pure
function of the readings, so its logic is tested with injected readings; no test asserts that a live run on a
shared machine is quiet. Where a reading cannot be taken (no ``/proc`` on macOS, say) it is absent, never
guessed; a phone's thermal state is read by its own backend.
"""

from __future__ import annotations

import os
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path

# Thresholds above which a run is called noisy, from readings on this project's 2-core EPYC VMs
# (docs/benchmarks.md). Other processes: 0.003-0.03 in a quiet `make demo`, 0.42-0.50 with CPU hogs beside the
# benchmark. Steal: a neighbour VM taking a tenth of the cores (0.29 was seen once in a quiet demo). Repetition
# spread alone is a weak sign on these machines: a quiet demo's 3-second cells spread 7-37% with nobody else
# running, so only a spread over 50% counts by itself. Clock: a 10% move means the governor or thermal limits
# changed speed mid-run.
THRESHOLDS = {
    "other_cpu_share": 0.15,
    "steal_share": 0.10,
    "rep_spread": 0.50,
    "freq_change": 0.10,
    "thermal_rise": 1,  # a phone's thermal status (0 none … 6 shutdown) rose by this much during the run
}


@dataclass
class Snapshot:
    busy_s: float | None  # all CPUs' non-idle time since boot, seconds
    steal_s: float | None
    own_cpu_s: float  # this process and its reaped children
    load1: float | None
    freqs_khz: list[int] = field(default_factory=list)


@dataclass
class Readings:
    wall_s: float
    cpus: int
    other_cpu_share: float | None = None
    steal_share: float | None = None
    load_before: float | None = None
    load_after: float | None = None
    freq_change: float | None = None
    rep_spread: float | None = None
    thermal_before: int | None = None
    thermal_after: int | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


def _proc_stat() -> tuple[float | None, float | None]:
    try:
        fields_ = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None, None
    ticks = os.sysconf("SC_CLK_TCK")
    user, nice, system, idle, iowait, irq, softirq, steal = (int(x) for x in fields_[:8])
    return (user + nice + system + irq + softirq + steal) / ticks, steal / ticks


def _freqs() -> list[int]:
    out = []
    for p in sorted(Path("/sys/devices/system/cpu").glob("cpu[0-9]*/cpufreq/scaling_cur_freq")):
        try:
            out.append(int(p.read_text()))
        except (OSError, ValueError):
            pass
    return out


def snapshot() -> Snapshot:
    busy, steal = _proc_stat()
    t = os.times()
    try:
        load1 = os.getloadavg()[0]
    except OSError:
        load1 = None
    return Snapshot(busy, steal, t.user + t.system + t.children_user + t.children_system, load1, _freqs())


def readings(before: Snapshot, after: Snapshot, wall_s: float, rep_means: list[float] | None = None) -> Readings:
    cpus = os.cpu_count() or 1
    r = Readings(wall_s=wall_s, cpus=cpus, load_before=before.load1, load_after=after.load1)
    capacity = max(wall_s * cpus, 1e-9)
    if before.busy_s is not None and after.busy_s is not None:
        own = after.own_cpu_s - before.own_cpu_s
        r.other_cpu_share = max(0.0, (after.busy_s - before.busy_s) - own) / capacity
        r.steal_share = max(0.0, after.steal_s - before.steal_s) / capacity
    if before.freqs_khz and len(before.freqs_khz) == len(after.freqs_khz):
        r.freq_change = max(abs(a - b) / b for a, b in zip(after.freqs_khz, before.freqs_khz) if b)
    r.rep_spread = rep_spread(rep_means)
    return r


def rep_spread(rep_means: list[float] | None) -> float | None:
    """(max − min) / median of the repetition means; None with fewer than two repetitions."""
    if not rep_means or len(rep_means) < 2:
        return None
    median = statistics.median(rep_means)
    return (max(rep_means) - min(rep_means)) / median if median > 0 else None


def judge(r: Readings) -> tuple[str, list[str]]:
    """``("clean" | "noisy", reasons)``: one reason per threshold the readings cross."""
    t, reasons = THRESHOLDS, []
    if r.other_cpu_share is not None and r.other_cpu_share > t["other_cpu_share"]:
        reasons.append(f"other processes used {r.other_cpu_share:.0%} of the {r.cpus} CPUs during the run")
    if r.steal_share is not None and r.steal_share > t["steal_share"]:
        reasons.append(f"the hypervisor stole {r.steal_share:.0%} of the CPU time")
    if r.rep_spread is not None and r.rep_spread > t["rep_spread"]:
        reasons.append(f"repetition means spread {r.rep_spread:.0%} (max - min over median)")
    if r.freq_change is not None and r.freq_change > t["freq_change"]:
        reasons.append(f"CPU clock moved {r.freq_change:.0%} during the run")
    if r.thermal_before is not None and r.thermal_after is not None:
        if r.thermal_after - r.thermal_before >= t["thermal_rise"]:
            reasons.append(f"thermal status rose from {r.thermal_before} to {r.thermal_after} (throttling)")
    return ("noisy" if reasons else "clean"), reasons
