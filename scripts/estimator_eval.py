"""Validate the roofline estimator on this host: leave-one-out over the zoo, beside a MACs-only baseline.

    .venv/bin/python scripts/estimator_eval.py [--artifacts /tmp/zoo-artifacts-v2] [--db /tmp/zoo-host.db]
                                               [--measure] [--runs 100] [--write [PAGE]]

1. ``--measure``: time every zoo model's LiteRT fp32 and int8 .tflite (from the export sweep's folder) on the
   host target with the standard method and store the Measurements (skips models already stored).
2. For each precision, leave one model out, fit the host target's roofline on the rest (peak, dispatch,
   bandwidth and depthwise efficiency, least squares in log space) and predict the one left out, from the
   file's real op graph. The baseline is latency = a + k·MACs fitted on the same rows.
3. Print Spearman rank correlation and median absolute percentage error for both, as Markdown; ``--write``
   puts it in docs/estimator-validation.md's ``host-loo`` block instead.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from scipy.stats import spearmanr

from deploykit import estimator as E
from deploykit.artifact import read_manifest
from deploykit.backends.base import Artifact
from deploykit.backends.harness import measure as measure_artifact
from deploykit.devices import backend_of, get_profile
from deploykit.exporters.base import artifact_name
from deploykit.exporters.base import get as get_format
from deploykit.measurement import Method
from deploykit.store import Store
from deploykit.zoo import list_models

PRECISIONS = ("fp32", "int8")
PAGE = Path(__file__).resolve().parents[1] / "docs" / "estimator-validation.md"


def measure(artifacts: Path, db: Path, runs: int) -> None:
    host = get_profile("host")
    with Store(db) as store:
        done = {(r.model, r.target) for r in store.query(provenance="measured", status="ok")}
        for spec in list_models():
            for precision in PRECISIONS:
                target = next(t for t in host.targets if t.backend == "litert-xnnpack" and t.precision == precision)
                path = artifacts / artifact_name(spec.name, spec.resolution, "tflite", precision)
                if (spec.name, target.id) in done or not path.exists():
                    continue
                manifest = read_manifest(path)
                artifact = Artifact(spec.name, spec.resolution, path, manifest)
                method = Method(warmup=10, repetitions=5, runs=runs, budget_s=20)
                m = measure_artifact(backend_of(target), artifact, target, method)
                store.add(m, manifest)
                print(f"{spec.name:16s} {precision:5s} {m.status} {m.median_ms}", flush=True)


def leave_one_out(artifacts: Path, db: Path) -> dict:
    host = get_profile("host")
    out = {}
    with Store(db) as store:
        for precision in PRECISIONS:
            target = next(t for t in host.targets if t.backend == "litert-xnnpack" and t.precision == precision)
            rows = [r for r in store.query(target=target.id, provenance="measured", status="ok")]
            data = []
            for r in rows:
                path = artifacts / artifact_name(r.model, r.resolution, "tflite", precision)
                layers = get_format("tflite").graph_layers(path)
                data.append((r.model, layers, sum(x.macs for x in layers), r.median_ms))
            start = E.roofline_for(target)
            free = ("peak_macs_per_s", "dispatch_s", "mem_bw_bytes_per_s", "eff_dwconv")
            pred, base, meas = [], [], []
            for i, (_name, layers, macs, ms) in enumerate(data):
                train = [d for j, d in enumerate(data) if j != i]
                fitted = E.fit(start, [(d[1], d[3]) for d in train], free=free, tie_ridge=False).roofline
                pred.append(E.estimate_layers(layers, fitted).latency_ms)
                base.append(E.macs_baseline([(d[2], d[3]) for d in train])(macs))
                meas.append(ms)
            full = E.fit(start, [(d[1], d[3]) for d in data], free=free, tie_ridge=False).roofline
            out[precision] = {
                "models": [d[0] for d in data],
                "measured": meas,
                "roofline": pred,
                "macs": base,
                "fit_all": full,
            }
    return out


def scores(pred, meas) -> tuple[float, float]:
    rho = spearmanr(pred, meas).statistic
    mape = statistics.median(abs(p - m) / m for p, m in zip(pred, meas)) * 100
    return float(rho), float(mape)


def markdown(res: dict) -> str:
    out = ["| precision | models | roofline Spearman | roofline median APE | MACs Spearman | MACs median APE |",
           "| --- | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
    for precision, r in res.items():
        rs, rm = scores(r["roofline"], r["measured"])
        bs, bm = scores(r["macs"], r["measured"])
        out.append(f"| LiteRT {precision} | {len(r['models'])} | {rs:.3f} | {rm:.1f}% | {bs:.3f} | {bm:.1f}% |")
    for precision, r in res.items():
        f = r["fit_all"]
        out.append(
            f"\n{precision}: fitted on all: peak {f.peak_macs_per_s / 1e9:.1f} GMAC/s, bandwidth "
            f"{f.mem_bw_bytes_per_s / 1e9:.2f} GB/s (ridge {f.ridge:.1f}), dispatch {f.dispatch_s * 1e6:.2f} us, "
            f"depthwise efficiency {f.eff('dwconv'):.3f}"
        )
        out.append("\n| model | measured ms | roofline LOO ms | MACs LOO ms |\n| --- | ---: | ---: | ---: |")
        for name, m, p, b in zip(r["models"], r["measured"], r["roofline"], r["macs"]):
            out.append(f"| {name} | {m:.2f} | {p:.2f} | {b:.2f} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--artifacts", default="/tmp/zoo-artifacts-v2")
    ap.add_argument("--db", default="/tmp/zoo-host.db")
    ap.add_argument("--measure", action="store_true")
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--write", nargs="?", const=str(PAGE), metavar="PAGE",
                    help="replace the page's host-loo tables (default docs/estimator-validation.md)")  # fmt: skip
    a = ap.parse_args()
    if a.measure:
        measure(Path(a.artifacts), Path(a.db), a.runs)
    text = markdown(leave_one_out(Path(a.artifacts), Path(a.db)))
    if a.write:
        from estimator_doc import splice  # scripts/ is on sys.path when this file runs as a script

        page = Path(a.write)
        page.write_text(splice(page.read_text(), "host-loo", text))
        print(f"wrote the host leave-one-out tables into {page}")
    else:
        print("\n" + text)


if __name__ == "__main__":
    main()
