"""`deploykit profile`: per-layer measured time on every target of a device whose runtime can time its ops."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import DeploykitError
from ..events import Listener
from .common import JsonOpt, ProfilesOpt, check_method, device_names, one_line
from .render import bar, layers_measured_table, out, print_json


class _Steps(Listener):
    """The progress bar: one step per target."""

    def __init__(self, progress):
        self.progress, self.task, self.begun = progress, progress.add_task("planning", total=None), False

    def planned(self, total: int, skipped: int = 0, title: str = "") -> None:
        self.progress.update(self.task, total=total, description=title)

    def started(self, label: str) -> None:
        if self.begun:
            self.progress.advance(self.task)
        self.begun = True
        self.progress.update(self.task, description=label)


def profile(
    model: Annotated[str, typer.Argument(help="Zoo model, or an exported file (.onnx, .pte, .tflite).")],
    device: Annotated[
        str,
        typer.Option("--device", "-d", help="Device profile (see `deploykit devices`).", autocompletion=device_names),
    ],
    target: Annotated[
        list[str] | None, typer.Option(help="Only these targets: id, name, backend or precision (repeatable).")
    ] = None,
    recorded: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="A profile recorded on a device not attached, joined to MODEL: benchmark_model op-profiling CSV,"
            " ONNX Runtime trace, ETDump or AI Hub profile JSON (printed, not stored).",
        ),
    ] = None,
    resolution: Annotated[int | None, typer.Option("--resolution", "-r", help="With --from: its input side.")] = None,
    runs: Annotated[int, typer.Option(help="Invocations per repetition, and of the profiled run.")] = 50,
    repetitions: Annotated[int, typer.Option(help="Repetitions of the timed run.")] = 3,
    warmup: Annotated[int, typer.Option(help="Warm-up invocations before each.")] = 10,
    timeout: Annotated[float, typer.Option(help="Seconds before a hung run is killed.")] = 900,
    db: Annotated[str, typer.Option(help="Results database.")] = "deploykit-results.db",
    no_store: Annotated[bool, typer.Option("--no-store", help="Do not store the timed rows and their tables.")] = False,
    out_dir: Annotated[str, typer.Option("--out", "-o", help="Artifacts folder (export cache).")] = "artifacts",
    profiles: ProfilesOpt = None,
    serial: Annotated[str | None, typer.Option(help="adb serial when several phones match.")] = None,
    benchmark_binary: Annotated[str | None, typer.Option(help="TFLite benchmark_model binary for adb.")] = None,
    as_json: JsonOpt = False,
):
    """Where the time goes: per-op times from each runtime's profiler, joined to the model's layers, beside the
    roofline's prediction, where each ran and check's findings; stored with a timed run's row (`results --layers`).
    Exit status 1 when a target's run failed or a recorded file cannot be read."""
    from ..measurement import Method
    from ..profiling.run import ProfileRequest, from_recording, run_profile

    check_method(runs, repetitions, warmup, 0, None, timeout)
    if recorded is not None:
        if resolution is not None and resolution < 1:
            raise DeploykitError(f"--resolution {resolution}: must be a positive number of pixels")
        done = [from_recording(Path(recorded), model, device, target, resolution, profiles)]
    else:
        if resolution is not None:
            raise DeploykitError("--resolution goes with --from: a run profiles the file or model as exported")
        req = ProfileRequest(
            model, device, target,
            Method(warmup=warmup, repetitions=repetitions, runs=runs, timeout_s=timeout),
            db=None if no_store else Path(db), out=Path(out_dir), profiles=Path(profiles) if profiles else None,
            serial=serial, backend_options={"benchmark_binary": benchmark_binary},
        )  # fmt: skip
        with bar(as_json) as progress:
            done = run_profile(req, _Steps(progress))
    failed = [p for p in done if p.error]
    if as_json:
        print_json([_json(p) for p in done])
    else:
        for p in done:
            if p.table is not None:
                layers_measured_table(p.table, f"{model} on {p.target.id}: where the time goes")
        for p in done:
            if p.skipped:
                out.print(f"{p.target.id}: no per-layer times: {p.skipped}", soft_wrap=True)
        for p in failed:
            out.print(f"failed: {model} on {p.target.id}: {one_line(p.error)}", soft_wrap=True)
        stored = [p for p in done if p.table is not None and p.measurement is not None]
        if stored and not no_store and recorded is None:
            out.print(
                f"stored {len(stored)} timed row(s) with their per-layer tables in {db} (`deploykit results --layers`)"
            )
    if failed:
        raise typer.Exit(1)


def _json(p) -> dict:
    status = "ok" if p.table is not None else "failed" if p.error else "skipped"
    row = p.measurement.to_dict(samples=False) if p.measurement else None
    if row is not None:  # the table is given once, beside it
        row["details"] = {k: v for k, v in row["details"].items() if k != "layers_measured"}
    return {
        "target": p.target.id,
        "status": status,
        "reason": p.error or p.skipped,
        "layers_measured": p.table,
        "measurement": row,
    }
