"""Does a host fit learn from per-layer rows? Leave-one-model-out on this host's targets, with and without them.

Part 1 (skipped with ``--skip-profile``) profiles a handful of zoo models on this host, as a user would:
``deploykit profile MODEL --device host --target T ...`` for each, which stores a timed row per target with its
per-layer table (``details["layers_measured"]``). The machine's load average is recorded around each run.

Part 2 fits each host target that has per-layer tables twice, as ``deploykit estimate fit`` would, and scores it
by leave-one-model-out (:func:`deploykit.estimator.cross_validate`): on the whole-model rows alone, and with the
per-op-kind efficiencies fitted on the per-layer rows of the models left in the fold (``estimate fit --layers``;
the left-out model's layer rows never reach the fit that predicts it). Prints one table per target and the
pooled figures; ``--json`` writes them too.

    .venv/bin/python scripts/estimator_layer_fit.py --db /tmp/host-layers.db
    .venv/bin/python scripts/estimator_layer_fit.py --db /tmp/host-layers.db --skip-profile
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

MODELS = ["mnv1_025", "mnv1_050", "mnv2_050", "mnv2_100", "mnv3_small_100", "mnv4_conv_s"]
TARGETS = ["host/onnxruntime/fp32", "host/executorch-xnnpack/fp32", "host/executorch-xnnpack/int8"]


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def profile(models, targets, db: Path, out: Path, runs: int, repetitions: int) -> list[dict]:
    exe = Path(sys.executable).with_name("deploykit")
    log = []
    for m in models:
        before = os.getloadavg()[0]
        t0 = time.time()
        cmd = [str(exe), "profile", m, "--device", "host", *(w for t in targets for w in ("--target", t)),
               "--runs", str(runs), "--repetitions", str(repetitions), "--warmup", "5",
               "--db", str(db), "--out", str(out), "--json"]  # fmt: skip
        r = subprocess.run(cmd, capture_output=True, text=True)
        status = {p["target"]: p["status"] for p in json.loads(r.stdout)} if r.stdout.strip() else {}
        entry = {"model": m, "rc": r.returncode, "status": status, "seconds": round(time.time() - t0, 1),
                 "load_before": round(before, 2), "load_after": round(os.getloadavg()[0], 2)}  # fmt: skip
        print(json.dumps(entry), flush=True)
        if r.returncode:
            print(r.stderr[-2000:], file=sys.stderr)
        log.append(entry)
    return log


def compare(db: Path) -> dict:
    import numpy as np

    from deploykit import estimator as E
    from deploykit.devices import get_profile
    from deploykit.store import Store

    profile_ = get_profile("host")
    out = {"cpu": cpu_name(), "logical_cpus": os.cpu_count(), "targets": []}
    with Store.existing(db) as store:
        for t in E.select_targets(profile_):
            tables = E.layer_tables(t, store)
            rows, _ = E.analysable_rows(E.training_rows(t, store))
            if not tables or len(E.models_of(rows)) < 3:
                continue
            without = [x for x in E.cross_validate(t, rows) if x.split == "model"]
            with_ = [x for x in E.cross_validate(t, rows, tables) if x.split == "model"]
            eff_only = [x for x in _efficiency_only(E, t, rows, tables) if x.split == "model"]
            full = E.fit_layer_efficiency(E.datasheet_roofline(t), tables)
            quality = sorted({m.quality for m in store.query(target=t.id, provenance="measured", status="ok")})
            out["targets"].append({
                "target": t.id, "rows": len(rows), "models": len(E.models_of(rows)), "layer_tables": len(tables),
                "quality": quality, "efficiency": full.efficiency, "layer_rms_log_error": full.rms_log_error,
                "layer_rows": full.rows,
                "layer_ridge": full.peak_macs_per_s / full.mem_bw_bytes_per_s,
                "datasheet_ridge": E.datasheet_roofline(t).ridge,
                "without": E.summarize(without, "model"), "with": E.summarize(with_, "model"),
                "efficiency_only": E.summarize(eff_only, "model"),
                "residuals": [
                    {"model": a.model, "measured_ms": a.measured_ms, "without_ms": a.predicted_ms,
                     "with_ms": b.predicted_ms, "efficiency_only_ms": c.predicted_ms}
                    for a, b, c in zip(without, with_, eff_only)
                ],
            })  # fmt: skip
    every = [r for t in out["targets"] for r in t["residuals"]]
    ape = lambda k: float(np.median([abs(r[k] / r["measured_ms"] - 1) for r in every])) if every else None  # noqa: E731
    out["pooled"] = {"rows": len(every), "without_median_ape": ape("without_ms"), "with_median_ape": ape("with_ms"),
                     "efficiency_only_median_ape": ape("efficiency_only_ms")}  # fmt: skip
    return out


def _efficiency_only(E, t, rows, tables):
    """Leave-one-model-out with the per-layer efficiencies alone, the datasheet's ridge kept: the variant not
    adopted (docs/decisions.md), for comparison."""
    from dataclasses import replace

    real = E.intervals.with_layer_fit

    def efficiency_only(base, tbs):
        return (
            replace(base, efficiency={**base.efficiency, **E.fit_layer_efficiency(base, tbs).efficiency})
            if tbs
            else base
        )

    E.intervals.with_layer_fit = efficiency_only
    try:
        return E.cross_validate(t, rows, tables)
    finally:
        E.intervals.with_layer_fit = real


def _rho(summary: dict) -> str:
    return "–" if summary.get("spearman") is None else f"{summary['spearman']:.2f}"


def show(res: dict) -> None:
    print(f"\nCPU: {res['cpu']} ({res['logical_cpus']} logical CPUs)")
    loads = [x for r in res.get("profile_runs", []) for x in (r["load_before"], r["load_after"])]
    if loads:
        print(f"1-minute load average around the profile runs: {min(loads):.1f}-{max(loads):.1f}")
    for t in res["targets"]:
        w, x = t["without"], t["with"]
        print(f"\n{t['target']}: {t['rows']} rows of {t['models']} models, {t['layer_tables']} per-layer tables "
              f"({t['layer_rows']} layer rows; quality {', '.join(t['quality'])})")  # fmt: skip
        eff = ", ".join(f"{k} {v:.3g}" for k, v in sorted(t["efficiency"].items()))
        print(f"  per-layer fit on all tables: efficiency {eff}; ridge {t['layer_ridge']:.3g} MACs/B (datasheet"
              f" {t['datasheet_ridge']:.3g}); rms log error per op {t['layer_rms_log_error']:.3f}")  # fmt: skip
        o = t["efficiency_only"]
        print(f"  leave-one-model-out median |error|: without {w['median_ape']:.1%} (Spearman {_rho(w)}),"
              f" with per-layer rows {x['median_ape']:.1%} (Spearman {_rho(x)}), efficiencies alone"
              f" {o['median_ape']:.1%}; MACs-affine baseline {w['baseline_median_ape']:.1%}")  # fmt: skip
        print("  model                measured ms   without ms   with ms   efficiencies alone ms")
        for r in t["residuals"]:
            print(f"  {r['model']:<20} {r['measured_ms']:>11.3f} {r['without_ms']:>12.3f} {r['with_ms']:>9.3f}"
                  f" {r['efficiency_only_ms']:>23.3f}")  # fmt: skip
    p = res["pooled"]
    if p["rows"]:
        print(f"\npooled over {p['rows']} left-out rows: median |error| without {p['without_median_ape']:.1%},"
              f" with per-layer rows {p['with_median_ape']:.1%}, efficiencies alone"
              f" {p['efficiency_only_median_ape']:.1%}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", type=Path, default=Path("host-layers.db"))
    ap.add_argument("--out", type=Path, default=Path("artifacts"), help="artifacts folder for the exports")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--repetitions", type=int, default=3)
    ap.add_argument("--skip-profile", action="store_true", help="compare on the tables already in --db")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    a = ap.parse_args()
    log = []
    if not a.skip_profile:
        log = profile(a.models.split(","), a.targets.split(","), a.db, a.out, a.runs, a.repetitions)
    res = compare(a.db)
    res["profile_runs"] = log
    show(res)
    if a.json:
        a.json.write_text(json.dumps(res, indent=1, default=str))


if __name__ == "__main__":
    main()
