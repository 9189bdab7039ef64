"""`deploykit devices`, `bench` and `eval`: what is attached, its latency, and a file's accuracy."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from ..errors import DeploykitError, Interrupted
from .common import (
    MAX_BATCH,
    MAX_SECONDS,
    WEIGHTS_HELP,
    JsonOpt,
    LabelOpt,
    NoCacheOpt,
    backend_names,
    bounded,
    check_label,
    check_method,
    device_names,
    named_shapes,
    one_line,
    parse_threads,
    precision_names,
)
from .render import BarListener, bar, err, measurement_table, out, print_json, say_quality


def devices(
    profiles: Annotated[str | None, typer.Option(help="Extra folder of device profile TOMLs.")] = None,
    as_json: JsonOpt = False,
):
    """Device profiles, their targets, and which devices are reachable now."""
    from ..devices import load_profiles, reachability

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
        print_json(rows)
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


def bench(
    device: Annotated[
        str,
        typer.Option("--device", "-d", help="Device profile (see `deploykit devices`).", autocompletion=device_names),
    ],
    model: Annotated[list[str] | None, typer.Option("--model", "-m", help="Zoo model (repeatable).")] = None,
    artifact: Annotated[str | None, typer.Option(help="Benchmark this existing .tflite/.onnx file instead.")] = None,
    resolution: Annotated[
        int | None, typer.Option("--resolution", "-r", help="Zoo models: input side in pixels (default: each one's).")
    ] = None,
    backend: Annotated[
        list[str] | None,
        typer.Option(help="Only these backends/target names (repeatable).", autocompletion=backend_names),
    ] = None,
    precision: Annotated[
        list[str] | None, typer.Option(help="Only these precisions (repeatable).", autocompletion=precision_names)
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
    no_cache: NoCacheOpt = False,
    cooldown: Annotated[
        float, typer.Option(help="Phones: wait up to S seconds for a throttled phone to cool before each cell.")
    ] = 60.0,
    label: LabelOpt = None,
    threads: Annotated[
        str | None,
        typer.Option(help="Each CPU target at each thread count: 1,2,4, or all (1 to the device's cores)."),
    ] = None,
    batch: Annotated[
        int | None,
        typer.Option(help="Also measure throughput (images/s) at batch N where the format runs it."),
    ] = None,
    as_json: JsonOpt = False,
):
    """Measure latency on every target of a device; results go to the database with their provenance.
    Exit status 1 when any measurement failed (each is named)."""

    from ..bench import BenchRequest, run_bench
    from ..measurement import Method

    check_method(runs, repetitions, warmup, strict, budget, timeout)
    bounded("--cooldown", cooldown, 0, MAX_SECONDS)
    check_label(label)
    if batch is not None:
        bounded("--batch", batch, 1, MAX_BATCH)
    req = BenchRequest(
        device=device,
        models=model or [],
        artifact=Path(artifact) if artifact else None,
        resolution=resolution,
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
        input_shapes=named_shapes(input_shape or []),
        weights=weights,
        use_cache=not no_cache,
        label=label,
        threads=parse_threads(threads),
        batch=batch,
    )
    with bar(as_json) as progress:
        listener = BarListener(progress)
        try:
            run_bench(req, listener)
        except KeyboardInterrupt:
            raise Interrupted(f"{len(listener.results)} finished measurement(s) are stored in {db}") from None
    results = listener.results
    failed = [m for m in results if m.status == "failed"]
    say_quality(results)  # on stderr, with --json too: a warning must not need the table to be seen
    if as_json:
        print_json([m.to_dict(samples=False) for m in results])
    else:
        measurement_table(results, f"{device}: median of {repetitions} repetition means")
        for m in failed:
            out.print(f"failed: {m.model} on {m.target}: {one_line(m.error)}", soft_wrap=True)
        out.print(f"stored {len(results)} measurement(s) in {db}")
    if failed:
        raise typer.Exit(1)


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

    from ..evaluate import evaluate

    if limit is not None and limit < 1:
        raise DeploykitError("--limit must be at least 1")
    with bar(as_json) as p:
        task = p.add_task("evaluating", total=None)
        res = evaluate(artifact, data, limit, lambda i, n: p.update(task, completed=i, total=n))
    if not no_store:
        from ..store import Store

        with Store(Path(db)) as store:
            store.add_accuracy({k: res[k] for k in res if k not in ("classes", "top1_ci95")})
    if not res["weights_real"]:
        err.print(
            "warning: this file has deploykit's seeded random weights, not trained ones: its accuracy says nothing"
            " about the model, and reports keep the published figure (export with --weights to measure it)"
        )
    if as_json:
        print_json(res)
        return
    out.print(
        f"{res['model']} {res['format']} {res['precision']}: top-1 {res['top1']:.2f}%"
        f" (95% CI {res['top1_ci95'][0]:.1f}-{res['top1_ci95'][1]:.1f})  top-5 {res['top5']:.2f}%"
        f"  ({res['images']} images, {res['classes']} classes)"
    )
