"""The interference verdict, from injected readings (its logic), and once live beside a CPU hog (wide margins).

No test here asserts that a live run on this shared machine is quiet: identical runs seconds apart differ by up to
25% on these machines."""

from __future__ import annotations

import pytest

from deploykit.quality import THRESHOLDS, Readings, Snapshot, judge, readings, rep_spread


def test_a_quiet_run_is_clean():
    r = Readings(wall_s=10, cpus=2, other_cpu_share=0.02, steal_share=0.0, rep_spread=0.04, freq_change=0.0)
    assert judge(r) == ("clean", [])


@pytest.mark.parametrize(
    "field, value, words",
    [
        ("other_cpu_share", 0.45, "other processes used 45% of the 2 CPUs"),
        ("steal_share", 0.2, "hypervisor stole 20%"),
        ("rep_spread", 0.6, "repetition means spread 60%"),
        ("freq_change", 0.3, "CPU clock moved 30%"),
    ],
)
def test_each_reading_over_its_threshold_is_a_reason(field, value, words):
    r = Readings(wall_s=10, cpus=2, **{field: value})
    quality, reasons = judge(r)
    assert quality == "noisy" and len(reasons) == 1 and words in reasons[0]
    at = Readings(wall_s=10, cpus=2, **{field: THRESHOLDS[field]})  # at the threshold: still clean
    assert judge(at) == ("clean", [])


def test_thermal_rise_on_a_phone():
    assert judge(Readings(wall_s=5, cpus=8, thermal_before=0, thermal_after=2))[0] == "noisy"
    assert judge(Readings(wall_s=5, cpus=8, thermal_before=1, thermal_after=1))[0] == "clean"


def test_readings_subtract_the_run_itself():
    """Busy CPU time is the machine's; what the benchmark process tree used is not interference."""
    before = Snapshot(busy_s=100.0, steal_s=1.0, own_cpu_s=5.0, load1=0.5, freqs_khz=[2000000, 2000000])
    after = Snapshot(busy_s=120.0, steal_s=1.5, own_cpu_s=21.0, load1=1.9, freqs_khz=[2000000, 1500000])
    r = readings(before, after, wall_s=10.0, rep_means=[1.0, 1.1, 1.7])
    assert r.other_cpu_share == pytest.approx((20 - 16) / 20)
    assert r.steal_share == pytest.approx(0.5 / 20)
    assert r.freq_change == pytest.approx(0.25) and r.rep_spread == pytest.approx(0.7 / 1.1)
    quality, reasons = judge(r)
    assert quality == "noisy" and any("clock" in x for x in reasons) and any("spread" in x for x in reasons)


def test_rep_spread_needs_two_repetitions():
    assert rep_spread([1.0]) is None and rep_spread([]) is None and rep_spread([2.0, 2.0]) == 0.0


def test_a_cpu_hog_beside_a_benchmark_marks_it_noisy(tmp_path):
    """Live, with wide margins: two busy-looping processes (one per core here) beside a benchmark make the row
    noisy with the other processes' share as the reason. No assertion is made about runs without a hog."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    hog = "import time\nend = time.time() + 60\nwhile time.time() < end: pass\n"
    hogs = [subprocess.Popen([sys.executable, "-c", hog]) for _ in range(max(2, os.cpu_count() or 2))]
    try:
        env = {**os.environ, "DEPLOYKIT_PLUGINS": "tests.plugins.toy_backend", "PYTHONPATH": str(root)}
        r = subprocess.run(
            [sys.executable, "-m", "deploykit", "bench", "--device", "toy", "--profiles", str(root / "tests" / "plugins"),
             "--model", "mnv1_025", "--runs", "100", "--repetitions", "3", "--warmup", "1", "--db", str(tmp_path / "q.db"),
             "--json"],
            capture_output=True, text=True, timeout=120, env=env,
        )  # fmt: skip
    finally:
        for p in hogs:
            p.kill()
    assert r.returncode == 0, r.stderr
    import json

    (m,) = json.loads(r.stdout)
    assert m["quality"] == "noisy" and m["env"]["interference"]["other_cpu_share"] > THRESHOLDS["other_cpu_share"]
    assert "other processes used" in " ".join(m["details"]["quality_reasons"]) and "busy machine" in r.stderr
