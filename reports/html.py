"""``deploykit report``: one self-contained HTML file from the results store.

:func:`collect` turns the store (plus artifact manifests, the zoo's published facts and the estimator) into
plain JSON-able data; :func:`render` writes it as HTML. Tables are rendered here (every string escaped); the
plots are drawn in the browser by the inlined script from the same data, as SVG (no network, no libraries).

Points are never merged across provenance: a target's measured, estimated and published latencies are drawn
with different markers and each gets its own Pareto front.
"""

from __future__ import annotations

import html
import json
import math
import shlex
import time
from importlib import resources
from pathlib import Path

from deploykit.artifact import atomic_write_text
from deploykit.measurement import wilson
from deploykit.reports.pareto import interval_fronts, pareto_front

PROVENANCE_ORDER = ("measured", "estimated", "published")


def collect(db: str | Path, profiles: str | Path | None = None, roofline_device: str = "pixel6") -> dict:
    """The report's data, from the results store alone (plus the zoo's published facts and, for display
    names only, the device profiles): artifact files, the estimator and this machine are never consulted.

    A row's identity is its label (the model, plus its input shapes where they are not the model's plain
    batch-1 input), target and provenance: the same file at batch 1 and batch 8 is two points, two table rows."""
    from deploykit import __version__
    from deploykit.store import Store

    with Store(db) as store:
        rows = store.query()
        acc_rows = store.accuracy()
        manifests = store.artifacts()
    latest = _latest(rows)
    models = _models(sorted({r.model for r in latest.values()}), acc_rows)
    displays = _displays(profiles)
    targets = sorted({k[1] for k in latest})
    cells = [_cell(label, target, prov, r) for (label, target, prov), r in sorted(latest.items())]
    fronts, possibly = _fronts(cells, models, targets)
    # one table row per label (a model at each input shape it has rows for), and one per model known only by
    # its accuracy
    labels = {c["label"]: c["model"] for c in cells}
    labels.update((m, m) for m in models if m not in labels.values())
    fidelity, compat = _fidelity_and_compatibility(latest, manifests)
    return {
        "meta": {
            "created": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            "db": Path(db).name,
            "deploykit": __version__,
            "machines": _machines([r for r in latest.values() if r.provenance == "measured"]),
            "reproduce": reproduce_command(db),
            "measurements": len(rows),
        },
        "models": models,
        "labels": dict(sorted(labels.items())),
        "targets": [{"id": t, "display": displays.get(t.split("/")[0], t.split("/")[0])} for t in targets],
        "cells": cells,
        "fronts": fronts,
        "possibly_optimal": possibly,
        "universality": _universality(labels, fronts),
        "fidelity": fidelity,
        "compat": compat,
        "threads": _thread_scaling(latest),
        **_roofline(latest, roofline_device, displays),
        "npu_runtimes": _npu_runtimes(latest, displays),
        "layers_measured": _layers_measured(rows),
    }


PROVENANCE_MARK = {"measured": "●", "estimated": "△", "published": "■"}


def npu_runtime_names() -> dict[str, str]:
    """Every backend name that runs on an NPU, with what its plugin calls the runtime (AI Hub: "LiteRT (QNN
    delegate)", "ONNX Runtime (QNN execution provider)", Qualcomm's own), from the registered plugins."""
    from deploykit.backends.base import backends

    names: dict[str, str] = {}
    for plugin in backends():
        for name, runtime in plugin.serves.items():
            if runtime.processor == "npu":
                names.setdefault(name, getattr(plugin, "runtime_names", {}).get(name, name))
    return names


def _npu_runtimes(latest: dict, displays: dict[str, str]) -> list[dict]:
    """Per device with at least two NPU runtimes (a Snapdragon's LiteRT-QNN, ONNX Runtime-QNN and QNN): each
    (model, precision, provenance) a row, the runtimes its columns, so one row never mixes a measurement with an
    estimate; the compute units AI Hub reported."""
    npu = npu_runtime_names()
    by_device: dict[str, dict[tuple, dict]] = {}
    runtimes_seen: dict[str, set] = {}
    for (label, _target, prov), r in latest.items():
        if r.backend not in npu or r.status != "ok" or r.median_ms is None:
            continue
        row = by_device.setdefault(r.device, {}).setdefault((label, r.precision, prov), {})
        units = (r.delegate or {}).get("compute_units")
        row[r.backend] = {"ms": r.median_ms, "units": units or None}
        runtimes_seen.setdefault(r.device, set()).add(r.backend)
    out = []
    for device in sorted(by_device):
        if len(runtimes_seen[device]) < 2:
            continue
        rows = [
            {"label": label, "precision": precision, "provenance": prov, "runtimes": cells}
            for (label, precision, prov), cells in sorted(
                by_device[device].items(), key=lambda kv: (kv[0][0], kv[0][1], PROVENANCE_ORDER.index(kv[0][2]))
            )
        ]
        runtimes = {b: npu[b] for b in sorted(runtimes_seen[device])}
        out.append({"device": device, "display": displays.get(device, device), "runtimes": runtimes, "rows": rows})
    return out


def backend_processors() -> dict[str, str]:
    """Every backend name's processor class (cpu, gpu, dsp, npu), from the registered plugins."""
    from deploykit.backends.base import backends

    return {name: runtime.processor for plugin in backends() for name, runtime in plugin.serves.items()}


TOP_LAYERS = 8  # the slowest layers and the blind spots each list this many
BLIND_SPOT_SHARE = 0.01  # a blind spot takes at least this share of the model's measured or predicted time


def _layers_measured(rows: list) -> list[dict]:
    """Where the time goes, per (label, target) whose latest measured row carries a per-layer table
    (``details["layers_measured"]``, written by ``deploykit profile``: deploykit/profiling/join.py): time by op
    kind measured against the roofline's prediction over the same layers, the slowest layers, the layers that
    ran off the accelerator, those furthest from the roofline and what did not join."""
    procs = backend_processors()
    latest: dict[tuple[str, str], object] = {}
    for r in rows:
        table = r.details.get("layers_measured") if r.provenance == "measured" else None
        if table and (table.get("rows") or table.get("unmatched_ops")):
            latest[(row_label(r), r.target)] = r
    return [_where_time_goes(label, r, procs.get(r.backend, "cpu")) for (label, _), r in sorted(latest.items())]


def _where_time_goes(label: str, r, processor: str) -> dict:
    t = r.details["layers_measured"]
    layers = t.get("rows", [])

    def fallback(x: dict) -> bool:  # the runtime said so, or an accelerator target's op ran on a CPU
        return bool(x.get("fallback")) or (processor != "cpu" and "cpu" in (x.get("ran_on") or "").lower())

    joined = [x for x in layers if x.get("measured_ms") is not None]
    kinds: dict[str, dict] = {}
    for x in joined:
        k = kinds.setdefault(x["kind"], {"kind": x["kind"], "layers": 0, "measured_ms": 0.0, "predicted_ms": None})
        k["layers"] += 1
        k["measured_ms"] += x["measured_ms"]
        if x.get("predicted_ms") is not None:
            k["predicted_ms"] = (k["predicted_ms"] or 0.0) + x["predicted_ms"]
    measured = sum(x["measured_ms"] for x in joined)
    said = [x["predicted_ms"] for x in joined if x.get("predicted_ms") is not None]
    predicted = sum(said) if said else None
    for k in kinds.values():
        k["share"] = k["measured_ms"] / measured if measured else None
        k["ratio"] = k["measured_ms"] / k["predicted_ms"] if k["predicted_ms"] and k["measured_ms"] else None

    def brief(x: dict) -> dict:
        ratio = x["measured_ms"] / x["predicted_ms"] if x.get("predicted_ms") and x.get("measured_ms") else None
        return {
            "index": x["index"], "layer": x["layer"], "kind": x["kind"], "measured_ms": x.get("measured_ms"),
            "predicted_ms": x.get("predicted_ms"), "ratio": ratio, "intensity": x.get("intensity"),
            "bound": x.get("bound"), "ran_on": x.get("ran_on") or "", "fallback": fallback(x),
            "share": x["measured_ms"] / measured if measured and x.get("measured_ms") is not None else None,
            "op_types": x.get("op_types", []),
        }  # fmt: skip

    slowest = sorted((x for x in joined if x["measured_ms"] > 0), key=lambda x: -x["measured_ms"])[:TOP_LAYERS]
    floor = BLIND_SPOT_SHARE * max(measured, predicted or 0.0)
    far = [x for x in joined if x["measured_ms"] > 0 and (x.get("predicted_ms") or 0) > 0
           and max(x["measured_ms"], x["predicted_ms"]) >= floor]  # fmt: skip
    far.sort(key=lambda x: -abs(math.log(x["measured_ms"] / x["predicted_ms"])))
    return {
        "label": label,
        "model": r.model,
        "target": r.target,
        "device": r.device,
        "processor": processor,
        "created": r.created,
        "quality": r.quality,
        "source": t.get("source"),
        "runtime": t.get("runtime"),
        "runs": t.get("runs"),
        "resolution": t.get("resolution", r.resolution),
        "layers": t.get("layers", len(layers)),
        "matched": t.get("matched", {}),
        "matched_share": t.get("matched_share"),
        "op_sum_ms": t.get("op_sum_ms"),
        "timed_median_ms": t.get("timed_median_ms", r.median_ms),
        "timed_p50_ms": t.get("timed_p50_ms"),
        "predicted_total_ms": t.get("predicted_total_ms"),
        "measured_joined_ms": measured,
        "predicted_joined_ms": predicted,
        "kinds": sorted(kinds.values(), key=lambda k: (-k["measured_ms"], k["kind"])),
        "slowest": [brief(x) for x in slowest],
        "blind_spots": [brief(x) for x in far[:TOP_LAYERS]],
        "blind_spot_floor_ms": floor,
        "fallbacks": [brief(x) for x in layers if fallback(x)],
        "fallback_ops": [o for o in t.get("unmatched_ops", []) if fallback(o)],
        "unmatched_layers": t.get("unmatched_layers", []),
        "unmatched_ops": t.get("unmatched_ops", []),
        "unmatched_op_ms": t.get("unmatched_op_ms", 0.0),
        "notes": t.get("notes", []),
    }


def _latest(rows: list) -> dict[tuple[str, str, str], object]:
    """The latest row per (label, target, provenance), except that a clean ok row beats a newer noisy one."""
    latest: dict[tuple[str, str, str], object] = {}
    for r in rows:
        key = (row_label(r), r.target, r.provenance)
        have = latest.get(key)
        if have is not None and r.quality == "noisy" and have.quality != "noisy" and have.status == "ok":
            continue
        latest[key] = r
    return latest


def _models(measured_models: list[str], acc_rows: list[dict]) -> dict[str, dict]:
    """Per model: family, resolution and the top-1 the report plots, with where it comes from.

    A measured accuracy replaces the published one only on trained weights; prefer the most recent fp32
    evaluation, else the most recent of any precision. Others are shown beside, marked."""
    from deploykit.zoo import get_spec

    measured_acc: dict[str, dict] = {}
    beside: dict[str, dict] = {}
    for a in acc_rows:
        pool = measured_acc if a.get("weights_real") else beside
        cur = pool.get(a["model"])
        if cur is None or a["precision"] == "fp32" or cur["precision"] != "fp32":
            pool[a["model"]] = a
    models: dict[str, dict] = {}
    for model in sorted(set(measured_models) | set(measured_acc) | set(beside)):
        info: dict = {"name": model}
        try:
            spec = get_spec(model)
            pub = spec.published
            info.update(family=spec.family, resolution=spec.resolution)
            if pub is not None and pub.top1 is not None:
                info.update(top1=pub.top1, top1_source=pub.top1_source, accuracy_provenance="published")
        except Exception:  # a user's own model: no published facts
            info.update(family="user model")
        if model in measured_acc:
            a = measured_acc[model]
            low, high = wilson(round(a["top1"] * a["images"] / 100), a["images"])
            info.update(
                top1=a["top1"],
                top5=a["top5"],
                top1_source=f"deploykit eval of {Path(a['artifact'] or '').name} on {a['images']} images"
                f" ({a['dataset']}; 95% CI {100 * low:.1f}-{100 * high:.1f}%; weights {a.get('weights_source')})",
                accuracy_provenance="measured",
            )
        elif model in beside:
            a = beside[model]
            info["unused_accuracy"] = (
                f"{a['top1']:.1f}% measured by deploykit eval on {a['images']} images with seeded random weights:"
                " not the model's accuracy, not used"
            )
        models[model] = info
    return models


def _cell(label: str, target: str, prov: str, r) -> dict:
    cost = r.cost()
    return {
        **{k: cost[k] for k in ("load_ms", "first_ms", "p99_ms", "memory_bytes", "size_bytes", "threads", "batch")},
        "throughput_ips": cost["throughput_ips"],
        "memory_what": ((r.env or {}).get("memory") or {}).get("what")
        or ("weights plus planned activation arena, from the graph" if cost["memory_bytes"] else None),
        "load_covers": (r.env or {}).get("load_covers"),
        "model": r.model,
        "label": label,
        "input_shapes": (r.env or {}).get("input_shapes"),
        "target": target,
        "device": r.device,
        "provenance": prov,
        "status": r.status,
        "median_ms": r.median_ms,
        "low_ms": (r.details.get("interval") or {}).get("low_ms"),
        "high_ms": (r.details.get("interval") or {}).get("high_ms"),
        "interval_basis": (r.details.get("interval") or {}).get("basis"),
        "p90_ms": r.stats.p90 if r.stats else None,
        "error": r.error,
        "quality": r.quality,
        "quality_reasons": r.details.get("quality_reasons", []),
        "warnings": r.warnings,
        "artifact": Path(r.artifact).name if r.artifact else None,
        "created": r.created,
    }


def _thread_scaling(latest: dict) -> dict[str, dict[str, list]]:
    """Per target, per label (without its thread count): ``[[threads, median ms], ...]`` of the measured rows
    of ``bench --threads``, in thread order."""
    out: dict[str, dict[str, list]] = {}
    for r in latest.values():
        n = (r.env or {}).get("threads_requested")
        if r.provenance == "measured" and r.status == "ok" and n and r.median_ms:
            out.setdefault(r.target, {}).setdefault(row_label(r, threads=False), []).append([n, r.median_ms])
    return {t: {m: sorted(v) for m, v in sorted(by.items())} for t, by in sorted(out.items())}


def _fronts(cells: list[dict], models: dict, targets: list[str]) -> tuple[dict, dict]:
    """Per target and provenance, the labels on the accuracy/latency front, and apart those only possibly on it
    (estimates, whose intervals overlap)."""
    fronts: dict[str, dict[str, list[str]]] = {}
    possibly: dict[str, dict[str, list[str]]] = {}
    for target in targets:
        for prov in PROVENANCE_ORDER:
            pts = [
                c
                for c in cells
                if c["target"] == target
                and c["provenance"] == prov
                and c["status"] == "ok"
                and c["median_ms"] is not None
                and models[c["model"]].get("top1") is not None
            ]
            if not pts:
                continue
            if all(c.get("low_ms") is not None for c in pts):
                # latencies known only within their interval (estimates): optimal only where the intervals
                # allow it; the rest of the possibly-optimal points are listed apart
                sure, possible = interval_fronts([(c["low_ms"], c["high_ms"], models[c["model"]]["top1"]) for c in pts])
                fronts.setdefault(target, {})[prov] = [pts[i]["label"] for i in sure]
                maybe = [pts[i]["label"] for i in possible if i not in sure]
                if maybe:
                    possibly.setdefault(target, {})[prov] = maybe
            else:
                idx = pareto_front([(c["median_ms"], models[c["model"]]["top1"]) for c in pts])
                fronts.setdefault(target, {})[prov] = [pts[i]["label"] for i in idx]
    return fronts, possibly


def _universality(labels: dict[str, str], fronts: dict) -> dict[str, list[str]]:
    """Per label, the targets on whose front it is (measured beats estimated beats published)."""
    universality: dict[str, list[str]] = {label: [] for label in labels}
    for target, by_prov in fronts.items():
        primary = next(p for p in PROVENANCE_ORDER if p in by_prov)
        for label in by_prov[primary]:
            universality[label].append(target)
    return universality


def _fidelity_and_compatibility(latest: dict, manifests: dict) -> tuple[list[dict], list[dict]]:
    """Each measured artifact's fidelity, and its compatibility findings beside what devices reported."""
    fidelity, compat = [], []
    shas = dict.fromkeys(r.artifact_sha256 for r in latest.values() if r.artifact_sha256)
    # What the device itself said ran off the unit asked for (AI Hub's per-layer compute units), per artifact and
    # backend: shown beside the static rules for the same backend, so a prediction meets its outcome.
    observed: dict[tuple, list[str]] = {}
    for r in latest.values():
        if r.provenance == "measured" and r.artifact_sha256 and "fallback_layers" in (r.delegate or {}):
            d = r.delegate
            said = f"{r.target}: {len(d['fallback_layers'])} of {d.get('layers', '?')} layers off {d.get('asked', '?')}"
            said += (" (" + ", ".join(d["fallback_layers"][:6]) + ")") if d["fallback_layers"] else ""
            observed.setdefault((r.artifact_sha256, r.backend), []).append(said)
    for sha in shas:
        man = manifests.get(sha)
        if man is None:
            continue
        f = man.fidelity or {}
        fidelity.append(
            {
                "artifact": man.file,
                "model": man.model.get("name"),
                "format": man.format,
                "precision": man.precision,
                "status": man.status,
                "reference": f.get("reference"),
                "cosine_min": f.get("cosine_min"),
                "snr_db": f.get("snr_db"),
                "top1_agreement": f.get("top1_agreement"),
                "threshold": f.get("threshold"),
                "passed": f.get("passed"),
                "vs_fp32_cosine": (f.get("vs_fp32") or {}).get("cosine_min"),
            }
        )
        static = man.compatibility or {}
        for tgt, rep in static.items():
            s = rep.get("summary", {})
            compat.append(
                {
                    "artifact": man.file,
                    "target": tgt,
                    "observed": observed.get((sha, tgt), []),
                    "errors": s.get("errors", 0),
                    "warnings": s.get("warnings", 0),
                    "first_unsupported_op": s.get("first_unsupported_op"),
                    "findings": [
                        f"{'' if x.get('op') is None else x['op']}: {x.get('reason', x.get('message', ''))}"
                        for x in rep.get("findings", [])[:8]
                    ],
                }
            )
        for (o_sha, backend), said in observed.items():  # measured fallbacks where no static rule exists
            if o_sha == sha and backend not in static:
                compat.append(
                    {
                        "artifact": man.file,
                        "target": backend,
                        "observed": said,
                        "errors": None,
                        "warnings": None,
                        "first_unsupported_op": None,
                        "findings": ["no static rules for this backend"],
                    }
                )
    return fidelity, compat


def _displays(profiles) -> dict[str, str]:
    """Device display names, from the profiles where they load (decoration only: ids are shown without)."""
    try:
        from deploykit.devices import load_profiles

        return {p.name: p.display for p in load_profiles(profiles).values()}
    except Exception:
        return {}


def _machines(measured: list) -> list[dict]:
    """The machines that measured (host name, CPU, runtimes) as stored with each measured row."""
    out: dict[str, dict] = {}
    for r in measured:
        env = r.env or {}
        device = env.get("device") or {}
        name = env.get("hostname") or env.get("host") or device.get("serial") or r.device
        if env.get("service"):  # a hosted service's device measured it, not the machine that submitted the job
            name = f"{env['service']}: {device.get('model', r.device)}"
        m = out.setdefault(
            name,
            {
                "name": name,
                "device": r.device,
                "cpu": env.get("cpu_model") or device.get("model") or env.get("machine") or "?",
                "cpus": env.get("logical_cpus"),
                "simd": env.get("simd", []),
                "runtimes": [],
                "rows": 0,
            },
        )
        m["rows"] += 1
        if env.get("runtime") and env["runtime"] not in m["runtimes"]:
            m["runtimes"].append(env["runtime"])
    return sorted(out.values(), key=lambda m: m["name"])


def _roofline(latest: dict, preferred: str, displays: dict[str, str]) -> dict:
    """Per model: the stored per-layer breakdown and ridge sweep of its estimate on one device, and which device
    that is (``roofline_device``, None when no estimate has a breakdown): ``preferred`` where it has estimates,
    else the device with the most estimated models (the first by name on a tie). The others are named too."""
    estimated = [r for r in latest.values() if r.provenance == "estimated" and r.details.get("layers")]
    models_on: dict[str, set[str]] = {}
    for r in estimated:
        models_on.setdefault(r.device, set()).add(r.model)
    if not models_on:
        return {"roofline": {}, "roofline_device": None}
    device = preferred if preferred in models_on else min(models_on, key=lambda d: (-len(models_on[d]), d))
    out = {}
    for r in sorted(estimated, key=lambda r: (r.model, r.target)):
        if r.device == device and r.model not in out:
            d = r.details
            out[r.model] = {
                "target": r.target,
                "ridge": d.get("ridge"),
                "layers": d["layers"],
                "sweep": d.get("sweep", []),
            }
    shown = {"id": device, "display": displays.get(device, device), "others": sorted(set(models_on) - {device})}
    return {"roofline": out, "roofline_device": shown}


def row_label(r, threads: bool = True) -> str:
    """A row's name in the report: its model's, plus the input shapes it was fed (``x [x=8,3,96,96]``) where
    they are not the model's plain input (one image, batch 1, at the model's resolution): a batch of 8 or a
    file's dynamic size is another point, never plotted or tabled as the model's batch-1 row. A row of
    ``bench --threads`` adds its thread count (``x [threads=1]``), unless ``threads`` is False."""
    shapes = (r.env or {}).get("input_shapes") or {}
    said = []
    if shapes and not _plain_input(shapes, r.resolution):
        said.append("; ".join(f"{name}={','.join(map(str, dims)) or 'scalar'}" for name, dims in shapes.items()))
    if threads and (r.env or {}).get("threads_requested"):
        said.append(f"threads={r.env['threads_requested']}")
    return f"{r.model} [{'; '.join(said)}]" if said else r.model


def _plain_input(shapes: dict, resolution: int) -> bool:
    """One batch-1 image at ``resolution``, channels first or last: the shape a zoo model's row implies."""
    if len(shapes) != 1 or not resolution:
        return False
    dims = list(next(iter(shapes.values())))
    return dims in ([1, 3, resolution, resolution], [1, resolution, resolution, 3])


# ------------------------------------------------------------------------------------------------ render

e = html.escape


def _fmt(v, digits=3) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def _heat(ms: float, lo: float, hi: float) -> str:
    t = 0.0 if hi <= lo else (math.log(ms) - math.log(lo)) / (math.log(hi) - math.log(lo))
    return f"hsl({int(120 - 120 * t)}, 70%, 85%)"


def _table(table_id: str, headers: list[str], rows: list[str]) -> str:
    """A table with an id (tests and readers find it by that), escaped header cells and pre-rendered rows, in a
    box of the page's width that scrolls sideways when the table is wider (many targets): the page never does."""
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    table = f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    return f'<div class="table-box">{table}</div>'


def _latency_table(data: dict) -> str:
    targets = [t["id"] for t in data["targets"]]
    by = {(c["label"], c["target"]): [] for c in data["cells"]}
    for c in data["cells"]:
        by[(c["label"], c["target"])].append(c)
    span = {}  # per target: the latency range its cells are heat-coloured over
    for t in targets:
        vals = [x["median_ms"] for x in data["cells"] if x["target"] == t and x["median_ms"]]
        span[t] = (min(vals), max(vals)) if vals else (1.0, 1.0)
    body = []
    for label, model in data["labels"].items():
        tds = []
        for t in targets:
            cs = sorted(by.get((label, t), []), key=lambda c: PROVENANCE_ORDER.index(c["provenance"]))
            if not cs:
                tds.append('<td class="empty">·</td>')
                continue
            parts, style = [], ""
            for c in cs:
                if c["status"] == "ok" and c["median_ms"] is not None:
                    style = style or f' style="background:{_heat(c["median_ms"], *span[t])}"'
                    noisy = c.get("quality") == "noisy"
                    why = f' title="noisy: {e("; ".join(c["quality_reasons"]))}"' if noisy else ""
                    parts.append(
                        f'<span class="{c["provenance"]}{" noisy" if noisy else ""}"{why}>{c["median_ms"]:.2f} ms'
                        f" <small>{c['provenance']}{' · noisy' if noisy else ''}</small></span>"
                    )
                else:
                    why = e(c["error"] or c["status"])
                    parts.append(
                        f'<span class="bad {c["status"]}" title="{why}">{e(c["status"])} <small>{c["provenance"]}</small></span>'
                    )
            tds.append(f"<td{style}>{'<br>'.join(parts)}</td>")
        n = len(data["universality"].get(label, []))
        unused = data["models"][model].get("unused_accuracy")
        note = f'<br><small class="unused">{e(unused)}</small>' if unused else ""
        body.append(f'<tr data-model="{e(label)}"><th>{e(label)}{note}</th><td class="num">{n}</td>{"".join(tds)}</tr>')
    return _table("latency-table", ["model", "Pareto-optimal on", *targets], body)


def _universality_table(data: dict) -> str:
    rows = sorted(data["universality"].items(), key=lambda kv: (-len(kv[1]), kv[0]))
    n_targets = len(data["fronts"])
    # the bar shares the count's cell: a column of its own had no header and, for most models, nothing in it
    body = [
        f'<tr data-model="{e(m)}"><th>{e(m)}</th><td class="num">{len(ts)} / {n_targets}'
        f'<div class="bar" style="width:{(100 * len(ts) / n_targets) if n_targets else 0:.0f}%"></div></td>'
        f"<td>{e(', '.join(ts)) or '–'}</td></tr>"
        for m, ts in rows
    ]
    return _table("universality-table", ["model", "Pareto-optimal on", "targets"], body)


def _fidelity_table(data: dict) -> str:
    if not data["fidelity"]:
        return "<p>No artifacts with manifests are referenced by the stored measurements.</p>"
    body = [
        f"<tr><td>{e(f['artifact'])}</td><td>{e(f['format'])}</td><td>{e(f['precision'])}</td>"
        f"<td>{e(str(f['status']))}</td><td>{e(str(f['reference'] or '–'))}</td><td class='num'>{_fmt(f['cosine_min'], 5)}</td>"
        f"<td class='num'>{_fmt(f['snr_db'], 1)}</td><td class='num'>{_fmt(f['top1_agreement'], 2)}</td>"
        f"<td class='num'>{_fmt(f['threshold'], 4)}</td><td class='num'>{_fmt(f['vs_fp32_cosine'], 4)}</td></tr>"
        for f in data["fidelity"]
    ]
    headers = ["artifact", "format", "precision", "status", "reference", "cosine (min)", "SNR dB", "top-1 agree"]
    return _table("fidelity-table", [*headers, "threshold", "int8 vs fp32 cosine"], body)


def _compat_table(data: dict) -> str:
    if not data["compat"]:
        return "<p>No compatibility reports in the referenced manifests.</p>"
    dash = lambda v: "–" if v is None else v  # noqa: E731
    body = [
        f"<tr><td>{e(c['artifact'])}</td><td>{e(c['target'])}</td><td class='num'>{dash(c['errors'])}</td>"
        f"<td class='num'>{dash(c['warnings'])}</td><td>{e(str(c['first_unsupported_op'] or '–'))}</td>"
        f"<td><small>{'<br>'.join(e(x) for x in c['findings']) or 'no findings'}</small></td>"
        f"<td><small>{'<br>'.join(e(x) for x in c.get('observed') or []) or '–'}</small></td></tr>"
        for c in data["compat"]
    ]
    headers = ["artifact", "backend", "errors", "warnings", "first unsupported op", "static findings (first 8)"]
    headers.append("measured on the device (layers off the unit asked for)")
    return _table("compat-table", headers, body)


AXIS_CHOICES = (
    ("median_ms", "latency (median)"),
    ("p90_ms", "p90 latency"),
    ("first_ms", "first inference"),
    ("load_ms", "load (cold start)"),
    ("memory_bytes", "peak memory"),
    ("size_bytes", "file size"),
)


def _axis_switch() -> str:
    options = "".join(f'<option value="{v}">{e(text)}</option>' for v, text in AXIS_CHOICES)
    return (
        '<p class="axis-switch"><label for="pareto-axis">x-axis:</label> '
        f'<select id="pareto-axis">{options}</select> <small>latency fronts take estimates\' intervals into'
        " account; on the other axes each provenance's front is drawn from the points that have the figure"
        " (a measured row's memory is its process's peak over an empty one of the same runtime; an estimate's is"
        " weights plus the planned activations)</small></p>"
    )


def _threads_section(data: dict) -> str:
    """One thread-scaling plot per target measured at several thread counts; no section without any."""
    if not data["threads"]:
        return ""
    figures = "".join(
        f'<figure class="plot"><figcaption>{e(t)}: median latency by thread count</figcaption>'
        f'<div class="threads-plot" data-target="{e(t)}"></div></figure>'
        for t in data["threads"]
    )
    return (
        '<section id="threads"><h2>Thread scaling (<code>bench --threads</code>)</h2>'
        f'<div class="plots">{figures}</div></section>'
    )


def _mib(v) -> str:
    return "–" if v is None else f"{v / 2**20:.1f}"


def _cards_section(data: dict) -> str:
    """A deployment card per model: every target's latency (each provenance its own row, never mixed), its cold
    start (load, first inference), memory and file size where the row has them, and the model's fidelity and
    compatibility findings."""
    by_model: dict[str, list] = {}
    for c in data["cells"]:
        by_model.setdefault(c["model"], []).append(c)
    of_file = {f["artifact"]: f["model"] for f in data["fidelity"]}
    cards = []
    for i, (model, cells) in enumerate(sorted(by_model.items())):
        cells = sorted(cells, key=lambda c: (PROVENANCE_ORDER.index(c["provenance"]), c["target"], c["label"]))
        rows = []
        for c in cells:
            ok = c["status"] == "ok"
            cold = c["load_ms"] + c["first_ms"] if c["load_ms"] is not None and c["first_ms"] is not None else None
            mem_title = f' title="{e(c["memory_what"])}"' if c.get("memory_what") else ""
            load_title = f' title="{e(c["load_covers"])}"' if c.get("load_covers") else ""
            rows.append(
                f'<tr data-target="{e(c["target"])}" data-provenance="{c["provenance"]}">'
                f"<td>{e(c['target'])}</td><td>{e(c['label'])}</td>"
                f'<td><span class="{c["provenance"]}">{c["provenance"]}</span></td>'
                f"<td class='num'>{_fmt(c['median_ms']) if ok else e(c['status'])}</td>"
                f"<td class='num'>{_fmt(c['p90_ms'])}</td><td class='num'{load_title}>{_fmt(c['load_ms'], 1)}</td>"
                f"<td class='num'>{_fmt(c['first_ms'])}</td><td class='num'>{_fmt(cold, 1)}</td>"
                f"<td class='num'{mem_title}>{_mib(c['memory_bytes'])}</td><td class='num'>{_mib(c['size_bytes'])}</td>"
                f"<td class='num'>{c['threads'] if c['threads'] is not None else '–'}</td></tr>"
            )
        headers = ["target", "row", "provenance", "latency ms", "p90", "load ms", "first ms", "cold start ms"]
        table = _table(f"card-table-{i}", [*headers, "memory MiB", "size MiB", "threads"], rows)
        fid = [f for f in data["fidelity"] if f["model"] == model]
        fid_items = "".join(
            f"<li>{e(f['artifact'])}: {e(str(f['status']))}"
            + (f", cosine {_fmt(f['cosine_min'], 5)}" if f["cosine_min"] is not None else "")
            + (f", top-1 agreement {_fmt(f['top1_agreement'], 2)}" if f["top1_agreement"] is not None else "")
            + "</li>"
            for f in fid
        )
        comp = [c for c in data["compat"] if of_file.get(c["artifact"]) == model]
        comp_items = "".join(
            f"<li>{e(c['artifact'])} on {e(c['target'])}: "
            + (f"{c['errors']} error(s), {c['warnings']} warning(s)" if c["errors"] is not None else "measured only")
            + (f", first unsupported op {e(str(c['first_unsupported_op']))}" if c["first_unsupported_op"] else "")
            + ("; " + e("; ".join(c["observed"])) if c.get("observed") else "")
            + "</li>"
            for c in comp
        )
        info = data["models"].get(model, {})
        top1 = (
            f"top-1 {info['top1']}% ({e(info.get('accuracy_provenance', ''))})" if info.get("top1") else "top-1 unknown"
        )
        cards.append(
            f'<article class="card" id="card-{e(model)}" data-model="{e(model)}"><h3>{e(model)}</h3>'
            f"<p>{e(info.get('family', ''))}; {top1}</p>{table}"
            f"<h4>Fidelity</h4><ul class='card-fidelity'>{fid_items or '<li>no measured artifact with a manifest</li>'}</ul>"
            f"<h4>Compatibility</h4><ul class='card-compat'>{comp_items or '<li>no findings recorded</li>'}</ul></article>"
        )
    return (
        '<section id="cards"><h2>Deployment cards</h2><p>Per model: every target\'s latency (measured, estimated and'
        " published rows apart), its cold start (load, the first inference), memory and file size where the row has"
        " them (hover a memory figure for what it is), and the fidelity and compatibility findings of its"
        f" files.</p>{''.join(cards)}</section>"
    )


def _roofline_section(data: dict) -> str:
    """The roofline plots of the one device whose estimates they break down, named in the heading; no section
    at all when no estimate has a per-layer breakdown."""
    shown = data["roofline_device"]
    if shown is None:
        return ""
    figures = "".join(
        f'<figure class="plot"><figcaption>{e(name)} on {e(r["target"])}</figcaption>'
        f'<div class="roofline" data-model="{e(name)}"></div><div class="sweep" data-model="{e(name)}"></div></figure>'
        for name, r in data["roofline"].items()
    )
    others = (
        f"<p>Estimates on {e(', '.join(shown['others']))} have their own breakdowns, not drawn here"
        " (<code>deploykit estimate MODEL --device DEVICE --layers --sweep</code> prints one).</p>"
        if shown["others"]
        else ""
    )
    return (
        f'<section id="roofline"><h2>Roofline on {e(shown["display"])} <small>({e(shown["id"])})</small>:'
        " per-layer operational intensity vs share of time, and the ridge-point sweep</h2>"
        f'{others}<div class="plots">{figures}</div></section>'
    )


def _npu_runtimes_section(devices: list[dict]) -> str:
    """Which runtime to ship on a Snapdragon NPU: per device, each model on the three runtimes side by side."""
    if not devices:
        return ""
    parts = []
    for d in devices:
        rows = []
        for r in d["rows"]:
            fastest = min(c["ms"] for c in r["runtimes"].values())
            cells = []
            for backend in d["runtimes"]:
                c = r["runtimes"].get(backend)
                if c is None:
                    cells.append("<td>–</td>")
                    continue
                units = " · ".join(f"{u} {n}" for u, n in sorted(c["units"].items())) if c["units"] else ""
                text = f"{_fmt(c['ms'])}" + (f"<br><small>{e(units)}</small>" if units else "")
                cells.append(
                    f"<td><b>{text}</b></td>" if c["ms"] == fastest and len(r["runtimes"]) > 1 else f"<td>{text}</td>"
                )
            mark = PROVENANCE_MARK[r["provenance"]]
            rows.append(
                f'<tr><th>{e(r["label"])}</th><td>{e(r["precision"])}</td><td class="{e(r["provenance"])}">{mark}'
                f" {e(r['provenance'])}</td>{''.join(cells)}</tr>"
            )
        headers = ["model", "precision", "provenance", *(f"{v} ms" for v in d["runtimes"].values())]
        parts.append(
            f"<h3>{e(d['display'])} <small>({e(d['device'])})</small></h3>"
            + _table(f"npu-runtimes-{d['device']}", headers, rows)
        )
    return (
        '<section id="npu-runtimes"><h2>Which runtime on the NPU</h2><p>The same model through each runtime that'
        " reaches a device's NPU (on a Snapdragon: LiteRT with the QNN delegate, ONNX Runtime with the QNN"
        " execution provider, Qualcomm's own runtime compiled by AI Hub); a row holds one provenance, never mixed;"
        " the fastest in bold; under a measured figure, the layers per compute unit the runtime reported.</p>"
        f"{''.join(parts)}</section>"
    )


def _ratio(v) -> str:
    """measured / predicted as a factor: ×2.4 slower than the roofline, ×1/3.1 faster."""
    if v is None:
        return "–"
    return f"×{v:.2g}" if v >= 1 else f"×1/{1 / v:.2g}"


def _pct(v) -> str:
    return "–" if v is None else f"{v:.1%}"


def _layer_rows(xs: list[dict], ratio: bool = True) -> list[str]:
    out = []
    for x in xs:
        on = e(x["ran_on"] or "–") + (' <b class="fallback">fallback</b>' if x["fallback"] else "")
        out.append(
            f'<tr class="{"fallback" if x["fallback"] else ""}"><td class="num">{x["index"]}</td>'
            f"<th>{e(x['layer'])}</th><td>{e(x['kind'])}</td><td class='num'>{_fmt(x['measured_ms'])}</td>"
            f"<td class='num'>{_fmt(x['predicted_ms'])}</td>"
            + (f"<td class='num'>{_ratio(x['ratio'])}</td>" if ratio else "")
            + f"<td class='num'>{_pct(x['share'])}</td>"
            f"<td class='num'>{_fmt(x['intensity'], 1)}</td><td>{e(x['bound'] or '–')}</td><td>{on}</td></tr>"
        )
    return out


LAYER_HEADERS = ["#", "layer", "kind", "measured ms", "predicted ms", "measured / predicted", "share", "MACs/B"]


def _layers_section(entries: list[dict]) -> str:
    """Where the time goes: per (model, target) with a stored per-layer profile, time by op kind against the
    roofline, the slowest layers, fallbacks, the layers furthest from the roofline, and what did not join."""
    if not entries:
        return ""
    parts = []
    for i, d in enumerate(entries):
        top = max([max(k["measured_ms"], k["predicted_ms"] or 0.0) for k in d["kinds"]] or [0.0]) or 1.0
        kinds = [
            f'<tr data-kind="{e(k["kind"])}"><th>{e(k["kind"])}</th><td class="num">{k["layers"]}</td>'
            f"<td class='num'>{_fmt(k['measured_ms'])}</td><td class='num'>{_fmt(k['predicted_ms'])}</td>"
            f"<td class='num'>{_ratio(k['ratio'])}</td>"
            f"<td class='num'>{_pct(k['share'])}</td>"
            f'<td class="bars"><div class="bar" style="width:{100 * k["measured_ms"] / top:.1f}%"></div>'
            f'<div class="bar predicted" style="width:{100 * (k["predicted_ms"] or 0) / top:.1f}%"></div></td></tr>'
            for k in d["kinds"]
        ]
        if d["unmatched_ops"]:
            kinds.append(
                f"<tr><th><i>ops on no layer</i></th><td class='num'>{len(d['unmatched_ops'])} op(s)</td>"
                f"<td class='num'>{_fmt(d['unmatched_op_ms'])}</td><td>–</td><td>–</td><td>–</td><td></td></tr>"
            )
        kind_table = _table(
            f"layers-kinds-{i}",
            [
                "op kind",
                "layers",
                "measured ms",
                "predicted ms",
                "measured / predicted",
                "share",
                "measured · predicted",
            ],
            kinds,
        )
        slow = _table(f"layers-slowest-{i}", [*LAYER_HEADERS, "bound", "ran on"], _layer_rows(d["slowest"]))
        blind = (
            _table(f"layers-blind-{i}", [*LAYER_HEADERS, "bound", "ran on"], _layer_rows(d["blind_spots"]))
            if d["blind_spots"]
            else "<p>No layer has both a measured time and a roofline prediction.</p>"
        )
        if d["fallbacks"] or d["fallback_ops"]:
            fb_rows = _layer_rows(d["fallbacks"])
            fb_rows += [
                f'<tr class="fallback"><td>–</td><th>{e(o["name"])}</th><td>{e(o.get("kind") or "")}</td>'
                f"<td class='num'>{_fmt(o.get('ms'))}</td><td>–</td><td>–</td><td>–</td><td>–</td><td>–</td>"
                f'<td>{e(o.get("ran_on") or "–")} <b class="fallback">fallback</b></td></tr>'
                for o in d["fallback_ops"]
            ]
            fallbacks = (
                f"<h4>Fallbacks: {len(d['fallbacks'])} layer(s), {len(d['fallback_ops'])} other op(s) off the"
                f" {e(d['processor'].upper())}</h4>"
                + _table(f"layers-fallbacks-{i}", [*LAYER_HEADERS, "bound", "ran on"], fb_rows)
            )
        else:
            fallbacks = (
                "<h4>Fallbacks</h4><p class='layers-no-fallback'>None: no op ran off the"
                f" {e(d['processor'].upper())} or the delegate the target asked for.</p>"
            )
        unmatched_ops = "".join(
            f"<li>{e(o['name'])} <small>({e(o.get('op_type') or '')}, {e(o.get('kind') or '')}, "
            f"{_fmt(o.get('ms'))} ms{', ' + e(o['ran_on']) if o.get('ran_on') else ''})</small></li>"
            for o in d["unmatched_ops"]
        )
        unmatched = (
            f"<h4>Not joined</h4><p>Layers no op ran: {e(', '.join(d['unmatched_layers'])) or 'none'}.</p>"
            f"<p>Ops that ran no layer ({_fmt(d['unmatched_op_ms'])} ms):</p>"
            f'<ul class="layers-unmatched" id="layers-unmatched-{i}">{unmatched_ops or "<li>none</li>"}</ul>'
        )
        m = d["matched"]
        timed = f"timed median {_fmt(d['timed_median_ms'])} ms" if d["timed_median_ms"] is not None else "no timed run"
        if d.get("timed_p50_ms") is not None:
            timed += f" (p50 {_fmt(d['timed_p50_ms'])} ms)"
        noisy = ' <span class="noisy">noisy</span>' if d["quality"] == "noisy" else ""
        notes = "".join(f"<li>{e(n)}</li>" for n in d["notes"])
        parts.append(
            f'<article class="layers" id="layers-{i}" data-model="{e(d["label"])}" data-target="{e(d["target"])}">'
            f"<h3>{e(d['label'])} on {e(d['target'])}</h3>"
            f"<p>{e(d['source'] or '')}{', ' + e(d['runtime']) if d['runtime'] else ''}, {d['runs']} profiled run(s),"
            f" {e(str(d['created']))}{noisy}. Each op's time summed: {_fmt(d['op_sum_ms'])} ms; {timed}; the roofline"
            f" predicts {_fmt(d['predicted_total_ms'])} ms. Matched {sum(m.values())}/{d['layers']} layers"
            f" ({m.get('name', 0)} by name, {m.get('order', 0)} by order, {m.get('fused', 0)} fused into another"
            f" layer's op).</p>{'<ul>' + notes + '</ul>' if notes else ''}"
            f"<h4>By op kind</h4>{kind_table}<h4>The slowest layers</h4>{slow}"
            f"<h4>Furthest from the roofline (the estimator's blind spots)</h4>{blind}{fallbacks}{unmatched}</article>"
        )
    return (
        '<section id="layers"><h2>Where the time goes (per-layer profiles)</h2><p>Per model and target that'
        " <code>deploykit profile</code> stored a per-layer table for (its latest): each op's time from the runtime's"
        " own profiler, joined to the model's layers, against what the roofline predicted for the same layers. By"
        " op kind, the blue bar is measured and the orange one predicted, on one scale per table; a fused layer ran"
        " inside another layer's op and counts 0 ms of its own. The blind spots are the layers whose measured time"
        f" is furthest from the prediction (|log measured / predicted|) among those taking at least"
        f" {BLIND_SPOT_SHARE:.0%} of the measured or predicted total. A fallback is an op the runtime ran off the"
        f" accelerator the target asked for.</p>{''.join(parts)}</section>"
    )


def _interval_svg(c: dict, threshold: float) -> str:
    """The ratio and its 95% interval on a log axis from 1/2× to 2×, over the ±threshold band: a glance shows
    whether the interval clears the band."""
    if c.get("ratio") is None:
        return ""
    width, span = 160, math.log(2)
    x = lambda r: width / 2 + width / 2 * max(-1.0, min(1.0, math.log(r) / span))  # noqa: E731
    band = f'<rect x="{x(1 / (1 + threshold)):.1f}" y="0" width="{x(1 + threshold) - x(1 / (1 + threshold)):.1f}" height="14" fill="#eee"/>'
    line = (
        f'<line x1="{x(c["low"]):.1f}" x2="{x(c["high"]):.1f}" y1="7" y2="7" stroke="#333" stroke-width="2"/>'
        if c.get("low")
        else ""
    )
    centre = f'<line x1="{width / 2}" x2="{width / 2}" y1="0" y2="14" stroke="#999"/>'
    dot = f'<circle cx="{x(c["ratio"]):.1f}" cy="7" r="3.5" fill="#333"/>'
    return f'<svg class="interval" width="{width}" height="14" role="img">{band}{centre}{line}{dot}</svg>'


def _comparison_section(cmp: dict | None) -> str:
    """``deploykit report --compare BASE NEW``: each cell's ratio new / base with its interval and verdict."""
    if not cmp:
        return ""
    counts = ", ".join(f"{n} {v}" for v, n in cmp["counts"].items() if n)
    rows = []
    for c in cmp["cells"]:
        interval = f"{c['low']:.3f}-{c['high']:.3f}" if c.get("low") is not None else "–"
        rows.append(
            f"<tr><th>{e(c['cell'])}</th><td>{_fmt(c['base_ms'])}</td><td>{_fmt(c['new_ms'])}</td>"
            f"<td>{_fmt(c.get('ratio'))}</td><td>{interval} {_interval_svg(c, cmp['threshold'])}</td>"
            f'<td class="verdict {e(c["verdict"])}">{e(c["verdict"])}</td><td>{e("; ".join(c["reasons"]))}</td></tr>'
        )
    table = _table(
        "comparison-table", ["cell", "base ms", "new ms", "new / base", "95% interval", "verdict", "why"], rows
    )
    warnings = "".join(f'<p class="warning">{e(w)}</p>' for w in cmp["warnings"])
    return (
        f'<section id="comparison"><h2>Comparison: {e(cmp["base"])} → {e(cmp["new"])}</h2>'
        f"<p>{e(counts)} (threshold {cmp['threshold']:.0%}; {e(cmp['method'])}). The grey band is ±threshold: a"
        f" change counts when its interval clears 1 and its ratio leaves the band.</p>{warnings}{table}</section>"
    )


def _finite(o):
    """JSON has no Infinity/NaN (JSON.parse rejects them): an exact match's SNR is +inf, say. They become null
    in the page's data; the server-rendered tables still show them."""
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_finite(v) for v in o]
    return o


def render(data: dict) -> str:
    m = data["meta"]
    machines = (
        "".join(
            f"<li><b>{e(x['name'])}</b> ({e(x['device'])}): {e(str(x['cpu']))}"
            + (f", {x['cpus']} CPUs" if x.get("cpus") else "")
            + (f", {e(', '.join(x['simd']))}" if x.get("simd") else "")
            + (f"; {e(', '.join(x['runtimes']))}" if x["runtimes"] else "")
            + f" — {x['rows']} row(s)</li>"
            for x in m["machines"]
        )
        or "<li>no measured rows (estimates and published figures only)</li>"
    )
    plots = "".join(
        f'<figure class="plot"><figcaption>{e(t["id"])} <small>({e(t["display"])})</small></figcaption>'
        f'<div class="scatter" data-target="{e(t["id"])}"></div></figure>'
        for t in data["targets"]
    )
    # <, > and & as JSON escapes: no string (a model named "<script>", say) can end or open a tag in the page
    payload = (
        json.dumps(_finite(data), default=str, allow_nan=False)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )
    script = resources.files("deploykit.reports").joinpath("report.js").read_text()
    style = resources.files("deploykit.reports").joinpath("report.css").read_text()
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>deploykit report</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{style}</style></head>
<body>
<header><h1>deploykit report</h1>
<p>Generated {e(m["created"])} from <code>{e(m["db"])}</code> ({m["measurements"]} stored rows) by deploykit {e(m["deploykit"])}.</p>
<p>Measured on:</p><ul id="machines">{machines}</ul>
<p>Reproduce (from the folder it was written in): <code class="reproduce">{e(m["reproduce"])}</code></p>
<p class="legend"><span class="measured">● measured</span> on attached hardware ·
<span class="estimated">△ estimated</span> by the roofline model (bar: its 80% interval; on the estimated front a
model counts as optimal only where the intervals allow it, a label ending in "?" is only possibly optimal) ·
<span class="published">■ published</span> (paper figures) — never merged; each has its own Pareto front.
A <span class="noisy">dashed red ring</span> marks a measurement taken while the machine was busy (reasons in its
tooltip); a clean measurement of the same cell is preferred over a newer noisy one.
Accuracy is the published ImageNet top-1 with its source, unless <code>deploykit eval</code> measured it.</p>
<div id="js-errors"></div>
</header>
<nav><a href="#pareto">Pareto fronts</a> · <a href="#universality">Universality</a> · <a href="#latency">Latency table</a> ·
<a href="#fidelity">Fidelity</a> · <a href="#compat">Compatibility</a>{' · <a href="#roofline">Roofline</a>' if data["roofline_device"] else ""}{' · <a href="#threads">Thread scaling</a>' if data["threads"] else ""} · <a href="#cards">Deployment cards</a>{' · <a href="#npu-runtimes">NPU runtimes</a>' if data.get("npu_runtimes") else ""}{' · <a href="#layers">Where the time goes</a>' if data.get("layers_measured") else ""}{' · <a href="#comparison">Comparison</a>' if data.get("comparison") else ""}</nav>
<section id="pareto"><h2>Accuracy vs latency, per target</h2>{_axis_switch()}<div class="plots">{plots}</div></section>
<section id="universality"><h2>Universality: on how many targets each model is Pareto-optimal</h2>
<p>Counted on each target's primary provenance (measured, else estimated, else published), as in the MobileNetV4 paper's Fig. 1.</p>
{_universality_table(data)}</section>
<section id="latency"><h2>Model × target latency (median of repetition means)</h2>{_latency_table(data)}</section>
<section id="fidelity"><h2>Fidelity per artifact</h2>{_fidelity_table(data)}</section>
<section id="compat"><h2>Compatibility findings</h2>{_compat_table(data)}</section>
{_roofline_section(data)}
{_threads_section(data)}
{_cards_section(data)}
{_npu_runtimes_section(data.get("npu_runtimes", []))}
{_layers_section(data.get("layers_measured", []))}
{_comparison_section(data.get("comparison"))}
<script id="report-data" type="application/json">{payload}</script>
<script>{script}</script>
</body></html>
"""


def reproduce_command(
    db: str | Path, out: str | Path | None = None, profiles: str | Path | None = None, compare: tuple | None = None
) -> str:
    """The ``deploykit report`` command that writes this report again from the same store, with the paths as
    given (the report is a function of the store: no sweep needs to run again)."""
    words = ["deploykit", "report", "--db", str(db)]
    if out is not None:
        words += ["--out", str(out)]
    if profiles is not None:
        words += ["--profiles", str(profiles)]
    if compare:
        words += ["--compare", *compare]
    return shlex.join(words)


def write_report(
    db: str | Path,
    out: str | Path,
    profiles: str | Path | None = None,
    compare: tuple[str, str] | None = None,
    comparison: dict | None = None,
) -> Path:
    """The report of a store; with ``comparison`` (`deploykit compare`'s report of the runs ``compare`` names) a
    comparison section too."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    data = collect(db, profiles)
    if comparison:
        data["comparison"] = comparison
    data["meta"]["reproduce"] = reproduce_command(db, out, profiles, compare)
    atomic_write_text(out, render(data))
    return out
