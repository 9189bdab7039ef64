"""`deploykit export`, `check` and `formats`: files written, verified and judged against their targets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from .common import (
    MAX_SAMPLES,
    WEIGHTS_HELP,
    JsonOpt,
    NoCacheOpt,
    bounded,
    format_names,
    parse_shape,
    precision_names,
    rule_names,
)
from .render import err, out, print_json


def export(
    model: Annotated[str, typer.Argument(help="Zoo model name/alias, or package.module:factory for your own model.")],
    to: Annotated[
        str, typer.Option("--to", help="Format (see `deploykit formats`).", autocompletion=format_names)
    ] = "tflite",
    precision: Annotated[
        str | None,
        typer.Option(
            help="Precision; each format's are listed by `deploykit formats`.", autocompletion=precision_names
        ),
    ] = None,
    resolution: Annotated[int | None, typer.Option("--resolution", "-r", help="Input side in pixels.")] = None,
    weights: Annotated[str | None, typer.Option(help=WEIGHTS_HELP)] = None,
    calibration: Annotated[str | None, typer.Option(help="Folder of images for int8 calibration.")] = None,
    samples: Annotated[int, typer.Option(help="Calibration samples (int8).")] = 32,
    verify_samples: Annotated[int, typer.Option(help="Inputs compared against PyTorch.")] = 8,
    input_shape: Annotated[str | None, typer.Option(help="Your own model's input, e.g. 1,3,224,224.")] = None,
    fp16_input: Annotated[bool, typer.Option("--fp16-input", help="FP16 model input (Core ML, for the ANE).")] = False,
    out_dir: Annotated[str, typer.Option("--out", "-o", help="Output folder.")] = "artifacts",
    force: Annotated[bool, typer.Option("--force", help="Re-export even if a matching artifact exists.")] = False,
    no_cache: NoCacheOpt = False,
    as_json: JsonOpt = False,
):
    """Export a model, prove it computes what PyTorch computes, and check it against its targets."""

    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from ..exporters.pipeline import STAGES, ExportRequest
    from ..exporters.pipeline import export as run_export

    bounded("--samples", samples, 1, MAX_SAMPLES)
    bounded("--verify-samples", verify_samples, 1, MAX_SAMPLES)
    req = ExportRequest(
        model=model,
        fmt=to,
        precision=precision,
        out=Path(out_dir),
        resolution=resolution,
        weights=weights,
        calibration=Path(calibration) if calibration else None,
        calibration_samples=samples,
        verify_samples=verify_samples,
        input_shape=parse_shape(input_shape),
        fp16_input=fp16_input,
        force=force,
        use_cache=not no_cache,
    )
    columns = (SpinnerColumn(), TextColumn("{task.description}", markup=False), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True, disable=as_json or not err.is_terminal) as progress:
        task = progress.add_task("starting", total=len(STAGES))
        labels = {"build": "building model", "convert": f"converting to {to}", "verify": "verifying against PyTorch"}
        labels["check"] = "checking target compatibility"
        result = run_export(req, on_stage=lambda s: progress.update(task, description=labels[s], advance=1))
    m = result.manifest
    summary = {
        "artifact": str(result.path),
        "manifest": str(result.path) + ".manifest.json",
        "reused": result.reused,
        "reused_from": result.reused_from,
        "status": m.status,
        "model": m.model["name"],
        "format": m.format,
        "precision": m.precision,
        "size_bytes": m.size_bytes,
        "inputs": [t.to_dict() for t in m.inputs],
        "fidelity": m.fidelity,
        "compatibility": {k: v["summary"] for k, v in m.compatibility.items()},
        "ops": m.ops,
        "seconds": result.stage_seconds,
    }
    if as_json:
        print_json(summary)
    else:
        _say_export(result)


def _say_export(result) -> None:
    """What an export wrote (or reused), how faithful it is, and what its targets would make of it."""
    m = result.manifest
    f = m.fidelity or {}
    verdict = Text(m.status, style="green" if m.status == "verified" else "yellow")
    done = {"cache": "reused from cache", "out": "reused"}.get(result.reused_from, "wrote")
    out.print(Text(f"{done} {result.path} ({m.size_bytes / 1e6:.2f} MB): ") + verdict)
    from ..exporters.fidelity import WHAT_STATUS_MEANS

    out.print(f"  {m.status}: {WHAT_STATUS_MEANS.get(m.status, '')}", soft_wrap=True)
    for missed in f.get("shortfalls") or []:  # why the file is not "verified": a fact about it, not a failed export
        out.print(f"  fixed floor missed (so not 'verified'): {missed}", soft_wrap=True)
    if f.get("verified"):
        out.print(
            f"  fidelity vs {f['reference']}: cosine {f['cosine_min']:.6f} (≥ {f['threshold']:.4f}), "
            f"SNR {f['snr_db']:.1f} dB, top-1 agreement {f['top1_agreement']:.0%}, max |Δ| {f['max_abs_error']:.3g}"
        )
        if "vs_fp32" in f:
            v = f["vs_fp32"]
            out.print(
                f"  int8 vs float PyTorch: cosine {v['cosine_min']:.4f}, SNR {v['snr_db']:.1f} dB, top-1 {v['top1_agreement']:.0%}"
            )
    else:
        out.print(f"  fidelity: not verified ({f.get('reason', 'no reference')})")
    for target, c in m.compatibility.items():
        s = c["summary"]
        found = f"{s['errors']} errors, {s['warnings']} warnings" if c["findings_total"] else "no findings"
        out.print(f"  {target}: {found}")
    for note in m.notes:
        out.print(f"  note: {note}", markup=False, highlight=False, soft_wrap=True)


def check(
    artifact: Annotated[str, typer.Argument(help="An exported file.")],
    target: Annotated[
        str, typer.Option("--target", "-t", help="Rule set, named by its backend.", autocompletion=rule_names)
    ] = "edgetpu",
    as_json: JsonOpt = False,
):
    """List every op the target cannot run or would hand back to the CPU, with the reason."""
    from ..exporters.compat import check as run_check

    r = run_check(artifact, target)
    if as_json:
        print_json(r)
    else:
        s = r["summary"]
        head = "no findings" if not r["findings"] else f"{s['errors']} errors, {s['warnings']} warnings"
        out.print(f"{r['file']} on {target}: {r['ops']} ops, {head}")
        if r.get("compiler"):
            c = r["compiler"]
            out.print(
                f"  edgetpu_compiler: {'ran, ' + str(c.get('ops_on_edgetpu')) + ' ops mapped' if c.get('ran') else c['reason']}"
            )
        if r["findings"]:
            t = Table()
            for col in ("op #", "op", "severity", "reason"):
                t.add_column(col)
            for f in r["findings"]:
                t.add_row("" if f["op"] is None else str(f["op"]), f["name"], f["severity"], f["reason"])
            out.print(t)
    if not r["summary"]["ok"]:
        raise typer.Exit(1)


def formats(as_json: JsonOpt = False):
    """Export formats and backends deploykit knows (built-in and plugins), and what each takes."""
    from ..backends.base import backends
    from ..exporters.base import formats as all_formats

    fmts = [
        {
            "name": f.name,
            "suffix": f.suffix,
            "precisions": list(f.precisions),
            "default_precision": f.default_precision,
            "check_rules": sorted({r for p in f.precisions for r in f.compat_rules(p)}),
            "runs_here": f.cannot_run_here() is None,
            "why_not": f.cannot_run_here(),
            "description": f.description,
        }
        for f in all_formats()
    ]
    bends = [
        {
            "plugin": b.name,
            "reach": b.reach,
            "serves": {n: {"format": r.format, "processor": r.processor} for n, r in b.serves.items()},
            "description": b.description,
        }
        for b in backends()
    ]
    if as_json:
        print_json({"formats": fmts, "backends": bends})
        return
    t = Table(title="export formats")
    for col in ("format", "file", "precisions", "check rule sets", "runs here"):
        t.add_column(col)
    for f in fmts:
        here = "yes" if f["runs_here"] else f"no: {f['why_not']}"
        t.add_row(f["name"], f["suffix"] or "(no file)", ", ".join(f["precisions"]), ", ".join(f["check_rules"]), here)
    out.print(t)
    t = Table(title="backends (deploykit bench)")
    for col in ("plugin", "reach", "serves (format, processor)", "what it is"):
        t.add_column(col)
    for b in bends:
        served = "\n".join(f"{n} ({v['format']}, {v['processor']})" for n, v in b["serves"].items())
        t.add_row(b["plugin"], b["reach"], served, b["description"])
    out.print(t)
