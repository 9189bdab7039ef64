"""The ``deploykit`` command line: a thin Typer/Rich layer over the library.

Every command that prints a table also takes ``--json``. A :class:`DeploykitError` (a user mistake) becomes
one line on stderr and exit status 2, never a traceback.
"""

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .errors import DeploykitError, plain_text

app = typer.Typer(
    name="deploykit",
    help="Reference mobile vision backbones: inspect, export, verify, benchmark, estimate and compare.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
# User text (model names, file and device names, notes, messages) is never Rich markup or an emoji code: "[bold]x",
# "[/bold]" and "mod:factory:" print as typed, in plain prints and table cells alike (a Table renders a str cell
# with its console's markup setting). Styling is applied with Text objects where it is wanted.
out = Console(emoji=False, markup=False)
err = Console(stderr=True, emoji=False, markup=False)
for console in (out, err):
    if not console.is_terminal:  # piped or captured: never truncate or wrap at 80 columns
        console.width = 200

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of a table.")]
WEIGHTS_HELP = (
    "A checkpoint file (.safetensors/.pth, timm or deploykit keys), 'timm' (the model's timm checkpoint from the"
    " Hugging Face cache, downloaded when online) or hf-hub:ORG/NAME. Without it: seeded random weights."
)


# Choices come from the registries (shell completion lists them); importing a registry loads only the plugin
# modules, which import no runtime.
def _format_names(incomplete: str = "") -> list[str]:
    from .exporters.base import names

    return [n for n in names(files_only=True) if n.startswith(incomplete)]


def _precision_names(incomplete: str = "") -> list[str]:
    from .exporters.base import formats

    return sorted({p for f in formats() for p in f.precisions if p.startswith(incomplete)})


def _rule_names(incomplete: str = "") -> list[str]:
    from .exporters.compat import rule_names

    return [n for n in rule_names() if n.startswith(incomplete)]


def _backend_names(incomplete: str = "") -> list[str]:
    from .backends.base import backend_names

    return [n for n in backend_names() if n.startswith(incomplete)]


def _device_names(incomplete: str = "") -> list[str]:
    from .devices import load_profiles

    return [n for n in load_profiles() if n.startswith(incomplete)]


class _BarListener:
    """The CLI's listener: a progress bar on stderr, and the finished rows kept for the table at the end."""

    def __init__(self, progress):
        self.progress, self.task, self.results = progress, progress.add_task("planning", total=None), []

    def planned(self, total: int, skipped: int = 0, title: str = "") -> None:
        self.progress.update(
            self.task, total=total, description=f"{title} ({skipped} already done)" if skipped else title
        )

    def started(self, label: str) -> None:
        self.progress.update(self.task, description=label)

    def finished(self, m) -> None:
        self.results.append(m)
        self.progress.advance(self.task)

    def warn(self, text: str) -> None:
        self.progress.console.print(f"warning: {text}", markup=False, highlight=False)


def _bar(disable: bool):
    """The progress bar of long commands (bench, sweep, eval), on stderr, gone when done, off for --json."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    # a description holds user text (a model or file name): TextColumn reads markup unless told not to
    cols = (TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    # Off where nobody watches (piped, captured): a non-interactive console would print the last frame on exit.
    return Progress(*cols, console=err, transient=True, disable=disable or not err.is_terminal)


def _m(n: float) -> str:
    return f"{n / 1e6:,.2f}"


@app.command()
def models(
    family: Annotated[str | None, typer.Option(help="Only this family, e.g. MobileNetV4.")] = None,
    as_json: JsonOpt = False,
):
    """List the zoo: params and MACs counted on our models at their default resolution, with published top-1."""
    from .catalog import model_rows

    # a spinner's str text is read as markup whatever the console says: give it Text
    with err.status(Text("counting params and MACs (cached after the first run)…")) as status:
        rows = model_rows(family, on_count=lambda name: status.update(Text(f"counting {name}…")))
    if not rows:
        raise DeploykitError(f"no models in family {family!r}", hint="run `deploykit models` for the families")
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    t = Table(title="deploykit zoo (params/MACs counted on the deploy form; top-1 as published)")
    for col, just in [("model", "left"), ("family", "left"), ("res", "right"), ("params (M)", "right")]:
        t.add_column(col, justify=just)
    t.add_column("MACs (M)", justify="right")
    t.add_column("top-1 %", justify="right")
    t.add_column("timm name")
    for r in rows:
        t.add_row(
            r["name"],
            r["family"],
            str(r["resolution"]),
            f"{r['params_m']:.2f}",
            f"{r['macs_m']:,.0f}",
            f"{r['top1']:.1f}" if r["top1"] is not None else "–",
            r["timm_name"] or "–",
        )
    out.print(t)


@app.command()
def info(
    model: Annotated[str, typer.Argument(help="Model name or alias (see `deploykit models`).")],
    resolution: Annotated[int | None, typer.Option("--resolution", "-r", help="Input side in pixels.")] = None,
    stages: Annotated[bool, typer.Option("--stages", help="Only the per-stage table.")] = False,
    as_json: JsonOpt = False,
):
    """Per-stage and per-layer MACs, weights and activation traffic of a model at a resolution."""
    from .analysis import analyze_spec
    from .zoo import get_spec

    spec = get_spec(model)
    a = analyze_spec(spec.name, resolution)
    if as_json:
        print(json.dumps({**a.to_dict(), "family": spec.family, "macs_fvcore": a.macs_fvcore}, indent=2))
        return
    pub = spec.published
    out.print(
        Text(spec.name, style="bold")
        + Text(
            f" ({spec.family}) at {a.resolution}×{a.resolution}: "
            f"{_m(a.params)} M params, {_m(a.macs)} M MACs, {len(a.deployed)} ops after conv/BN/ReLU folding"
            + (f"; published top-1 {pub.top1}% ({pub.top1_source})" if pub and pub.top1 else "")
        )
    )
    t = Table(title="per stage (fp32 bytes)")
    for col in ("stage", "ops", "MACs (M)", "weights (KB)", "activations (KB)", "output"):
        t.add_column(col, justify="left" if col in ("stage", "output") else "right")
    totals = [0, 0, 0, 0]
    for name, s in a.by_stage().items():
        t.add_row(
            name,
            str(s["ops"]),
            _m(s["macs"]),
            f"{s['weight_elems'] * 4 / 1024:,.0f}",
            f"{s['act_elems'] * 4 / 1024:,.0f}",
            "×".join(map(str, s["out_shape"])),
        )
        for i, k in enumerate(("ops", "macs", "weight_elems", "act_elems")):
            totals[i] += s[k]
    t.add_section()
    t.add_row(
        "total", str(totals[0]), _m(totals[1]), f"{totals[2] * 4 / 1024:,.0f}", f"{totals[3] * 4 / 1024:,.0f}", ""
    )
    out.print(t)
    if stages:
        return
    t = Table(title="per layer (deployed graph: BN and ReLU/ReLU6 folded into the preceding conv)")
    for col in ("#", "layer", "op", "kernel/s/g", "output", "MACs (K)", "weights (KB)", "act (KB)", "MAC/B"):
        t.add_column(col, justify="left" if col in ("layer", "op", "output") else "right")
    for x in a.deployed:
        ksg = f"{x.kernel[0]}×{x.kernel[1]}/{x.stride}/{x.groups}" if x.kernel else ""
        t.add_row(
            str(x.index),
            x.name,
            x.op,
            ksg,
            "×".join(map(str, x.out_shape)),
            f"{x.macs / 1e3:,.0f}",
            f"{x.weight_bytes() / 1024:,.1f}",
            f"{x.act_bytes() / 1024:,.1f}",
            f"{x.intensity:.1f}",
        )
    t.add_section()
    t.add_row("", "total", "", "", "", f"{a.macs / 1e3:,.0f}", "", "", "")
    out.print(t)


def _shape(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        raise DeploykitError(f"--input-shape {text!r} is not a list of integers like 1,3,224,224") from None


@app.command()
def export(
    model: Annotated[str, typer.Argument(help="Zoo model name/alias, or package.module:factory for your own model.")],
    to: Annotated[
        str, typer.Option("--to", help="Format (see `deploykit formats`).", autocompletion=_format_names)
    ] = "tflite",
    precision: Annotated[
        str | None,
        typer.Option(
            help="Precision; each format's are listed by `deploykit formats`.", autocompletion=_precision_names
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
    no_cache: Annotated[
        bool,
        typer.Option(
            "--no-cache",
            help="Neither reuse nor keep verified files in the artifact cache (~/.cache/deploykit/artifacts).",
        ),
    ] = False,
    as_json: JsonOpt = False,
):
    """Export a model, prove it computes what PyTorch computes, and check it against its targets."""
    from pathlib import Path

    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from .exporters.pipeline import STAGES, ExportRequest
    from .exporters.pipeline import export as run_export

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
        input_shape=_shape(input_shape),
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
        print(json.dumps(summary, indent=2))
        return
    f = m.fidelity or {}
    verdict = Text(m.status, style="green" if m.status == "verified" else "yellow")
    done = {"cache": "reused from cache", "out": "reused"}.get(result.reused_from, "wrote")
    out.print(Text(f"{done} {result.path} ({m.size_bytes / 1e6:.2f} MB): ") + verdict)
    from .exporters.fidelity import WHAT_STATUS_MEANS

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


@app.command()
def check(
    artifact: Annotated[str, typer.Argument(help="An exported file.")],
    target: Annotated[
        str, typer.Option("--target", "-t", help="Rule set, named by its backend.", autocompletion=_rule_names)
    ] = "edgetpu",
    as_json: JsonOpt = False,
):
    """List every op the target cannot run or would hand back to the CPU, with the reason."""
    from .exporters.compat import check as run_check

    r = run_check(artifact, target)
    if as_json:
        print(json.dumps(r, indent=2))
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


@app.command()
def devices(
    profiles: Annotated[str | None, typer.Option(help="Extra folder of device profile TOMLs.")] = None,
    as_json: JsonOpt = False,
):
    """Device profiles, their targets, and which devices are reachable now."""
    from .devices import load_profiles, reachability

    rows = []
    for p in load_profiles(profiles).values():
        r = reachability(p)
        rows.append(
            {
                "name": p.name,
                "display": p.display,
                "reach": ", ".join(p.reaches),
                "services": p.services,
                "reachable": r.reachable,
                "how": r.how,
                "attached": [d.id for d in r.devices],
                "targets": [
                    {
                        "id": t.id,
                        "reach": t.reach,
                        "backend": t.backend,
                        "format": t.format,
                        "processor": t.processor,
                        "precision": t.precision,
                        "available_here": r.reachable and t.id not in r.unavailable,
                        "why_not": r.unavailable.get(t.id) if r.reachable else None,
                        "threads": t.threads,
                        "peak_macs_per_s": t.peak_macs_per_s,
                        "mem_bw_bytes_per_s": t.mem_bw_bytes_per_s,
                        "source": t.source,
                    }
                    for t in p.targets
                ],
                "profile": p.path,
                **({"host": p.host} if p.host else {}),
            }
        )
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    t = Table(title="device profiles")
    for col in ("device", "reach", "reachable", "targets", "how it was looked for"):
        t.add_column(col)
    for r in rows:
        t.add_row(
            Text(r["name"] + "\n") + Text(r["display"], style="dim"),
            r["reach"],
            Text("yes", style="green") if r["reachable"] else Text("no", style="red"),
            Text("\n").join(
                Text(x["id"]) + (Text(f" (not here: {x['why_not']})", style="dim") if x["why_not"] else Text(""))
                for x in r["targets"]
            ),
            Text(r["how"]),  # plain text: a hint such as pip install 'deploykit[aihub]' is not rich markup
        )
    out.print(t)


@app.command()
def bench(
    device: Annotated[
        str,
        typer.Option("--device", "-d", help="Device profile (see `deploykit devices`).", autocompletion=_device_names),
    ],
    model: Annotated[list[str] | None, typer.Option("--model", "-m", help="Zoo model (repeatable).")] = None,
    artifact: Annotated[str | None, typer.Option(help="Benchmark this existing .tflite/.onnx file instead.")] = None,
    backend: Annotated[
        list[str] | None,
        typer.Option(help="Only these backends/target names (repeatable).", autocompletion=_backend_names),
    ] = None,
    precision: Annotated[
        list[str] | None, typer.Option(help="Only these precisions (repeatable).", autocompletion=_precision_names)
    ] = None,
    runs: Annotated[int, typer.Option(help="Invocations per repetition.")] = 1000,
    repetitions: Annotated[int, typer.Option(help="Repetitions; the result is the median of their means.")] = 5,
    warmup: Annotated[int, typer.Option(help="Warm-up invocations.")] = 50,
    budget: Annotated[float | None, typer.Option(help="Seconds per target at most (caps runs).")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds before a hung benchmark is killed.")] = 900,
    db: Annotated[str, typer.Option(help="Results database.")] = "deploykit-results.db",
    out_dir: Annotated[str, typer.Option("--out", "-o", help="Artifacts folder (export cache).")] = "artifacts",
    profiles: Annotated[str | None, typer.Option(help="Extra folder of device profile TOMLs.")] = None,
    serial: Annotated[str | None, typer.Option(help="adb serial when several phones match.")] = None,
    benchmark_binary: Annotated[str | None, typer.Option(help="TFLite benchmark_model binary for adb.")] = None,
    runner: Annotated[
        str | None, typer.Option(help="Phones: your ExecuTorch executor_runner binary (runs the .pte targets).")
    ] = None,
    delegate_library: Annotated[
        str | None,
        typer.Option(
            help="Phones: a vendor NPU's TFLite delegate library for benchmark_model (libQnnTFLiteDelegate.so)."
        ),
    ] = None,
    delegate_options: Annotated[
        str | None, typer.Option(help="Options for --delegate-library, key:value;key:value (default backend_type:htp).")
    ] = None,
    strict: Annotated[int, typer.Option(help="Re-measure a noisy cell up to N times, then fail it.")] = 0,
    input_shape: Annotated[
        list[str] | None,
        typer.Option("--input-shape", help="NAME=1,3,640,640 for a file's dynamic dimensions (repeatable)."),
    ] = None,
    weights: Annotated[str | None, typer.Option(help=WEIGHTS_HELP)] = None,
    no_cache: Annotated[
        bool,
        typer.Option(
            "--no-cache",
            help="Neither reuse nor keep verified files in the artifact cache (~/.cache/deploykit/artifacts).",
        ),
    ] = False,
    cooldown: Annotated[
        float, typer.Option(help="Phones: wait up to S seconds for a throttled phone to cool before each cell.")
    ] = 60.0,
    as_json: JsonOpt = False,
):
    """Measure latency on every target of a device; results go to the database with their provenance.
    Exit status 1 when any measurement failed (each is named)."""
    from pathlib import Path

    from .bench import BenchRequest, run_bench
    from .measurement import Method

    _check_method(runs, repetitions, warmup, strict, budget)
    if cooldown < 0:
        raise DeploykitError("--cooldown must be at least 0 seconds")
    req = BenchRequest(
        device=device,
        models=model or [],
        artifact=Path(artifact) if artifact else None,
        backends=backend,
        precisions=precision,
        method=Method(warmup=warmup, repetitions=repetitions, runs=runs, budget_s=budget, timeout_s=timeout),
        db=Path(db),
        out=Path(out_dir),
        profiles=Path(profiles) if profiles else None,
        serial=serial,
        backend_options={
            "benchmark_binary": benchmark_binary,
            "cooldown_s": cooldown,
            "runner": runner,
            "delegate_library": delegate_library,
            "delegate_options": delegate_options,
        },
        strict=strict,
        input_shapes=_named_shapes(input_shape or []),
        weights=weights,
        use_cache=not no_cache,
    )
    with _bar(as_json) as progress:
        listener = _BarListener(progress)
        try:
            run_bench(req, listener)
        except KeyboardInterrupt:
            err.print(f"interrupted: {len(listener.results)} finished measurement(s) are stored in {db}")
            raise typer.Exit(130) from None
    results = listener.results
    failed = [m for m in results if m.status == "failed"]
    _say_quality(results)  # on stderr, with --json too: a warning must not need the table to be seen
    if as_json:
        print(json.dumps([m.to_dict(samples=False) for m in results], indent=2))
    else:
        _measurement_table(results, f"{device}: median of {repetitions} repetition means")
        for m in failed:
            out.print(f"failed: {m.model} on {m.target}: {_one_line(m.error)}", soft_wrap=True)
        out.print(f"stored {len(results)} measurement(s) in {db}")
    if failed:
        raise typer.Exit(1)


def _named_shapes(specs: list[str]) -> dict[str, list[int]]:
    """``--input-shape NAME=1,3,640,640`` (repeatable) → {NAME: [1, 3, 640, 640]}."""
    out = {}
    for spec in specs:
        name, eq, dims = spec.rpartition("=")
        try:
            shape = [int(d) for d in dims.replace("x", ",").split(",")] if eq and name else None
        except ValueError:
            shape = None
        if not shape:
            raise DeploykitError(f"--input-shape {spec!r} is not NAME=D,D,…", hint="e.g. --input-shape x=1,3,640,640")
        out[name] = shape
    return out


def _one_line(text: str | None) -> str:
    return " ".join(plain_text(text or "").split())


def _check_method(runs: int, repetitions: int, warmup: int, strict: int, budget: float | None = None) -> None:
    if min(runs, repetitions) < 1 or warmup < 0 or strict < 0:
        raise DeploykitError("--runs and --repetitions must be at least 1, --warmup and --strict at least 0")
    if budget is not None and not budget > 0:  # NaN too
        raise DeploykitError(f"--budget {budget:g}: give a number of seconds above 0")


def _output_path(text: str, option: str, folder: bool = False) -> Path:
    """An output path checked before any work is done, so that a long run never ends on a path it cannot write:
    not empty, not a folder where a file is asked for (nor a file where a folder is), and something can be created
    in the nearest folder that exists (a probe file, removed at once: permission bits alone do not say so for root
    or for /proc)."""
    import os
    import tempfile

    what = "folder" if folder else "file"
    if not text.strip():
        raise DeploykitError(f"{option} is empty: give a {what} to write")
    p = Path(text)
    if p.exists() and p.is_dir() != folder:
        raise DeploykitError(f"{option} {text}: that is a {'file' if folder else 'folder'}; give a {what}")
    existing = p if folder else p.parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise DeploykitError(f"{option} {text}: {existing} is a file, so nothing can be created under it")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".deploykit-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise DeploykitError(f"{option} {text}: cannot create files in {existing} ({e.strerror})") from None
    return p


def _say_quality(results: list) -> None:
    """Warnings on stderr: noisy measurements with their reasons, and warnings that travel with a row."""
    for m in results:
        if m.quality == "noisy":
            reasons = "; ".join(m.details.get("quality_reasons", []))
            err.print(f"warning: {m.model} on {m.target} was measured on a busy machine: {reasons}")
        for w in m.warnings:
            err.print(f"warning: {m.model} on {m.target}: {w}")


def _shapes_text(m) -> str:
    """A measured file's input shapes as fed ("x=8,3,96,96"), or "": one file at batch 1 and at batch 8 is two
    different cells, told apart by this wherever rows are shown."""
    shapes = m.env.get("input_shapes") or {}
    return "; ".join(f"{name}={','.join(map(str, dims))}" for name, dims in shapes.items())


def _model_label(m) -> str:
    shapes = _shapes_text(m)
    return f"{m.model} [{shapes}]" if shapes else m.model


def _measurement_table(rows: list, title: str) -> None:
    t = Table(title=title)
    for col in ("model", "target", "provenance", "median ms", "p50", "p90", "min", "stdev", "n", "status", "quality"):
        t.add_column(col, justify="right" if col in ("median ms", "p50", "p90", "min", "stdev", "n") else "left")
    f = lambda v: "–" if v is None else f"{v:.3f}"  # noqa: E731
    for m in rows:
        s = m.stats
        t.add_row(
            _model_label(m),
            m.target,
            m.provenance,
            f(m.median_ms),
            f(s and s.p50),
            f(s and s.p90),
            f(s and s.min),
            f(s and s.stdev),
            str(s.n) if s else "–",
            m.status,
            m.quality or "–",
        )
    out.print(t)


# `results --csv`: every column of the table and the row's identity (its input shapes too), then the error
_CSV_COLUMNS = (
    "id created model input_shapes resolution format precision target device backend provenance status"
    " median_ms p50 p90 min stdev n quality warnings error"
).split()


def _csv_row(m) -> list:
    s = m.stats
    stats = {"p50": s.p50, "p90": s.p90, "min": s.min, "stdev": s.stdev, "n": s.n} if s else {}
    computed = {"input_shapes": _shapes_text(m), "warnings": "; ".join(m.warnings), **stats}
    return [computed[c] if c in computed else getattr(m, c, None) for c in _CSV_COLUMNS]


results_app = typer.Typer(help="List stored measurements, import ones measured elsewhere, or delete some.")
app.add_typer(results_app, name="results")

DbOpt = Annotated[str, typer.Option(help="Results database.")]
ModelFilter = Annotated[str | None, typer.Option(help="Only this model.")]
DeviceFilter = Annotated[str | None, typer.Option(help="Only this device.")]
ProvenanceFilter = Annotated[str | None, typer.Option(help="measured, estimated or published.")]


def _stored_rows(db: str, model: str | None, device: str | None, provenance: str | None) -> list:
    """The rows `results` and `results delete` select: checked filters, from a database that must already be
    one (a reading command never creates or converts a file)."""
    from .measurement import PROVENANCES
    from .store import Store

    if provenance is not None and provenance not in PROVENANCES:
        raise DeploykitError(f"--provenance {provenance!r} is not one of {', '.join(PROVENANCES)}")
    if model is not None:  # an alias or timm name finds the rows stored under the zoo name
        from .zoo import get_spec

        try:
            model = get_spec(model).name
        except DeploykitError:
            pass  # a user's own model: stored under its own name
    with Store.existing(db) as store:
        rows = store.query(model=model, device=device, provenance=provenance)
    if device is not None and not rows:
        from .devices import load_profiles

        if device not in load_profiles():  # a misspelt name, not an empty result
            raise DeploykitError(
                f"no results for device {device!r}, and no profile has that name", hint="see `deploykit devices`"
            )
    return rows


@results_app.callback(invoke_without_command=True)
def results(
    ctx: typer.Context,
    db: DbOpt = "deploykit-results.db",
    model: ModelFilter = None,
    device: DeviceFilter = None,
    provenance: ProvenanceFilter = None,
    as_json: JsonOpt = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV on stdout.")] = False,
):
    """List stored measurements, filtered (`deploykit results import FILE` adds ones measured elsewhere,
    `deploykit results delete` removes some)."""
    if ctx.invoked_subcommand:
        return
    if as_json and as_csv:
        raise DeploykitError("--json and --csv cannot be combined: give one")
    rows = _stored_rows(db, model, device, provenance)
    if as_json:
        print(json.dumps([m.to_dict(samples=False) for m in rows], indent=2))
    elif as_csv:
        import csv

        w = csv.writer(sys.stdout)
        w.writerow(_CSV_COLUMNS)
        for m in rows:
            w.writerow(_csv_row(m))
    else:
        _measurement_table(rows, f"{len(rows)} measurement(s) in {db}")


@results_app.command("import")
def results_import(
    file: Annotated[str, typer.Argument(help="CSV or JSON: device, model, compute_unit (or target), latency_ms.")],
    db: DbOpt = "deploykit-results.db",
    profiles: Annotated[str | None, typer.Option(help="Extra folder of device profile TOMLs.")] = None,
    as_json: JsonOpt = False,
):
    """Import latencies measured outside deploykit (e.g. Xcode's Core ML performance report on an iPhone).
    Rows already stored (same cell, latency, tool, date and note) are skipped, and said."""
    from pathlib import Path

    from .importer import import_file

    rows, skipped = import_file(Path(file), Path(db), profiles)
    if skipped:  # on stderr, with --json too: the JSON lists the rows stored by this import
        err.print(f"{len(skipped)} row(s) already stored (or given twice in {Path(file).name}), skipped")
    if as_json:
        print(json.dumps([m.to_dict(samples=False) for m in rows], indent=2))
    elif rows:
        _measurement_table(rows, f"imported {len(rows)} measurement(s) from {Path(file).name} into {db}")
    else:
        out.print(f"imported nothing from {Path(file).name}: every row of it is already in {db}")


@results_app.command("delete")
def results_delete(
    db: DbOpt = "deploykit-results.db",
    model: ModelFilter = None,
    device: DeviceFilter = None,
    provenance: ProvenanceFilter = None,
    all_rows: Annotated[bool, typer.Option("--all", help="Every row (needed when no filter is given).")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask: delete what the filters select.")] = False,
    as_json: JsonOpt = False,
):
    """Delete stored measurements selected by the filters of `deploykit results`, after showing them and asking
    (or with --yes)."""
    if all_rows and (model or device or provenance):
        raise DeploykitError("--all deletes every row: give it alone, or filters without it")
    if not (all_rows or model or device or provenance):
        raise DeploykitError("give --model, --device or --provenance to choose rows, or --all for every row")
    rows = _stored_rows(db, model, device, provenance)
    if not rows:
        raise DeploykitError(f"no rows in {db} match: nothing deleted", hint="see `deploykit results`")
    if as_json:  # stdout holds only the JSON: the rows, printed once they are gone
        if not yes:
            raise DeploykitError("--json deletes without asking: add --yes")
    else:
        _measurement_table(rows, f"{len(rows)} measurement(s) to delete from {db}")
    if not yes:
        if not sys.stdin.isatty():
            raise DeploykitError("nobody can be asked here (stdin is not a terminal): add --yes to delete these")
        if not typer.confirm(f"delete these {len(rows)} measurement(s)?", err=True):
            err.print("nothing deleted")
            raise typer.Exit(1)
    from .store import Store

    with Store.existing(db) as store:
        gone = store.delete([m.id for m in rows])
    if as_json:
        print(json.dumps([m.to_dict(samples=False) for m in rows], indent=2))
    else:
        out.print(f"deleted {gone} measurement(s) from {db}")


@app.command()
def formats(as_json: JsonOpt = False):
    """Export formats and backends deploykit knows (built-in and plugins), and what each takes."""
    from .backends.base import backends
    from .exporters.base import formats as all_formats

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
        print(json.dumps({"formats": fmts, "backends": bends}, indent=2))
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


@app.command()
def estimate(
    model: Annotated[
        list[str] | None, typer.Argument(help="Zoo models or exported files (.tflite uses its graph).")
    ] = None,
    device: Annotated[
        str | None, typer.Option("--device", "-d", help="Device profile to estimate for.", autocompletion=_device_names)
    ] = None,
    target: Annotated[list[str] | None, typer.Option(help="Only these targets (name, backend or paper name).")] = None,
    resolution: Annotated[int | None, typer.Option("--resolution", "-r", help="Input resolution.")] = None,
    layers: Annotated[bool, typer.Option("--layers", help="Per-layer table: bound, intensity, share of time.")] = False,
    sweep: Annotated[bool, typer.Option("--sweep", help="Latency across ridge points 0-500 MACs/byte.")] = False,
    fit: Annotated[bool, typer.Option("--fit", help="Fit the device's targets to measured latencies.")] = False,
    published: Annotated[
        bool, typer.Option(help="With --fit: also the target's rows of the corpus of published latencies.")
    ] = False,
    validate: Annotated[
        bool,
        typer.Option(
            "--validate", help="Refit from the shipped corpus now and print cross-validated errors per target."
        ),
    ] = False,
    write: Annotated[
        str | None, typer.Option(help="With --fit: write the fitted profile TOML into this folder.")
    ] = None,
    db: Annotated[
        str, typer.Option(help="Results database (estimates are stored as 'estimated').")
    ] = "deploykit-results.db",
    no_store: Annotated[bool, typer.Option("--no-store", help="Do not store the estimates.")] = False,
    profiles: Annotated[str | None, typer.Option(help="Extra folder of device profile TOMLs.")] = None,
    as_json: JsonOpt = False,
):
    """Predict latency with the roofline model for devices you do not have (or fit it to ones you do)."""
    from pathlib import Path

    from . import estimator as E
    from .devices import get_profile

    if resolution is not None and resolution < 1:
        raise DeploykitError(f"--resolution {resolution}: must be a positive number of pixels")
    if target is not None and not all(x.strip() for x in target):
        raise DeploykitError("--target is empty: give a target name, backend or paper name")
    # options that belong to another mode are refused rather than ignored
    modes = [flag for flag, on in (("--validate", validate), ("--fit", fit), ("--sweep", sweep)) if on]
    if len(modes) > 1:
        raise DeploykitError(f"{' and '.join(modes)} cannot be combined: give one")
    if (validate or fit) and model:
        raise DeploykitError(f"{modes[0]} takes no model names ({model[0]}): it works on the device's targets")
    for flag, given in (("--write", write is not None), ("--published", published)):
        if given and not fit:
            raise DeploykitError(f"{flag} goes with --fit")
    if write is not None:
        _output_path(write, "--write", folder=True)
    if validate:
        _estimate_validate(device, target, profiles, as_json)
        return
    if fit:
        if not device:
            raise DeploykitError("--fit needs --device: the profile whose targets to fit")
        _estimate_fit(get_profile(device, profiles), target, db, published, write, as_json, profiles)
        return
    if not model:
        raise DeploykitError(
            "name at least one model (or file) to estimate", hint="e.g. deploykit estimate mnv4_conv_s --device pixel8"
        )
    resolved = [E.model_layers(m, resolution) for m in model]
    if sweep:
        _estimate_sweep(resolved, get_profile(device, profiles) if device else None, target, as_json)
        return
    if not device:
        raise DeploykitError("--device is required", hint="see `deploykit devices` for profiles")
    profile = get_profile(device, profiles)
    targets = E.select_targets(profile, target)
    results = []
    for name, res, ls in resolved:
        for t in targets:
            results.append((name, res, t, E.estimate_layers(ls, E.roofline_for(t))))
    if not no_store:
        from .store import Store

        with Store(Path(db)) as store:
            layers_of = {(n, r): ls for n, r, ls in resolved}
            for name, res, t, est in results:
                store.add(E.to_measurement(name, res, t, est, layers_of[(name, res)]))
    if as_json:
        print(
            json.dumps(
                [
                    {"model": n, "resolution": r, "target": t.id, "provenance": "estimated", **e.to_dict(layers=layers)}
                    for n, r, t, e in results
                ],
                indent=2,
            )
        )
        return
    tab = Table(title=f"{profile.name}: roofline estimates (provenance: estimated, not measured)")
    numeric = ("latency ms", f"{E.INTERVAL:.0%} interval ms", "compute-bound", "ridge MACs/B")
    for col in ("model", "target", *numeric, "status"):
        tab.add_column(col, justify="right" if col in numeric else "left")
    for n, r, t, e in results:
        status = e.status if e.status == "ok" else "unsupported: " + ", ".join(e.unsupported_ops)
        if e.status == "ok":  # fitted targets say "ok"; the others say where their figures came from
            words = ("ok", _CALIBRATION_SAYS[e.calibration], "extrapolated" if e.unseen_kinds else "")
            status = ", ".join(w for w in words if w)
        lat = "–" if e.latency_ms is None else f"{e.latency_ms:.3f}"
        iv = "–" if e.latency_ms is None else f"{e.low_ms:.3g}-{e.high_ms:.3g}"
        share = "–" if e.latency_ms is None else f"{e.share('compute'):.0%}"
        tab.add_row(f"{n}@{r}", t.id, lat, iv, share, f"{e.params['ridge_macs_per_byte']:.1f}", status)
    out.print(tab)
    # one line per target (and per model where an extrapolation makes the basis differ), in the table's order
    for tid, basis in dict.fromkeys((t.id, e.basis) for _, _, t, e in results if e.latency_ms is not None):
        err.print(f"interval basis of {tid}: {basis}", soft_wrap=True)
    if layers:
        for n, r, t, e in results:
            invoke = e.params.get("invoke_s", 0.0)
            lt = Table(
                title=f"{n}@{r} on {t.id}" + (f" (+ {invoke * 1e6:.0f} us per inference)" if invoke else ""),
            )
            for col in ("#", "layer", "kind", "MACs (M)", "KB moved", "MACs/B", "bound", "time us", "share"):
                lt.add_column(col, justify="left" if col in ("layer", "kind", "bound") else "right")
            total = sum(x.time_s for x in e.layers) or 1.0
            for i, x in enumerate(e.layers):
                lt.add_row(
                    str(i),
                    x.name,
                    x.kind,
                    f"{x.macs / 1e6:.2f}",
                    f"{x.bytes / 1e3:.1f}",
                    "–" if not x.bytes else f"{x.intensity:.1f}",
                    x.bound,
                    f"{x.time_s * 1e6:.1f}",
                    f"{x.time_s / total:.1%}",
                )
            out.print(lt)
    if not no_store:
        out.print(f"stored {len(results)} estimate(s) in {db} (provenance: estimated)")


def _estimate_sweep(resolved, profile, target_names, as_json) -> None:
    """``estimate --sweep``: each model's latency as the ridge point moves over 0-500 MACs/byte. Without a device,
    at a generic 1 T MAC/s peak with int8 bytes (the paper's figure); with one, at each of its targets' own peak
    and precision, that target's ridge marked."""
    from . import estimator as E

    if profile is None:
        if target_names:
            raise DeploykitError("--target with --sweep needs --device: targets belong to a device profile")
        cases = [(None, 1e12, "int8")]
        title = "latency (ms) across ridge points, peak 1 T MAC/s, int8 bytes"
    else:
        cases = [(t, E.roofline_for(t).peak_macs_per_s, t.precision) for t in E.select_targets(profile, target_names)]
    rows = []
    for t, peak, precision in cases:
        for n, r, ls in resolved:
            row = {"model": n, "resolution": r}
            if t is not None:
                row |= {
                    "target": t.id,
                    "peak_macs_per_s": peak,
                    "precision": precision,
                    "target_ridge": E.roofline_for(t).ridge,
                }
            rows.append(row | {"sweep": E.sweep_ridge(ls, precision, peak=peak)})
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    for t, peak, precision in cases:
        mine = [r for r in rows if r.get("target") == (t.id if t else None)]
        if t is not None:
            title = (
                f"{t.id}: latency (ms) across ridge points, peak {peak / 1e12:.3g} T MAC/s, {precision} bytes"
                f" (the target's own ridge: {E.roofline_for(t).ridge:.0f} MACs/B)"
            )
        tab = Table(title=title)
        tab.add_column("ridge MACs/B", justify="right")
        for r in mine:
            tab.add_column(Text(r["model"]), justify="right")
        for i, point in enumerate(mine[0]["sweep"]):
            tab.add_row(str(point["ridge"]), *(f"{r['sweep'][i]['latency_ms']:.3f}" for r in mine))
        out.print(tab)


# What the estimate table's status adds for each Estimate.calibration (a fitted target's row says just "ok")
_CALIBRATION_SAYS = {"fitted": "", "borrowed": "borrowed", "datasheet": "datasheet only"}


def _estimate_validate(device, names, profiles, as_json) -> None:
    """``estimate --validate``: refit every target that has corpus rows from the shipped corpus, now, and
    score it by cross-validation (nothing here is read from a stored result)."""
    from . import corpus
    from . import estimator as E
    from .devices import get_profile, load_profiles

    devices = [device] if device else sorted(load_profiles(profiles))
    results = []
    for d in devices:
        prof = get_profile(d, profiles)
        for t in [t for t in prof.targets if t.peak_macs_per_s and t.mem_bw_bytes_per_s]:
            if names and not (set(names) & (corpus.names_of(t) | {t.id})):
                continue
            rows = E.training_rows(t, None, published=True)  # split=fit only: held-out rows never reach a fit
            if len({(m, r) for m, r, *_ in rows}) >= 2 or corpus.rows_for(t, "heldout"):
                results.append(E.validate_target(t, rows))
    if device and not results:
        raise DeploykitError(f"no target of {device} has two or more corpus rows to validate on")
    families = E.family_transfer(load_profiles(profiles)) if not device else []
    if as_json:
        print(json.dumps({"targets": results, "leave_one_device_out": families}, indent=2))
        return
    pct = lambda v: "–" if v is None else f"{v:.1%}"  # noqa: E731
    num = lambda v: "–" if v is None else f"{v:.3f}"  # noqa: E731
    t = Table(title="estimator validation, refitted from the shipped corpus now (leave-one-out; baseline a + k·MACs)")
    cols = ("target", "rows", "sources", "LOMO med. err", "LOMO Spearman", "80% coverage", "base err",
            "base Spearman", "LOSO med. err", "LOSO base err", "Tab.16 Spearman")  # fmt: skip
    for c in cols:
        t.add_column(c, justify="left" if c in ("target", "sources") else "right")
    for r in [r for r in results if r["models"] >= 2]:  # a target with held-out rows only is in the next table
        lomo, loso, t16 = r["leave_one_model_out"], r["leave_one_source_out"], r["paper_table16"] or {}
        t.add_row(
            r["target"], str(r["rows"]), ", ".join(r["sources"]), pct(lomo.get("median_ape")), num(lomo.get("spearman")),
            pct(lomo.get("interval_coverage")), pct(lomo.get("baseline_median_ape")), num(lomo.get("baseline_spearman")),
            pct(loso.get("median_ape")), pct(loso.get("baseline_median_ape")), num(t16.get("spearman_roofline")),
        )  # fmt: skip
    out.print(t)
    held = [r for r in results if r.get("heldout")]
    h = Table(title="held-out (independent sources): the shipped profile, not refitted, on split=heldout rows")
    # "labs' median": each model predicted by the median of its own held-out rows, the reference that the labs'
    # disagreement leaves to any estimator giving one number per model and chip (estimator.lab_agreement)
    for c in ("target", "rows", "sources", "med. err", "Spearman", "80% coverage", "labs' median: err / Spearman",
              "fitted on"):  # fmt: skip
        h.add_column(c, justify="left" if c in ("target", "sources", "fitted on") else "right")
    for r in held:
        x = r["heldout"]
        la = x["lab_agreement"]
        h.add_row(
            r["target"], str(x["rows"]), ", ".join(x["sources"]), pct(x["median_ape"]), num(x["spearman"]),
            pct(x["interval_coverage"]), f"{pct(la['median_ape'])} / {num(la['spearman'])}", x["fitted_on"],
        )  # fmt: skip
    if held:
        out.print(h)
    else:
        out.print("held-out (independent sources): no split=heldout rows for these targets")
    if families:
        f = Table(title="leave one device out: each device predicted from its siblings' pooled rows")
        for c in (
            "family",
            "target",
            "precision",
            "device",
            "scaled",
            "train rows",
            "med. err",
            "Spearman",
            "base err",
        ):
            f.add_column(c, justify="right" if c in ("train rows", "med. err", "Spearman", "base err") else "left")
        for r in families:
            f.add_row(
                r["family"], r["target"], r["precision"], r["device"], "datasheet" if r["datasheet_scaled"] else "no",
                str(r["train_rows"]), pct(r.get("median_ape")),
                num(r.get("spearman")), pct(r.get("baseline_median_ape")),
            )  # fmt: skip
        out.print(f)


def _estimate_fit(profile, names, db, published, write, as_json, profiles_dir=None) -> None:
    from dataclasses import replace
    from pathlib import Path

    from . import estimator as E
    from .profile_writer import write_profile
    from .store import Store

    if not Path(db).exists() and not published:
        raise DeploykitError(f"no results database at {db}", hint="run `deploykit bench` first, or add --published")
    store = Store.existing(db) if Path(db).exists() else None  # read only: never converts a file that is no database
    from .devices import load_profiles

    siblings = load_profiles(profiles_dir)  # a user's own profiles (--profiles) may be a target's siblings too
    fitted, report, skipped = [], [], {}
    for t in E.select_targets(profile, names):
        rows, unreadable = E.analysable_rows(E.training_rows(t, store, published))
        skipped.update(unreadable)
        if not rows:
            borrowed = E.transfer(t, profile, siblings) if published else None
            if borrowed:
                fitted.append(borrowed[0])
                report.append(borrowed[1])
            else:
                fitted.append(t)
            continue
        # one model's rows are too few for a shape of its own: scale a calibrated sibling's to them where one exists
        one_model = len({(m, r) for m, r, *_ in rows}) == 1
        nt, rep = (one_model and E.transfer(t, profile, siblings, rows)) or E.calibrate(t, rows)
        fitted.append(nt)
        report.append(rep)
    if store is not None:
        store.close()
    for model, why in skipped.items():  # on stderr, with --json too
        err.print(f"note: rows of {model} skipped: deploykit cannot read its layers ({why})", soft_wrap=True)
    if not report:
        raise DeploykitError(
            f"nothing to fit for {profile.name}: no measured rows for its targets",
            hint="bench the device first, or add --published",
        )
    path = None
    if write:
        # every target of the profile is written back, refitted or as it was (those without roofline figures,
        # or not named with --target, included)
        by_id = {t.id: t for t in fitted}
        path = write_profile(
            replace(profile, targets=[by_id.get(t.id, t) for t in profile.targets]),
            Path(write) / f"{profile.name}.toml",
            header=f"{profile.display}: fitted by `deploykit estimate --fit`",
        )
    if as_json:
        print(json.dumps({"profile": profile.name, "fits": report, "written": str(path) if path else None}, indent=2))
        return
    t = Table(title=f"{profile.name}: fitted roofline parameters")
    for col in ("target", "rows", "peak GMAC/s", "GB/s", "ridge", "dispatch us", "invoke us", "dw eff.", "rms log err"):
        t.add_column(col, justify="left" if col == "target" else "right")
    for r in report:
        t.add_row(
            r["target"],
            str(r["rows"]),
            f"{r['peak_macs_per_s'] / 1e9:.1f}",
            f"{r['mem_bw_bytes_per_s'] / 1e9:.2f}",
            f"{r['peak_macs_per_s'] / r['mem_bw_bytes_per_s']:.1f}",
            f"{r['dispatch_s'] * 1e6:.2f}",
            f"{r['invoke_s'] * 1e6:.1f}",
            f"{r['efficiency'].get('dwconv', float('nan')):.3f}",
            "–" if r["rms_log_error"] is None else f"{r['rms_log_error']:.3f}",  # borrowed: fitted on no row
        )
    out.print(t)
    for r in report:
        if r["caveat"]:
            err.print(f"note: {r['target']}: {r['caveat']}")
        if r.get("borrowed_from"):
            how = f"scaled by {r['scale']:.3g} to its {r['rows']} row(s)" if r["rows"] else "datasheet-scaled"
            err.print(
                f"note: {r['target']}: {r['borrowed_from']}'s fitted shape, {how} (the interval is the transfer's)"
            )
    if path:
        out.print(f"wrote {path}; use it with --profiles {write}")


@app.command()
def report(
    db: Annotated[str, typer.Option(help="Results database.")] = "deploykit-results.db",
    out_file: Annotated[str, typer.Option("--out", "-o", help="HTML file to write.")] = "reports/latest.html",
    profiles: Annotated[str | None, typer.Option(help="Extra folder of device profile TOMLs.")] = None,
    as_json: JsonOpt = False,
):
    """Write the self-contained HTML report (Pareto fronts, universality, fidelity, roofline) from the store."""

    from .reports.html import write_report
    from .store import Store

    _output_path(out_file, "--out")
    with Store.existing(db) as store:  # the report reads it: a file that is no database is left untouched
        if store.count() == 0:
            raise DeploykitError(f"{db} holds no results yet", hint="run `deploykit sweep` or `deploykit bench` first")
    try:
        path = write_report(db, out_file, profiles)
    except OSError as e:
        raise DeploykitError(f"cannot write {out_file}: {e.strerror}") from None
    if as_json:
        print(json.dumps({"report": str(path), "bytes": path.stat().st_size}))
    else:
        out.print(f"wrote {path} ({path.stat().st_size / 1e3:.0f} kB); open it in a browser, it works offline")


@app.command("eval")
def eval_(
    artifact: Annotated[str, typer.Argument(help="An exported .onnx/.tflite (or .mlpackage on macOS).")],
    data: Annotated[str, typer.Option("--data", help="ImageFolder-style dataset: DIR/<class>/<image>.")],
    limit: Annotated[int | None, typer.Option(help="Only the first N images.")] = None,
    db: Annotated[
        str, typer.Option(help="Results database (reports prefer measured accuracy).")
    ] = "deploykit-results.db",
    no_store: Annotated[bool, typer.Option("--no-store", help="Do not store the result.")] = False,
    as_json: JsonOpt = False,
):
    """Measure top-1/top-5 accuracy of an artifact on a folder of labelled images."""
    from pathlib import Path

    from .evaluate import evaluate

    if limit is not None and limit < 1:
        raise DeploykitError("--limit must be at least 1")
    with _bar(as_json) as p:
        task = p.add_task("evaluating", total=None)
        res = evaluate(artifact, data, limit, lambda i, n: p.update(task, completed=i, total=n))
    if not no_store:
        from .store import Store

        with Store(Path(db)) as store:
            store.add_accuracy({k: res[k] for k in res if k not in ("classes", "top1_ci95")})
    if not res["weights_real"]:
        err.print(
            "warning: this file has deploykit's seeded random weights, not trained ones: its accuracy says nothing"
            " about the model, and reports keep the published figure (export with --weights to measure it)"
        )
    if as_json:
        print(json.dumps(res, indent=2))
        return
    out.print(
        f"{res['model']} {res['format']} {res['precision']}: top-1 {res['top1']:.2f}%"
        f" (95% CI {res['top1_ci95'][0]:.1f}-{res['top1_ci95'][1]:.1f})  top-5 {res['top5']:.2f}%"
        f"  ({res['images']} images, {res['classes']} classes)"
    )


@app.command()
def sweep(
    models: Annotated[str, typer.Option(help="Comma-separated zoo models.")] = "mnv4_conv_s,mnv1_100,mnv2_100",
    devices: Annotated[str, typer.Option(help="Comma-separated device profiles.")] = "host",
    formats: Annotated[
        str | None, typer.Option(help="Comma-separated formats (onnx, tflite, coreml, pytorch).")
    ] = None,
    db: Annotated[str, typer.Option(help="Results database.")] = "deploykit-results.db",
    out_dir: Annotated[str, typer.Option("--out", "-o", help="Artifacts folder (export cache).")] = "artifacts",
    report_file: Annotated[str | None, typer.Option("--report", help="Write the HTML report here at the end.")] = None,
    runs: Annotated[int, typer.Option(help="Invocations per repetition (measured targets).")] = 1000,
    repetitions: Annotated[int, typer.Option(help="Repetitions per measured target.")] = 5,
    warmup: Annotated[int, typer.Option(help="Warm-up invocations (measured targets).")] = 50,
    budget: Annotated[float | None, typer.Option(help="Seconds per measured target at most (caps runs).")] = None,
    profiles: Annotated[str | None, typer.Option(help="Extra folder of device profile TOMLs.")] = None,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Run failed cells again.")] = False,
    weights: Annotated[
        str | None,
        typer.Option(
            help="'timm': every model's timm checkpoint (cache or hub); 'cached': those in the cache, seeded random weights for the rest."
        ),
    ] = None,
    strict: Annotated[int, typer.Option(help="Re-measure a noisy cell up to N times, then fail it.")] = 0,
    no_cache: Annotated[
        bool,
        typer.Option(
            "--no-cache",
            help="Neither reuse nor keep verified files in the artifact cache (~/.cache/deploykit/artifacts).",
        ),
    ] = False,
    plan_only: Annotated[bool, typer.Option("--plan", help="Print the jobs (JSON) and stop.")] = False,
    executor: Annotated[
        str, typer.Option(help="serial (this machine, one job at a time) or ray (a device farm: `deploykit farm`).")
    ] = "serial",
    address: Annotated[
        str | None, typer.Option(help="--executor ray: the farm's head, HEAD:PORT (default: a Ray on this host).")
    ] = None,
    grace: Annotated[
        float, typer.Option(help="--executor ray: seconds a device may be gone before its jobs are device-unavailable.")
    ] = 60.0,
    as_json: JsonOpt = False,
):
    """Export, verify, measure (attached devices) or estimate (the rest), store, and report: the whole matrix.
    Exit status 1 when any cell failed (each is named); failed cells are re-run only with --retry-failed."""
    from pathlib import Path

    from .measurement import Method
    from .sweep import SweepOptions, plan_sweep, run_sweep, store_published, weights_plan

    # a name given twice is one name: a duplicate would run (and store) every job of it twice
    split = lambda text: list(dict.fromkeys(x.strip() for x in text.split(",") if x.strip()))  # noqa: E731
    _check_method(runs, repetitions, warmup, strict, budget)
    if report_file is not None:
        _output_path(report_file, "--report")
    if executor not in ("serial", "ray"):
        raise DeploykitError(f"--executor {executor!r}: give serial or ray")
    if address and executor != "ray":
        raise DeploykitError("--address is the Ray head's: it goes with --executor ray")
    farm = reach = None
    if executor == "ray":
        from .farm.executor import FarmOptions, cluster_reach, connect

        farm = FarmOptions(address=address, grace_s=grace)
        connect(farm)  # the plan asks the cluster which devices are attached
        reach = cluster_reach()
    plan_args = (split(models), split(devices), split(formats) if formats else None, profiles)
    jobs = plan_sweep(*plan_args, reach=reach) if reach else plan_sweep(*plan_args)
    if plan_only:
        print(json.dumps([j.to_dict() for j in jobs], indent=2))
        return
    opts = SweepOptions(
        db=Path(db),
        out=Path(out_dir),
        profiles=Path(profiles) if profiles else None,
        method=Method(warmup=warmup, repetitions=repetitions, runs=runs, budget_s=budget),
        retry_failed=retry_failed,
        strict=strict,
        weights=weights,
        use_cache=not no_cache,
    )
    measured = [j.model for j in jobs if j.mode == "measure"]
    if weights == "timm":
        from .weights import resolve_weights
        from .zoo import get_spec

        for name in dict.fromkeys(measured):
            resolve_weights("timm", get_spec(name))  # a cold cache fails now, in one line, before any work
    elif weights not in (None, "cached") and not Path(weights).is_file():
        raise DeploykitError(f"--weights {weights!r}: give timm, cached, or a checkpoint file")
    if measured:
        said = weights_plan(measured, weights)
        err.print("weights: " + "; ".join(f"{m}: {w}" for m, w in said.items()), soft_wrap=True)
    store_published(sorted({j.device for j in jobs}), opts.db, profiles)
    with _bar(as_json) as progress:
        listener = _BarListener(progress)
        try:
            if farm is not None:
                from .farm.executor import run_sweep_ray

                summary = run_sweep_ray(jobs, opts, listener, farm)
            else:
                summary = run_sweep(jobs, opts, listener)
        except KeyboardInterrupt:
            err.print(f"interrupted: finished jobs are stored in {db}; run the same command to resume")
            raise typer.Exit(130) from None
    if report_file:
        from .reports.html import write_report

        try:
            summary["report"] = str(write_report(opts.db, report_file, profiles))
        except OSError as e:
            raise DeploykitError(
                f"results are in {db}, but the report cannot be written: {report_file}: {e.strerror}"
            ) from None
    _say_quality(listener.results)
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        noisy = f", {summary['noisy']} noisy" if summary.get("noisy") else ""
        out.print(
            f"sweep: {summary['jobs']} job(s), {summary['skipped']} already done, ran {summary['ran']}: "
            f"{summary['ok']} ok, {summary['unsupported']} unsupported, {summary['failed']} failed{noisy}"
            + (f", {summary['device-unavailable']} device-unavailable" if summary.get("device-unavailable") else "")
            + ";"
            f" results in {db}",
        )
        exports = summary.get("exports") or {}
        if any(exports.values()):  # reused files were verified when first exported (their manifests say how)
            out.print(
                f"exports: {exports['exported']} converted and verified, {exports['reused']} reused from {out_dir},"
                f" {exports['reused_from_cache']} reused from cache"
            )
        for cell in summary["failed_cells"]:
            out.print(f"failed: {cell['model']} on {cell['target']}: {_one_line(cell['error'])}")
        if summary["failed_cells"] and not retry_failed:
            out.print("(failed cells are kept as results; run again with --retry-failed to retry them)")
        if report_file:
            out.print(f"report: {summary['report']}")
    if summary["failed_cells"]:
        raise typer.Exit(1)


farm_app = typer.Typer(help="A device farm on Ray: hosts advertise their devices; `sweep --executor ray` uses them.")
app.add_typer(farm_app, name="farm")


@farm_app.command("resources")
def farm_resources(as_json: JsonOpt = False):
    """The Ray resources (one per attached device, and this host) and labels this host would advertise."""
    from .farm.node import local_versions, version_labels
    from .farm.resources import host_devices, node_resources

    resources, labels = node_resources(host_devices())
    labels.update(version_labels(local_versions()))
    if as_json:
        print(json.dumps({"resources": resources, "labels": labels}, indent=2))
        return
    for name in resources:
        out.print(name, markup=False, highlight=False)
    for k, v in labels.items():
        out.print(f"label {k}={v}", markup=False, highlight=False)


@farm_app.command("up")
def farm_up(
    port: Annotated[int, typer.Option(help="The head's port.")] = 6379,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the `ray start` command only.")] = False,
):
    """Start the farm's head on this host (token authentication on; a token is created if none exists)."""
    from .farm.node import TOKEN_PATH, up

    cmd = up(port, dry_run)
    out.print(" ".join(cmd) if dry_run else f"farm head up on port {port}", markup=False, highlight=False)
    if not dry_run:
        out.print(f"other hosts: copy {TOKEN_PATH} to ~/.ray/ there, then `deploykit farm join THIS_HOST:{port}`")


@farm_app.command("join")
def farm_join(
    address: Annotated[str, typer.Argument(help="The head, HEAD:PORT.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check, then print the `ray start` command only.")] = False,
):
    """Start a worker node advertising this host's attached devices (join again after plugging a phone in)."""
    from .farm.node import join

    cmd = join(address, dry_run)
    out.print(" ".join(cmd) if dry_run else f"joined {address}", markup=False, highlight=False)


@farm_app.command("status")
def farm_status(
    address: Annotated[str | None, typer.Option(help="The head, HEAD:PORT (default: this host's Ray).")] = None,
    as_json: JsonOpt = False,
):
    """The farm's nodes, their devices, and the jobs in flight."""
    from .farm.node import status

    s = status(address)
    if as_json:
        print(json.dumps(s, indent=2))
        return
    for n in s["nodes"]:
        state = "alive" if n["alive"] else "dead"
        out.print(f"{n['address']} {state} {n['cpus']:g} CPU: {', '.join(n['devices']) or 'no devices'}", markup=False)
    jobs = s["in_flight"]["jobs"]
    out.print(f"{len(jobs)} job(s) in flight" + (f" (driver {s['in_flight']['driver']})" if jobs else ""))
    for j in jobs:
        out.print(f"  {j['model']} on {j['target']} ({j['device'] or 'hosted'})", markup=False)


def main() -> None:
    import logging

    # Libraries' own log lines are noise on the command line, not news: torchao warns about each CUDA kernel library
    # it cannot load on a CPU-only machine, torch's pytree about an Enum that litert-torch registers, absl about
    # its own initialisation. deploykit says what matters in its own words.
    for name in ("torchao", "torch.utils._pytree", "absl"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        rc = app(standalone_mode=False)
    except DeploykitError as e:
        _fail(str(e), e.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        _fail("interrupted", 130)
    except typer.Exit as e:
        rc = e.exit_code
    except OSError as e:  # a path the checks above did not foresee (a full disk, a folder gone mid-run): one line
        _fail(f"{e.filename + ': ' if e.filename else ''}{e.strerror or e}", 1)
    except Exception as e:
        # Usage errors (unknown command, bad option value) are click exceptions, which Typer vendors
        # privately; they are recognised by click's public interface and said in one line too.
        if hasattr(e, "format_message") and isinstance(getattr(e, "exit_code", None), int):
            _fail(f"{e.format_message()} (see `deploykit --help`)", 2)
        raise
    sys.exit(rc if isinstance(rc, int) else 0)


def _fail(message: str, code: int) -> None:
    line = Text("error:", style="red") + Text(" " + " ".join(plain_text(message).split()))
    err.print(line, highlight=False, soft_wrap=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
