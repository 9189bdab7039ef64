"""Score the shipped paper-target profiles on the MobileNetV4 paper's held-out Table 6 latencies.

    .venv/bin/python scripts/estimator_heldout.py [--details]

The profiles were fitted (`deploykit estimate --fit --published`) on the two calibration rows only
(MNv4-Conv-S @224 and Conv-L @384 per target). This script predicts every other zoo model the paper's Table 6
reports (scripts/data/mnv4_table6_heldout.csv) and prints, per target, the median absolute percentage error and
Spearman rank correlation next to the baseline latency = a + k·MACs fitted on the same two rows, as Markdown
for docs/estimator.md. A "Failed" cell must come out `unsupported`.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from scipy.stats import spearmanr

from deploykit import estimator as E
from deploykit.devices import get_profile

HELD_OUT = Path(__file__).parent / "data" / "mnv4_table6_heldout.csv"
PROFILE_OF = {
    "pixel6_cpu": "pixel6",
    "pixel8_edgetpu": "pixel8",
    "iphone13_ane": "iphone13",
    "pixel4_hexagon": "pixel4",
    "pixel7_gpu": "pixel7",
    "s23_cpu": "s23",
    "s23_gpu": "s23",
}


def held_out_rows() -> list[dict]:
    return E.commented_csv(HELD_OUT.read_text())


def score(details: bool) -> list[dict]:
    layers = {}

    def macs_and_layers(model: str, res: int):
        if (model, res) not in layers:
            ls = E.model_layers(model, res)[2]
            layers[(model, res)] = (sum(x.macs for x in ls), ls)
        return layers[(model, res)]

    calibration = E.published_latencies()
    out = []
    for name in PROFILE_OF:
        (target,) = E.select_targets(get_profile(PROFILE_OF[name]), [name])  # matched by its paper_target
        roof = E.roofline_for(target)
        base = E.macs_baseline(
            [(macs_and_layers(c["model"], c["resolution"])[0], c["ms"]) for c in calibration if c["target"] == name]
        )
        pub, est, bas, failed_ok, failed_total = [], [], [], 0, 0
        for row in held_out_rows():
            cell = row[name]
            if not cell:
                continue
            macs, ls = macs_and_layers(row["model"], int(row["resolution"]))
            e = E.estimate_layers(ls, roof)
            if cell == "Failed":
                failed_total += 1
                failed_ok += e.status == "unsupported"
                continue
            if e.status != "ok":
                raise SystemExit(f"{row['model']} unsupported on {name}, but the paper measured it")
            pub.append(float(cell))
            est.append(e.latency_ms)
            bas.append(base(macs))
            if details:
                print(
                    f"{name:15s} {row['model']:15s} {cell:>6s} ms  estimate {e.latency_ms:7.2f} ({e.latency_ms / float(cell) - 1:+.0%})  baseline {bas[-1]:7.2f}"
                )
        ape = [abs(p / m - 1) for p, m in zip(est, pub)]
        bape = [abs(p / m - 1) for p, m in zip(bas, pub)]
        out.append(
            {
                "target": name,
                "n": len(pub),
                "ape": ape,
                "median_ape": statistics.median(ape),
                "spearman": spearmanr(est, pub).statistic,
                "baseline_median_ape": statistics.median(bape),
                "baseline_ape": bape,
                "baseline_spearman": spearmanr(bas, pub).statistic,
                "failed": f"{failed_ok}/{failed_total}" if failed_total else "–",
            }
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--details", action="store_true", help="print every prediction")
    args = ap.parse_args()
    res = score(args.details)
    print(
        "| target | models | roofline median APE | roofline Spearman | baseline median APE | baseline Spearman | Failed → unsupported |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in res:
        print(
            f"| {r['target']} | {r['n']} | {r['median_ape']:.1%} | {r['spearman']:.3f} | "
            f"{r['baseline_median_ape']:.1%} | {r['baseline_spearman']:.3f} | {r['failed']} |"
        )
    every = [a for r in res for a in r["ape"]]
    every_base = [a for r in res for a in r["baseline_ape"]]
    print(
        f"| all targets | {len(every)} | {statistics.median(every):.1%} | | {statistics.median(every_base):.1%} | | |"
    )


if __name__ == "__main__":
    main()
