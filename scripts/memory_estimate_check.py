"""The memory and size estimates (deploykit.estimator.memory) against what this host measured.

    .venv/bin/python scripts/memory_estimate_check.py --db deploykit-results.db [--markdown]

For every measured host row with a memory reading (``bench`` stores the benchmark process's peak RSS over an
empty process of the same runtime in ``env.memory``), grouped by model and target (the thread counts of one
cell pooled: their median): the estimate from the file's own graph (.tflite, .onnx) or, where the format's graph
cannot be read (an ExecuTorch program's XNNPACK blob), the model's torch.export graph at the file's precision.
Prints, per row, measured and estimated MiB and their ratio, the estimate's weights and arena, and the file's
size against the size estimated from the kept parameters; then, per runtime, the median ratio and the number of
weight copies that would close the gap (measured − arena, over the weights): the runtime's own copies of the
weights (XNNPACK packs them beside the memory-mapped file, ONNX Runtime keeps the parsed model and pre-packs).
A check, not a test: the figures depend on the runtime versions installed.
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from pathlib import Path

from deploykit.estimator.memory import estimate_file_size, file_memory, model_memory
from deploykit.store import Store

MIB = 2**20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", default="deploykit-results.db")
    ap.add_argument("--markdown", action="store_true", help="a Markdown table (docs/benchmarks.md)")
    a = ap.parse_args()
    with Store.existing(a.db) as s:
        rows = [
            m
            for m in s.query(provenance="measured")
            if m.status == "ok" and (m.env.get("memory") or {}).get("bytes") and not m.env.get("batch")
        ]
    cells: dict[tuple, list] = defaultdict(list)
    for m in rows:
        cells[(m.model, m.target)].append(m)
    out, by_runtime = [], defaultdict(list)
    cache: dict[tuple, object] = {}
    for (model, target), ms in sorted(cells.items()):
        measured = statistics.median(m.env["memory"]["bytes"] for m in ms)
        path = Path(ms[-1].artifact) if ms[-1].artifact else None
        est = file_memory(path) if path is not None and path.exists() else None
        if est is None:
            key = (model, ms[-1].precision, ms[-1].resolution)
            if key not in cache:
                cache[key] = model_memory(model, ms[-1].precision, ms[-1].resolution)
            est = cache[key]
        size = ms[-1].env.get("artifact_bytes")
        size_est = estimate_file_size(est.weights_bytes // (4 if ms[-1].precision == "fp32" else 1), ms[-1].precision)
        copies = (measured - est.arena_bytes) / est.weights_bytes if est.weights_bytes else float("nan")
        ratio = measured / est.total_bytes
        by_runtime[target.split("/", 1)[1]].append((ratio, copies))
        out.append((model, target, measured, est, ratio, copies, size, size_est))
    if a.markdown:
        print("| model | target | measured MiB | estimate MiB (weights + arena) | measured / estimate | weight copies"
              " to close | file MiB | size estimate / file |")  # fmt: skip
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for model, target, measured, est, ratio, copies, size, size_est in out:
        size_ratio = size_est / size if size else float("nan")
        if a.markdown:
            print(f"| {model} | {target} | {measured / MIB:.1f} | {est.total_bytes / MIB:.1f} ({est.weights_bytes / MIB:.1f}"
                  f" + {est.arena_bytes / MIB:.1f}) | {ratio:.2f} | {copies:.2f} | {(size or 0) / MIB:.1f} |"
                  f" {size_ratio:.3f} |")  # fmt: skip
        else:
            print(f"{model:16s} {target:30s} measured {measured / MIB:7.1f} MiB  estimate {est.total_bytes / MIB:7.1f}"
                  f" (weights {est.weights_bytes / MIB:6.1f} + arena {est.arena_bytes / MIB:5.1f}, {est.source})"
                  f"  ratio {ratio:5.2f}  copies {copies:5.2f}  size est/file {size_ratio:.3f}")  # fmt: skip
    print()
    for runtime, pairs in sorted(by_runtime.items()):
        ratios = [r for r, _ in pairs]
        within = sum(1 for r in ratios if 1 / 1.5 <= r <= 1.5)
        print(f"{runtime}: median measured/estimate {statistics.median(ratios):.2f} (range {min(ratios):.2f}-"
              f"{max(ratios):.2f}, {within}/{len(ratios)} within x1.5); weight copies to close the gap: median"
              f" {statistics.median(c for _, c in pairs):.2f}")  # fmt: skip
    # The gap, explained per runtime: measured - arena = copies x weights + a fixed cost, fitted by least squares
    # over the runtime's models, and each model's ratio to that runtime-aware estimate, left out of its own fit
    print()
    for runtime in sorted(by_runtime):
        mine = [(o[2], o[3]) for o in out if o[1].split("/", 1)[1] == runtime]
        if len(mine) < 3:
            continue
        copies, fixed = _fit(mine)
        held_out = []
        for i, (measured, est) in enumerate(mine):
            c, f = _fit(mine[:i] + mine[i + 1 :])
            held_out.append(measured / (c * est.weights_bytes + est.arena_bytes + f))
        within = sum(1 for r in held_out if 1 / 1.5 <= r <= 1.5)
        print(f"{runtime}: measured = {copies:.2f} x weights + arena + {fixed / MIB:.1f} MiB over {len(mine)} models;"
              f" left-out ratio median {statistics.median(held_out):.2f} (range {min(held_out):.2f}-{max(held_out):.2f},"
              f" {within}/{len(held_out)} within x1.5)")  # fmt: skip


def _fit(rows: list) -> tuple[float, float]:
    """Least squares of (measured - arena) on the weights: (copies of the weights, fixed bytes)."""
    xs = [est.weights_bytes for _, est in rows]
    ys = [measured - est.arena_bytes for measured, est in rows]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 1.0
    return slope, my - slope * mx


if __name__ == "__main__":
    main()
