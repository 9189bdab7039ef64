"""Write the tables of docs/estimator-validation.md from the shipped corpus and profiles, now:

    .venv/bin/python scripts/estimator_doc.py [--page docs/estimator-validation.md] [--check]

Each table sits between ``<!-- generated: NAME by scripts/SCRIPT -->`` and ``<!-- end generated -->`` in the page;
this script replaces the blocks it owns (about two minutes on this project's 2-core machine: the cross-validation
of ``deploykit estimate --validate``, ``scripts/estimator_sparse_rows.py``'s experiments and
``scripts/estimator_size_extrapolation.py``'s constants) and leaves the prose
alone. ``scripts/estimator_eval.py --write`` owns the ``host-loo`` block (it needs the host's measurements).
``--check`` writes nothing and exits 1 when a block would change.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "estimator-validation.md"
_BLOCK = re.compile(r"(<!-- generated: (\S+) by scripts/(\S+) -->\n)(.*?)(<!-- end generated -->)", re.S)


def splice(page: str, name: str, body: str) -> str:
    """``page`` with block ``name``'s content replaced by ``body`` (the block must exist: a typo fails)."""
    found = [m for m in _BLOCK.finditer(page) if m.group(2) == name]
    if len(found) != 1:
        raise SystemExit(f"{len(found)} blocks named {name!r} in the page (want 1)")
    m = found[0]
    return page[: m.start(4)] + body.rstrip("\n") + "\n" + page[m.end(4) :]


def pct(v) -> str:
    return "–" if v is None else f"{v:.1%}"


def num(v) -> str:
    return "–" if v is None else f"{v:.3f}"


def table(head: list[str], right: set[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join("---:" if h in right else "---" for h in head) + " |"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def corpus_table() -> str:
    from deploykit import corpus

    by = defaultdict(list)
    for r in corpus.rows():
        by[(r.source, r.split)].append(r)
    rows = []
    for (source, split), rs in sorted(by.items(), key=lambda kv: (kv[0][1] != "fit", kv[0][0])):
        devices = sorted({f"{r.device} {r.compute_unit}" for r in rs})
        shown = ", ".join(devices) if len(devices) <= 6 else f"{len({r.device for r in rs})} devices"
        rows.append([f"`{source}`", split, str(len(rs)), shown])
    fit = sum(len(v) for (_, s), v in by.items() if s == "fit")
    held = sum(len(v) for (_, s), v in by.items() if s != "fit")
    rows.append(["all", "", f"{fit + held} ({fit} fit, {held} held out)", ""])
    return table(["source", "split", "rows", "devices"], {"rows"}, rows)


def validate() -> tuple[list[dict], list[dict]]:
    """What ``deploykit estimate --validate --json`` computes, in-process."""
    from deploykit import corpus
    from deploykit import estimator as E
    from deploykit.devices import load_profiles

    profiles = load_profiles()
    results = []
    for name in sorted(profiles):
        for t in [t for t in profiles[name].targets if t.peak_macs_per_s and t.mem_bw_bytes_per_s]:
            rows = E.training_rows(t, None, published=True)
            if len({(m, r) for m, r, *_ in rows}) >= 2 or corpus.rows_for(t, "heldout"):
                results.append(E.validate_target(t, rows))
    return results, E.family_transfer(profiles)


def lomo_table(results: list[dict]) -> str:
    rows = []
    for r in [r for r in results if r["models"] >= 2]:
        lomo, t16 = r["leave_one_model_out"], r["paper_table16"] or {}
        paper = "–" if not t16 else f"{t16['spearman_roofline']:.3f} / {t16['spearman_macs']:.3f}"
        rows.append([f"`{r['target']}`", str(r["rows"]), ", ".join(r["sources"]), pct(lomo.get("median_ape")),
                     num(lomo.get("spearman")), pct(lomo.get("interval_coverage")),
                     pct(lomo.get("baseline_median_ape")), num(lomo.get("baseline_spearman")), paper])  # fmt: skip
    head = ["target", "rows", "sources", "LOMO median error", "LOMO Spearman", "80% coverage", "MACs baseline error",
            "baseline Spearman", "paper Tab.16 Spearman (roofline / MACs)"]  # fmt: skip
    return table(head, {"rows", *head[3:8]}, rows)


def lodo_tables(families: list[dict]) -> tuple[str, str]:
    galaxy = [[r["target"], r["precision"], r["device"], "yes" if r["datasheet_scaled"] else "no", str(r["train_rows"]),
               pct(r.get("median_ape")), num(r.get("spearman")), pct(r.get("baseline_median_ape"))]
              for r in families if r["family"] == "Samsung"]  # fmt: skip
    head = ["target", "precision", "device", "datasheet-scaled", "train rows", "median error", "Spearman",
            "MACs baseline error"]  # fmt: skip
    by = defaultdict(list)
    for r in families:
        if r["family"] == "Qualcomm" and r.get("median_ape") is not None:
            by[(r["target"], r["precision"], r["datasheet_scaled"])].append(r)
    qualcomm = [[t, p, "yes" if s else "no", str(len(rs)), pct(statistics.median(r["median_ape"] for r in rs)),
                 pct(statistics.median(r["baseline_median_ape"] for r in rs))]
                for (t, p, s), rs in sorted(by.items())]  # fmt: skip
    qhead = ["target", "precision", "datasheet-scaled", "devices", "median error", "MACs baseline error"]
    return table(head, {"train rows", "median error", "Spearman", "MACs baseline error"}, galaxy), table(
        qhead, {"devices", "median error", "MACs baseline error"}, qualcomm
    )


def fitted_on(note: str) -> str:
    """A profile's ``fit`` note, short: what the target was fitted on, without the list of rows."""
    if m := re.match(r"borrowed from (\S+) \(its fit: .*? on (\d+ \S+) row\(s\).*ratio ([\d.]+)", note):
        return f"borrowed from `{m.group(1)}` ({m.group(2)} rows) × {m.group(3)}"
    if m := re.match(r"(.*?) on (\d+ \S+) row\(s\)", note):
        return f"{m.group(1)} on {m.group(2)} rows"
    if m := re.match(r"(.*?row\(s\)): .*?, (over the datasheet roofline)", note):
        return f"{m.group(1)} {m.group(2)}"
    return note


def _scores(res: list[dict]) -> list[str]:
    from deploykit import estimator as E

    ape = [abs(x["predicted_ms"] / x["measured_ms"] - 1) for x in res]
    inside = [x["low_ms"] <= x["measured_ms"] <= x["high_ms"] for x in res]
    lab = E.lab_agreement([(x["model"], x["resolution"], x["measured_ms"]) for x in res])
    rho = E.spearman([x["measured_ms"] for x in res], [x["predicted_ms"] for x in res])
    return [str(len(res)), pct(statistics.median(ape)), num(rho), pct(sum(inside) / len(inside)),
            f"{pct(lab['median_ape'])} / {num(lab['spearman'])}"]  # fmt: skip


# the subsets docs/estimator-validation.md discusses: StarNet's MobileNetV3 rows are a Neural Engine fallback
def _starnet_v3(x: dict) -> bool:
    return x["source"] == "starnet-paper" and x["model"].startswith("mnv3")


SUBSETS = [
    ("iphone13/coreml-ane/fp16", "without StarNet's MobileNetV3 rows", lambda x: not _starnet_v3(x)),
    ("iphone13/coreml-ane/fp16", "iformer-paper only", lambda x: x["source"] == "iformer-paper"),
    ("iphone13/coreml-ane/fp16", "swiftformer-paper only", lambda x: x["source"] == "swiftformer-paper"),
    ("iphone12/coreml-ane/fp16", "without StarNet's MobileNetV3 rows", lambda x: not _starnet_v3(x)),
]


def heldout_tables(results: list[dict]) -> tuple[str, str, str]:
    held = sorted((r for r in results if r.get("heldout")), key=lambda r: -r["heldout"]["rows"])
    rows = []
    for r in held:
        x = r["heldout"]
        cov = f"{pct(x['interval_coverage'])} ({round(x['interval_coverage'] * x['rows'])} of {x['rows']})"
        fitted = fitted_on(x["fitted_on"])
        lab = x["lab_agreement"]
        rows.append([f"`{r['target']}`", str(x["rows"]), ", ".join(x["sources"]), pct(x["median_ape"]),
                     num(x["spearman"]), cov, f"{pct(lab['median_ape'])} / {num(lab['spearman'])}", fitted])  # fmt: skip
    head = ["target", "held-out rows", "sources", "median error", "Spearman", "inside 80% interval",
            "labs' median: error / Spearman", "profile fitted on"]  # fmt: skip
    by_target = {r["target"]: r["heldout"]["residuals"] for r in held}
    subsets = [[f"`{t}` {label}", *_scores([x for x in by_target[t] if keep(x)])] for t, label, keep in SUBSETS]
    shead = ["subset", "rows", "median error", "Spearman", "inside 80% interval", "labs' median: error / Spearman"]
    per_row = [[f"`{r['target']}`", x["source"], f"{x['model']}@{x['resolution']}", str(x["measured_ms"]),
                f"{x['predicted_ms']:.2f}", f"{x['low_ms']:.2f}-{x['high_ms']:.2f}",
                f"{x['predicted_ms'] / x['measured_ms'] - 1:+.0%}"] for r in held for x in r["heldout"]["residuals"]]  # fmt: skip
    rhead = ["target", "source", "model", "published ms", "estimate ms", "80% interval", "error"]
    return (
        table(head, {"held-out rows", "median error", "Spearman", "inside 80% interval"}, rows),
        table(shead, set(shead[1:]), subsets),
        table(rhead, {"published ms", "estimate ms", "error"}, per_row),
    )


def shipped_table() -> str:
    from deploykit import estimator as E
    from deploykit.devices import load_profiles

    rows = []
    for _name, prof in sorted(load_profiles().items()):
        for t in prof.targets:
            roof = t.roofline or {}
            note = roof.get("fit")
            if not note:
                continue
            r = E.roofline_for(t)
            if m := re.match(r"borrowed from (\S+) .*ratio ([\d.]+)", note):
                basis, free = f"borrowed from `{m.group(1)}` × {m.group(2)}", "–"
            elif m := re.search(r"on (\d+) (\S+) row\(s\)", note):
                basis = f"{m.group(1)} ({m.group(2)})"
                f = re.search(r"free: ([\w, ]+)", note)
                free = str(len(f.group(1).split(","))) if f else "–"
            else:
                basis, free = note.split(":")[0], "–"
            iv = roof.get("interval")
            shown = f"×{iv[0]:.2f}-{iv[1]:.2f}" if iv else "×0.50-2.00"
            rows.append([f"`{t.id}`", basis, free,
                         f"{r.peak_macs_per_s / 1e9:.0f} ({E.datasheet_peak(t) / 1e9:.0f})",
                         f"{r.mem_bw_bytes_per_s / 1e9:.2f}", f"{r.dispatch_s * 1e6:.2f}", f"{r.invoke_s * 1e6:.0f}",
                         f"{r.eff('dwconv'):.3f}", shown])  # fmt: skip
    head = ["target", "rows (sources)", "free", "peak GMAC/s (datasheet)", "GB/s", "dispatch µs", "invoke µs",
            "dw eff.", "80% interval"]  # fmt: skip
    return table(head, set(head[2:8]), rows)


def size_tables(results: list[dict]) -> tuple[str, str]:
    """`estimate validate`'s leave-the-largest-model-out rows of the NPU targets, and their coverage with and
    without the size widening."""
    from deploykit import estimator as E

    rows = []
    for r in results:
        lo = r.get("leave_largest_out")
        for x in (lo or {}).get("residuals", []):
            rows.append([f"`{r['target']}`", lo["model"], f"{lo['ratio']:.1f}", str(x["measured_ms"]),
                         f"{x['predicted_ms']:.3g}", f"{x['low_ms']:.3g}-{x['high_ms']:.3g}",
                         f"{x['widened_low_ms']:.3g}-{x['widened_high_ms']:.3g}", "yes" if x["inside"] else "no",
                         "yes" if x["inside_widened"] else "no"])  # fmt: skip
    head = ["target", "left out", "× largest fitted", "published ms", "predicted ms", "80% interval", "widened",
            "inside", "inside widened"]  # fmt: skip
    sizes = E.size_coverage(results)
    summary = [[label, str(sizes[key]["rows"]), pct(sizes[key]["coverage"]), pct(sizes[key]["coverage_widened"])]
               for label, key in (("every row", "all"), (f"beyond {sizes['margin']:g}× (flagged and widened)",
                                  "beyond_margin"), ("beyond, fitted with an interval of its own (4+ models)",
                                  "beyond_margin_fitted_interval"))]  # fmt: skip
    return (
        table(head, {"× largest fitted", "published ms", "predicted ms"}, rows),
        table(["rows", "n", "inside the 80% interval", "inside, widened for size"], {"n"}, summary),
    )


def size_extrapolation() -> str:
    sys.path.insert(0, str(ROOT / "scripts"))
    import estimator_size_extrapolation

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        estimator_size_extrapolation.main()
    return "```\n" + buf.getvalue().rstrip() + "\n```"


def sparse_rows() -> str:
    sys.path.insert(0, str(ROOT / "scripts"))
    import estimator_sparse_rows

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        estimator_sparse_rows.main()
    return "```\n" + buf.getvalue().rstrip() + "\n```"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--page", default=str(PAGE))
    ap.add_argument("--check", action="store_true", help="exit 1 when the page is not what the data gives")
    a = ap.parse_args()
    page = Path(a.page).read_text()
    results, families = validate()
    galaxy, qualcomm = lodo_tables(families)
    held, subsets, per_row = heldout_tables(results)
    largest_out, size_summary = size_tables(results)
    blocks = {
        "corpus": corpus_table(),
        "shipped": shipped_table(),
        "lomo": lomo_table(results),
        "lodo-galaxy": galaxy,
        "lodo-qualcomm": qualcomm,
        "heldout": held,
        "heldout-subsets": subsets,
        "heldout-rows": per_row,
        "sparse-rows": sparse_rows(),
        "largest-out": largest_out,
        "largest-out-coverage": size_summary,
        "size-extrapolation": size_extrapolation(),
    }
    new = page
    for name, body in blocks.items():
        new = splice(new, name, body)
    if a.check:
        if new != page:
            print(f"{a.page} differs from what the data gives: run scripts/estimator_doc.py")
            raise SystemExit(1)
        return
    Path(a.page).write_text(new)
    print(f"wrote {len(blocks)} tables into {a.page}")


if __name__ == "__main__":
    main()
