"""Benchmark zoo models on this host's targets and print a Markdown table for docs/benchmarks.md.

    .venv/bin/python scripts/bench_zoo.py [--models a,b] [--runs 200] [--repetitions 5] [--db FILE]

Uses the same library calls as `deploykit bench --device host`; exports come from the exporters' cache.
Also measures, side by side in one run, LiteRT int8 against fp32 per model (the ratio is int8 / fp32).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from deploykit.bench import BenchRequest, run_bench
from deploykit.devices import get_profile
from deploykit.measurement import Method


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--models",
        default="mnv4_conv_s,mnv1_100,mnv2_100,mnv3_large_100,mnv3_small_100,mnv4_conv_m,mnv4_hybrid_m,mobilevit_xxs,repvit_m0_9",
    )
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--repetitions", type=int, default=5)
    ap.add_argument("--budget", type=float, default=15.0, help="seconds per target at most")
    ap.add_argument("--db", default="/tmp/zoo-bench.db")
    ap.add_argument("--out", default="/tmp/zoo-artifacts-v2")
    ap.add_argument("--backends", default="litert-xnnpack,onnxruntime,pytorch")
    a = ap.parse_args()
    host = get_profile("host")
    rows = {}
    for model in a.models.split(","):
        req = BenchRequest(
            device="host",
            models=[model],
            backends=a.backends.split(","),
            db=Path(a.db),
            out=Path(a.out),
            method=Method(warmup=10, repetitions=a.repetitions, runs=a.runs, budget_s=a.budget),
        )
        for m in run_bench(req):
            rows[(model, m.target)] = m
            print(model, m.target, m.status, m.median_ms, flush=True)
    targets = [t.id for t in host.targets if t.available and t.backend in a.backends.split(",")]
    print("\n| model | " + " | ".join(targets) + " | int8/fp32 (LiteRT) |")
    print("| --- | " + " | ".join("---:" for _ in targets) + " | ---: |")
    for model in a.models.split(","):
        cells = []
        for t in targets:
            m = rows.get((model, t))
            cells.append("–" if m is None else (f"{m.median_ms:.2f}" if m.status == "ok" else m.status))
        f = rows.get((model, "host/litert-xnnpack/fp32"))
        i = rows.get((model, "host/litert-xnnpack/int8"))
        ratio = f"{i.median_ms / f.median_ms:.2f}" if f and i and f.status == i.status == "ok" else "–"
        print(f"| {model} | " + " | ".join(cells) + f" | {ratio} |")


if __name__ == "__main__":
    main()
