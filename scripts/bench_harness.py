"""Does `deploykit bench` report what the runtime does? The harness against a hand-timed interpreter loop.

    .venv/bin/python scripts/bench_harness.py [--pairs 6] [--model mnv4_conv_s] [--precision int8]

A benchmark, not a test: on a shared 2-core machine two identical runs seconds apart differ by up to 25%, so a
5% agreement check would fail by chance in `make test`. Here the two are run as interleaved pairs (harness,
hand loop, harness, hand loop, …), each pair's ratio is taken, and the median ratio is printed with its
spread, together with the harness's own run-to-run ratio. `make bench` runs it.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

from deploykit.backends.base import Artifact
from deploykit.backends.harness import measure
from deploykit.devices import backend_of, get_profile
from deploykit.exporters.pipeline import ExportRequest, export
from deploykit.measurement import Method

HAND_LOOP = """
import sys, time
import numpy as np
from ai_edge_litert.interpreter import Interpreter
it = Interpreter(model_path=sys.argv[1], num_threads=int(sys.argv[2]))
it.allocate_tensors()
d = it.get_input_details()[0]
it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
for _ in range(20):
    it.invoke()
means = []
for _ in range(5):
    t0 = time.perf_counter()
    for _ in range(int(sys.argv[3])):
        it.invoke()
    means.append((time.perf_counter() - t0) / int(sys.argv[3]) * 1e3)
print(sorted(means)[2])
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=6)
    ap.add_argument("--model", default="mnv4_conv_s")
    ap.add_argument("--precision", default="int8")
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--out", default="artifacts")
    a = ap.parse_args()
    r = export(ExportRequest(a.model, "tflite", a.precision, out=Path(a.out), calibration_samples=8, verify_samples=2))
    target = next(
        t for t in get_profile("host").targets if t.backend == "litert-xnnpack" and t.precision == a.precision
    )
    artifact = Artifact(a.model, r.manifest.model["resolution"], r.path, r.manifest)
    method = Method(warmup=20, repetitions=5, runs=a.runs)
    harness, hand = [], []
    for i in range(a.pairs):
        m = measure(backend_of(target), artifact, target, method)
        loop = subprocess.run(
            [sys.executable, "-c", HAND_LOOP, str(r.path), str(target.threads), str(a.runs)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        harness.append(m.median_ms)
        hand.append(float(loop.stdout.strip().splitlines()[-1]))
        print(f"pair {i + 1}: harness {harness[-1]:.3f} ms, hand loop {hand[-1]:.3f} ms", flush=True)
    ratios = [h / x for h, x in zip(harness, hand)]
    repeat = [b / a_ for a_, b in zip(harness, harness[1:])]
    cpu = (m.env.get("cpu_model") or "?") + f", {target.threads} thread(s)"
    print(f"\n{a.model} {a.precision} on {cpu}, {a.pairs} interleaved pairs")
    print(f"harness / hand loop: median {statistics.median(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f})")
    print(f"harness run-to-run:  median {statistics.median(repeat):.3f} (min {min(repeat):.3f}, max {max(repeat):.3f})")


if __name__ == "__main__":
    main()
