"""ONNX int8 (QDQ) against ONNX fp32 under ONNX Runtime on this host, interleaved: the figures in docs/exports.md.

Exports the model's fp32 and int8 ONNX files (through the artifact cache), opens both in ONNX Runtime the way
`deploykit bench` does (the format plugin's session, graph optimizations on), then for each round times a block of
runs of one file and a block of the other, the order alternating per round; a round's ratio is int8's block median
over fp32's. Prints the CPU, the int8 file's fidelity figures, each file's median of block medians, and the median
of the per-round ratios with their range. A busy machine slows both blocks of a round alike, so the ratio holds
where absolute times do not.

Usage: .venv/bin/python scripts/onnx_int8_ab.py [--model mnv4_conv_s] [--threads 1] [--rounds 15] [--runs 100]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from deploykit.exporters.base import get as get_format
from deploykit.exporters.pipeline import ExportRequest, export
from deploykit.machine import host_info


def block(session, runs: int) -> float:
    """The median of ``runs`` timed inferences (the session's ``run``, as the bench harness times it), in ms."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        session.run()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="mnv4_conv_s")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--out", default="/tmp/onnx-int8-ab")
    a = ap.parse_args()
    results = {p: export(ExportRequest(a.model, "onnx", p, out=Path(a.out))) for p in ("fp32", "int8")}
    sessions = {p: get_format("onnx").open_session(r.path, r.manifest, threads=a.threads) for p, r in results.items()}
    res = results["fp32"].manifest.model["resolution"]
    x = np.random.default_rng(0).standard_normal((1, 3, res, res)).astype(np.float32)
    for s in sessions.values():
        s.feed(x)
        for _ in range(20):
            s.run()
    medians: dict[str, list[float]] = {"fp32": [], "int8": []}
    for r in range(a.rounds):
        for p in ("fp32", "int8") if r % 2 == 0 else ("int8", "fp32"):
            medians[p].append(block(sessions[p], a.runs))
    cpu = host_info()
    print(f"CPU: {cpu.get('cpu_model')}, {cpu['physical_cores']} cores; SIMD: {', '.join(cpu['simd'])}")
    f = results["int8"].manifest.fidelity
    v = f["vs_fp32"]
    print(
        f"int8 {results['int8'].manifest.status}: vs {f['reference']} cosine min {f['cosine_min']:.4f} (threshold"
        f" {f['threshold']:.4f}, top-1 {f['top1_agreement']:.0%}); vs float PyTorch cosine min {v['cosine_min']:.4f}"
        f" mean {v['cosine_mean']:.4f}, SNR {v['snr_db']:.1f} dB, top-1 {v['top1_agreement']:.0%},"
        f" top-5 {v['top5_agreement']:.0%} ({v['samples']} inputs)"
    )
    for p, m in medians.items():
        print(f"{p}: median of block medians {statistics.median(m):.3f} ms (min {min(m):.3f}, max {max(m):.3f})")
    ratios = [b / a_ for a_, b in zip(medians["fp32"], medians["int8"])]
    print(
        f"int8/fp32: median of per-round ratios {statistics.median(ratios):.3f} (range {min(ratios):.3f}-"
        f"{max(ratios):.3f}; {a.rounds} rounds x {a.runs} runs, {a.threads} thread(s))"
    )


if __name__ == "__main__":
    main()
