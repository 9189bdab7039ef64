"""Does reading memory disturb the timed runs? Latency with and without the memory readings, interleaved.

    .venv/bin/python scripts/bench_memory_overhead.py [--pairs 6] [--model mnv4_conv_s] [--formats tflite,onnx]

The harness reads the benchmark child's VmHWM/VmRSS twice, after the load and after the timed runs (never
during them), and runs one baseline child per runtime before the first measurement. This script checks that
claim with numbers: for each format, pairs of measurements (memory on, memory off, alternating which goes
first), each pair's ratio of medians, and the median ratio with its spread. A benchmark, not a test: on a
shared machine single runs differ by more than the effect sought.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from deploykit.backends.base import Artifact
from deploykit.backends.harness import measure
from deploykit.devices import backend_of, get_profile
from deploykit.exporters.pipeline import ExportRequest, export
from deploykit.measurement import Method


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=6)
    ap.add_argument("--model", default="mnv4_conv_s")
    ap.add_argument("--formats", default="tflite,onnx")
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--out", default="artifacts")
    a = ap.parse_args()
    host = get_profile("host")
    method = Method(warmup=20, repetitions=5, runs=a.runs)
    for fmt in a.formats.split(","):
        target = next(t for t in host.targets if t.format == fmt and t.precision == "fp32" and t.available)
        r = export(ExportRequest(a.model, fmt, "fp32", out=Path(a.out), verify_samples=2))
        artifact = Artifact(a.model, r.manifest.model["resolution"], r.path, r.manifest)
        ratios = []
        for i in range(a.pairs):
            order = (True, False) if i % 2 == 0 else (False, True)
            got = {on: measure(backend_of(target), artifact, target, method, memory=on).median_ms for on in order}
            ratios.append(got[True] / got[False])
            print(f"{fmt} pair {i + 1}: with {got[True]:.3f} ms, without {got[False]:.3f} ms, ratio {ratios[-1]:.3f}")
        q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
        print(f"{fmt} {target.id}: median ratio with/without memory readings {statistics.median(ratios):.3f}"
              f" (quartiles {q[0]:.3f}-{q[2]:.3f}, {len(ratios)} interleaved pairs)")  # fmt: skip


if __name__ == "__main__":
    main()
