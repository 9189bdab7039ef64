#!/bin/bash
# ExecuTorch vs LiteRT vs ONNX Runtime on this host: MNv4-Conv-S @224, fp32 and int8, five interleaved rounds
# (each round runs every file once, one after another), then per target the median over rounds and the median of
# per-round ratios. The figures in docs/executorch.md come from this script. Usage: scripts/bench_executorch.sh
set -euo pipefail
cd "$(dirname "$0")/.."
D=${OUT:-/tmp/etbench}
mkdir -p "$D"
for spec in executorch:fp32 executorch:int8 tflite:fp32 tflite:int8 onnx:fp32; do
  fmt=${spec%%:*} p=${spec##*:}
  /usr/bin/time -f "export $fmt $p: %e s" .venv/bin/deploykit export mnv4_conv_s --to "$fmt" --precision "$p" --out "$D" --json > "$D/export-$fmt-$p.json"
done
FILES="executorch-fp32.pte tflite-fp32.tflite onnx-fp32.onnx executorch-int8.pte tflite-int8.tflite"
for round in 1 2 3 4 5; do
  for f in $FILES; do
    .venv/bin/deploykit bench --device host --artifact "$D/mnv4_conv_s-224-$f" --runs 200 --repetitions 3 --warmup 20 \
      --db "$D/r.db" --json > /dev/null 2>&1 || echo "bench failed: $f (round $round)"
  done
done
D="$D" .venv/bin/python - <<'PY'
import collections, os, statistics
from deploykit.store import Store
with Store(os.environ["D"] + "/r.db") as s:
    rows = s.query()
by = collections.defaultdict(list)
for m in rows:
    by[(m.backend, m.precision)].append((m.median_ms, m.quality))
for k, v in sorted(by.items()):
    print(*k, "median %.3f ms" % statistics.median(x for x, _ in v), [round(x, 2) for x, _ in v], [q for _, q in v])
def ratio(a, b):
    return statistics.median(x / y for (x, _), (y, _) in zip(by[a], by[b]))
print("ExecuTorch/LiteRT fp32 %.2f, int8 %.2f; ONNX Runtime/LiteRT fp32 %.2f" % (
    ratio(("executorch-xnnpack", "fp32"), ("litert-xnnpack", "fp32")),
    ratio(("executorch-xnnpack", "int8"), ("litert-xnnpack", "int8")),
    ratio(("onnxruntime", "fp32"), ("litert-xnnpack", "fp32"))))
PY
