"""`deploykit results [import|delete]` and `report`: the store, read, filled from elsewhere, pruned and drawn."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from ..errors import DeploykitError
from .common import DbOpt, DeviceFilter, JsonOpt, ModelFilter, ProvenanceFilter, output_path
from .render import CSV_COLUMNS, csv_row, err, layers_measured_table, measurement_table, model_label, out, print_json

results_app = typer.Typer(help="List stored measurements, import ones measured elsewhere, or delete some.")


def _stored_rows(db: str, model: str | None, device: str | None, provenance: str | None) -> list:
    """The rows `results` and `results delete` select: checked filters, from a database that must already be
    one (a reading command never creates or converts a file)."""
    from ..measurement import PROVENANCES
    from ..store import Store

    if provenance is not None and provenance not in PROVENANCES:
        raise DeploykitError(f"--provenance {provenance!r} is not one of {', '.join(PROVENANCES)}")
    in_zoo = False
    if model is not None:  # an alias or timm name finds the rows stored under the zoo name
        from ..zoo import get_spec

        try:
            model, in_zoo = get_spec(model).name, True
        except DeploykitError:
            pass  # a user's own model: stored under its own name
    with Store.existing(db) as store:
        rows = store.query(model=model, device=device, provenance=provenance)
        stored_models = sorted({m.model for m in store.query()}) if model and not rows and not in_zoo else []
    if model is not None and not rows and not in_zoo:  # a misspelt name, not an empty result
        raise DeploykitError(
            f"no results for model {model!r}, and no zoo model has that name",
            hint=f"models in {db}: {', '.join(stored_models) or 'none'}",
        )
    if device is not None and not rows:
        from ..devices import load_profiles

        if device not in load_profiles():  # a misspelt name, not an empty result
            raise DeploykitError(
                f"no results for device {device!r}, and no profile has that name", hint="see `deploykit devices`"
            )
    return rows


def _refuse_listing_options(ctx: typer.Context) -> None:
    """`results --db X delete` would delete from the default database: the listing's options, given before a
    subcommand, belong to it and are refused rather than ignored."""
    # compared by name: Typer vendors its own click, whose ParameterSource is not the installed click's
    given = [p for p in ctx.command.params if getattr(ctx.get_parameter_source(p.name), "name", "") != "DEFAULT"]
    if given:
        option = given[0].opts[0]
        raise DeploykitError(
            f"{option} goes after `results {ctx.invoked_subcommand}`: given before it, it is the listing's",
            hint=f"deploykit results {ctx.invoked_subcommand} {option} ...",
        )


@results_app.callback(invoke_without_command=True)
def results(
    ctx: typer.Context,
    db: DbOpt = "deploykit-results.db",
    model: ModelFilter = None,
    device: DeviceFilter = None,
    provenance: ProvenanceFilter = None,
    as_json: JsonOpt = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV on stdout.")] = False,
    layers: Annotated[
        bool, typer.Option("--layers", help="Each row's per-layer profile (`deploykit profile`), where it has one.")
    ] = False,
):
    """List stored measurements, filtered (`deploykit results import FILE` adds ones measured elsewhere,
    `deploykit results delete` removes some)."""
    if ctx.invoked_subcommand:
        _refuse_listing_options(ctx)
        return
    if as_json and as_csv:
        raise DeploykitError("--json and --csv cannot be combined: give one")
    if layers and as_csv:
        raise DeploykitError("--layers prints tables (or, with --json, the rows that carry them): not with --csv")
    rows = _stored_rows(db, model, device, provenance)
    if layers:
        rows = [m for m in rows if m.details.get("layers_measured")]
        if not rows:
            raise DeploykitError(
                f"no row in {db} has a per-layer profile", hint="run `deploykit profile MODEL --device D`"
            )
    if layers and not as_json:
        for m in rows:
            layers_measured_table(m.details["layers_measured"], f"#{m.id} {model_label(m)} on {m.target} ({m.created})")
        return
    if as_json:
        print_json([m.to_dict(samples=False) for m in rows])
    elif as_csv:
        import csv

        w = csv.writer(sys.stdout)
        w.writerow(CSV_COLUMNS)
        for m in rows:
            w.writerow(csv_row(m))
    else:
        measurement_table(rows, f"{len(rows)} measurement(s) in {db}")


@results_app.command("import")
def results_import(
    file: Annotated[str, typer.Argument(help="CSV or JSON: device, model, compute_unit (or target), latency_ms.")],
    db: DbOpt = "deploykit-results.db",
    profiles: Annotated[str | None, typer.Option(help="Extra folder of device profile TOMLs.")] = None,
    as_json: JsonOpt = False,
):
    """Import latencies measured outside deploykit (e.g. Xcode's Core ML performance report on an iPhone).
    Rows already stored (same cell, latency, tool, date and note) are skipped, and said."""

    from ..importer import import_file

    rows, skipped = import_file(Path(file), Path(db), profiles)
    if skipped:  # on stderr, with --json too: the JSON lists the rows stored by this import
        err.print(f"{len(skipped)} row(s) already stored (or given twice in {Path(file).name}), skipped")
    if as_json:
        print_json([m.to_dict(samples=False) for m in rows])
    elif rows:
        measurement_table(rows, f"imported {len(rows)} measurement(s) from {Path(file).name} into {db}")
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
        measurement_table(rows, f"{len(rows)} measurement(s) to delete from {db}")
    if not yes:
        if not sys.stdin.isatty():
            raise DeploykitError("nobody can be asked here (stdin is not a terminal): add --yes to delete these")
        if not typer.confirm(f"delete these {len(rows)} measurement(s)?", err=True):
            err.print("nothing deleted")
            raise typer.Exit(1)
    from ..store import Store

    with Store.existing(db) as store:
        gone = store.delete([m.id for m in rows])
    if as_json:
        print_json([m.to_dict(samples=False) for m in rows])
    else:
        out.print(f"deleted {gone} measurement(s) from {db}")


def report(
    db: Annotated[str, typer.Option(help="Results database.")] = "deploykit-results.db",
    out_file: Annotated[str, typer.Option("--out", "-o", help="HTML file to write.")] = "reports/latest.html",
    profiles: Annotated[str | None, typer.Option(help="Extra folder of device profile TOMLs.")] = None,
    compare: Annotated[
        tuple[str, str] | None,
        typer.Option(help="BASE NEW: two runs (labels, as `deploykit compare` takes them) compared in the report."),
    ] = None,
    as_json: JsonOpt = False,
):
    """Write the self-contained HTML report (Pareto fronts, universality, fidelity, roofline) from the store."""

    from ..reports.html import write_report
    from ..store import Store

    out_file = output_path(out_file, "--out")  # a link resolved: the file it points to is the one rewritten
    with Store.existing(db) as store:  # the report reads it: a file that is no database is left untouched
        if store.count() == 0:
            raise DeploykitError(f"{db} holds no results yet", hint="run `deploykit sweep` or `deploykit bench` first")
    comparison = None
    if compare:
        from ..compare import runs_report

        comparison = runs_report(*compare, db)
    try:
        path = write_report(db, out_file, profiles, compare, comparison)
    except OSError as e:
        raise DeploykitError(f"cannot write {out_file}: {e.strerror}") from None
    if as_json:
        print(json.dumps({"report": str(path), "bytes": path.stat().st_size}))
    else:
        out.print(f"wrote {path} ({path.stat().st_size / 1e3:.0f} kB); open it in a browser, it works offline")
