"""`deploykit estimate`: roofline latency for devices not attached (`estimate MODEL --device D`), and the
estimator's own work: `estimate fit` (to measured latencies), `estimate validate` (cross-validation on the corpus),
`estimate sweep` (latency across ridge points). The flags these had before they were subcommands (`--fit`,
`--validate`, `--sweep`) still work, hidden, for one release."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from ..errors import DeploykitError
from .common import DefaultCommandGroup, JsonOpt, ProfilesOpt, device_names, output_path
from .render import err, out, print_json

estimate_app = typer.Typer(
    cls=DefaultCommandGroup.named("predict"),
    help="Predict latency with the roofline model for devices you do not have (or fit it to ones you do).",
    epilog="Without a command, `deploykit estimate MODEL... --device D` runs `predict`.",
)

ModelsArg = Annotated[list[str] | None, typer.Argument(help="Zoo models or exported files (.tflite uses its graph).")]
DeviceOpt = Annotated[
    str | None, typer.Option("--device", "-d", help="Device profile to estimate for.", autocompletion=device_names)
]
TargetOpt = Annotated[list[str] | None, typer.Option(help="Only these targets (name, backend or paper name).")]
ResolutionOpt = Annotated[int | None, typer.Option("--resolution", "-r", help="Input resolution.")]
PublishedOpt = Annotated[bool, typer.Option(help="Also the target's rows of the corpus of published latencies.")]
WriteOpt = Annotated[str | None, typer.Option(help="Write the fitted profile TOML into this folder.")]
EstimateDbOpt = Annotated[str, typer.Option(help="Results database (estimates are stored as 'estimated').")]


def _hidden_flag(flag: str, help_text: str):
    return Annotated[bool, typer.Option(flag, help=help_text, hidden=True)]


@estimate_app.command("predict")
def predict(
    model: ModelsArg = None,
    device: DeviceOpt = None,
    target: TargetOpt = None,
    resolution: ResolutionOpt = None,
    layers: Annotated[bool, typer.Option("--layers", help="Per-layer table: bound, intensity, share of time.")] = False,
    db: EstimateDbOpt = "deploykit-results.db",
    no_store: Annotated[bool, typer.Option("--no-store", help="Do not store the estimates.")] = False,
    profiles: ProfilesOpt = None,
    as_json: JsonOpt = False,
    # the modes before they were subcommands: kept, hidden, for one release
    sweep: _hidden_flag("--sweep", "Now `deploykit estimate sweep`.") = False,
    fit: _hidden_flag("--fit", "Now `deploykit estimate fit`.") = False,
    validate: _hidden_flag("--validate", "Now `deploykit estimate validate`.") = False,
    published: Annotated[bool, typer.Option(hidden=True, help="With --fit.")] = False,
    write: Annotated[str | None, typer.Option(hidden=True, help="With --fit.")] = None,
):
    """Latency of each model on each target of a device, with its 80% interval (the default command)."""
    _check_target_names(target)
    if fit or validate or sweep or published or write is not None:
        _old_mode_flags(
            model, device, target, resolution, db, profiles, as_json, sweep, fit, validate, published, write
        )
        return
    if not model:
        raise DeploykitError(
            "name at least one model (or file) to estimate", hint="e.g. deploykit estimate mnv4_conv_s --device pixel8"
        )
    if not device:
        raise DeploykitError("--device is required", hint="see `deploykit devices` for profiles")
    from .. import estimator as E
    from ..devices import get_profile

    resolved = _resolve_models(model, resolution)
    profile = get_profile(device, profiles)
    results = [
        (name, res, t, E.estimate_layers(ls, E.roofline_for(t)))
        for name, res, ls in resolved
        for t in E.select_targets(profile, target)
    ]
    if not no_store:
        from ..store import Store

        with Store(db) as store:
            layers_of = {(n, r): ls for n, r, ls in resolved}
            for name, res, t, est in results:
                store.add(E.to_measurement(name, res, t, est, layers_of[(name, res)]))
    if as_json:
        print_json(
            [
                {"model": n, "resolution": r, "target": t.id, "provenance": "estimated", **e.to_dict(layers=layers)}
                for n, r, t, e in results
            ]
        )
        return
    _estimates_table(profile, results)
    if layers:
        _layers_tables(results)
    if not no_store:
        out.print(f"stored {len(results)} estimate(s) in {db} (provenance: estimated)")


@estimate_app.command("fit")
def fit_command(
    device: Annotated[
        str, typer.Option("--device", "-d", help="The profile whose targets to fit.", autocompletion=device_names)
    ],
    target: TargetOpt = None,
    db: Annotated[
        str, typer.Option(help="Results database holding the device's measured rows.")
    ] = "deploykit-results.db",
    published: PublishedOpt = False,
    write: WriteOpt = None,
    layers: Annotated[
        bool,
        typer.Option(
            "--layers",
            help="Fit each op kind's efficiency on the per-layer tables `deploykit profile` stored in --db first"
            " (targets without tables are fitted as without it).",
        ),
    ] = False,
    profiles: ProfilesOpt = None,
    as_json: JsonOpt = False,
):
    """Fit a device's targets to the latencies measured on it (least squares in log space)."""
    from ..devices import get_profile

    _check_target_names(target)
    if write is not None:
        output_path(write, "--write", folder=True)
    _estimate_fit(get_profile(device, profiles), target, db, published, write, as_json, profiles, layers)


@estimate_app.command("validate")
def validate_command(
    device: DeviceOpt = None,
    target: TargetOpt = None,
    profiles: ProfilesOpt = None,
    as_json: JsonOpt = False,
):
    """Refit from the shipped corpus now and print cross-validated errors per target."""
    _check_target_names(target)
    _estimate_validate(device, target, profiles, as_json)


@estimate_app.command("sweep")
def sweep_command(
    model: ModelsArg = None,
    device: DeviceOpt = None,
    target: TargetOpt = None,
    resolution: ResolutionOpt = None,
    profiles: ProfilesOpt = None,
    as_json: JsonOpt = False,
):
    """Latency across ridge points 0-500 MACs/byte: at a generic 1 T MAC/s int8 peak, or at each of a device's
    targets' own peak and precision."""
    from ..devices import get_profile

    _check_target_names(target)
    if not model:
        raise DeploykitError(
            "name at least one model (or file) to sweep", hint="e.g. deploykit estimate sweep mnv4_conv_s"
        )
    resolved = _resolve_models(model, resolution)
    _estimate_sweep(resolved, get_profile(device, profiles) if device else None, target, as_json)


def _old_mode_flags(model, device, target, resolution, db, profiles, as_json, sweep, fit, validate, published, write):
    """`estimate --fit|--validate|--sweep`, as before they were subcommands: options that belong to another mode
    are refused rather than ignored, in the words they were refused in."""
    from ..devices import get_profile

    modes = [flag for flag, on in (("--validate", validate), ("--fit", fit), ("--sweep", sweep)) if on]
    if len(modes) > 1:
        raise DeploykitError(f"{' and '.join(modes)} cannot be combined: give one")
    if (validate or fit) and model:
        raise DeploykitError(f"{modes[0]} takes no model names ({model[0]}): it works on the device's targets")
    for flag, given in (("--write", write is not None), ("--published", published)):
        if given and not fit:
            raise DeploykitError(f"{flag} goes with --fit")
    if write is not None:
        output_path(write, "--write", folder=True)
    if validate:
        _estimate_validate(device, target, profiles, as_json)
    elif fit:
        if not device:
            raise DeploykitError("--fit needs --device: the profile whose targets to fit")
        _estimate_fit(get_profile(device, profiles), target, db, published, write, as_json, profiles)
    else:
        if not model:
            raise DeploykitError(
                "name at least one model (or file) to estimate",
                hint="e.g. deploykit estimate mnv4_conv_s --device pixel8",
            )
        resolved = _resolve_models(model, resolution)
        _estimate_sweep(resolved, get_profile(device, profiles) if device else None, target, as_json)


def _check_target_names(target: list[str] | None) -> None:
    if target is not None and not all(x.strip() for x in target):
        raise DeploykitError("--target is empty: give a target name, backend or paper name")


def _resolve_models(model: list[str], resolution: int | None) -> list:
    """(name, resolution, layers) of each zoo model or file."""
    from .. import estimator as E

    if resolution is not None and resolution < 1:
        raise DeploykitError(f"--resolution {resolution}: must be a positive number of pixels")
    return [E.model_layers(m, resolution) for m in model]


# What the estimate table's status adds for each Estimate.calibration (a fitted target's row says just "ok")
_CALIBRATION_SAYS = {"fitted": "", "borrowed": "borrowed", "datasheet": "datasheet only"}


def _estimates_table(profile, results: list) -> None:
    from .. import estimator as E

    tab = Table(title=f"{profile.name}: roofline estimates (provenance: estimated, not measured)")
    numeric = ("latency ms", f"{E.INTERVAL:.0%} interval ms", "compute-bound", "ridge MACs/B")
    for col in ("model", "target", *numeric, "status"):
        tab.add_column(col, justify="right" if col in numeric else "left")
    for n, r, t, e in results:
        status = e.status if e.status == "ok" else "unsupported: " + ", ".join(e.unsupported_ops)
        if e.status == "ok":  # fitted targets say "ok"; the others say where their figures came from
            words = ("ok", _CALIBRATION_SAYS[e.calibration], "extrapolated" if e.unseen_kinds else "",
                     _size_mark(e.extrapolated_size))  # fmt: skip
            status = ", ".join(w for w in words if w)
        lat = "–" if e.latency_ms is None else f"{e.latency_ms:.3f}"
        iv = "–" if e.latency_ms is None else f"{e.low_ms:.3g}-{e.high_ms:.3g}"
        share = "–" if e.latency_ms is None else f"{e.share('compute'):.0%}"
        tab.add_row(f"{n}@{r}", t.id, lat, iv, share, f"{e.params['ridge_macs_per_byte']:.1f}", status)
    out.print(tab)
    # one line per target (and per model where an extrapolation makes the basis differ), in the table's order
    for tid, basis in dict.fromkeys((t.id, e.basis) for _, _, t, e in results if e.latency_ms is not None):
        err.print(f"interval basis of {tid}: {basis}", soft_wrap=True)


def _size_mark(ext: dict | None) -> str:
    """The status words of an estimate far outside the MACs its target was fitted on: how many times the largest
    fitted model's (or what fraction of the smallest's) its MACs are."""
    if not ext:
        return ""
    r = ext["ratio"]
    return f"extrapolated in size ×{r:.1f}" if r > 1 else f"extrapolated in size ×1/{1 / r:.1f}"


def _layers_tables(results: list) -> None:
    """`--layers`: one table per model and target: each layer's bound, intensity and share of the time."""
    for n, r, t, e in results:
        invoke = e.params.get("invoke_s", 0.0)
        lt = Table(title=f"{n}@{r} on {t.id}" + (f" (+ {invoke * 1e6:.0f} us per inference)" if invoke else ""))
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


def _estimate_sweep(resolved, profile, target_names, as_json) -> None:
    """``estimate --sweep``: each model's latency as the ridge point moves over 0-500 MACs/byte. Without a device,
    at a generic 1 T MAC/s peak with int8 bytes (the paper's figure); with one, at each of its targets' own peak
    and precision, that target's ridge marked."""
    from .. import estimator as E

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
        print_json(rows)
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


def _estimate_validate(device, names, profiles, as_json) -> None:
    """``estimate --validate``: refit every target that has corpus rows from the shipped corpus, now, and
    score it by cross-validation (nothing here is read from a stored result)."""
    from .. import estimator as E
    from ..devices import get_profile, load_profiles

    devices = [device] if device else sorted(load_profiles(profiles))
    chosen = E.targets_to_validate([get_profile(d, profiles) for d in devices], names)
    results = [E.validate_target(t, rows) for t, rows in chosen]
    if device and not results:
        raise DeploykitError(f"no target of {device} has two or more corpus rows to validate on")
    families = E.family_transfer(load_profiles(profiles)) if not device else []
    sizes = E.size_coverage(results)
    if as_json:
        print_json({"targets": results, "leave_one_device_out": families, "leave_largest_out": sizes})
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
    _size_table(results, sizes)
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


def _size_table(results: list[dict], sizes: dict) -> None:
    """Leave the largest model out (NPU targets fitted on 3+ models): the target fitted on the rest predicts it,
    with its 80% interval as fitted and as widened for size."""
    rows = [(r["target"], r["leave_largest_out"]) for r in results if r.get("leave_largest_out")]
    if not rows:
        return
    t = Table(title="leave the largest model out (NPU targets): the fit on the smaller models predicting it")
    cols = ("target", "left out", "× largest fitted", "measured ms", "predicted ms", "80% interval", "widened",
            "inside", "inside widened")  # fmt: skip
    for c in cols:
        t.add_column(c, justify="left" if c in ("target", "left out") else "right")
    for tid, lo in rows:
        for x in lo["residuals"]:
            t.add_row(
                tid, lo["model"], f"{lo['ratio']:.1f}", f"{x['measured_ms']:.3g}", f"{x['predicted_ms']:.3g}",
                f"{x['low_ms']:.3g}-{x['high_ms']:.3g}", f"{x['widened_low_ms']:.3g}-{x['widened_high_ms']:.3g}",
                "yes" if x["inside"] else "no", "yes" if x["inside_widened"] else "no",
            )  # fmt: skip
    out.print(t)
    pct = lambda v: "–" if v is None else f"{v:.0%}"  # noqa: E731
    for label, key in (("all rows", "all"), (f"beyond {sizes['margin']:g}× (flagged)", "beyond_margin"),
                       ("beyond, fit with an interval of its own", "beyond_margin_fitted_interval")):  # fmt: skip
        x = sizes[key]
        out.print(f"leave-largest-out, {label}: {x['rows']} rows, inside the 80% interval {pct(x['coverage'])} "
                  f"without the size widening, {pct(x['coverage_widened'])} with it")  # fmt: skip


def _estimate_fit(profile, names, db, published, write, as_json, profiles_dir=None, layers=False) -> None:
    from pathlib import Path

    from .. import estimator as E
    from ..profile_writer import write_profile
    from ..store import Store

    if not Path(db).exists() and not published:
        raise DeploykitError(f"no results database at {db}", hint="run `deploykit bench` first, or add --published")
    store = Store.existing(db) if Path(db).exists() else None  # read only: never converts a file that is no database
    from ..devices import load_profiles

    siblings = load_profiles(profiles_dir)  # a user's own profiles (--profiles) may be a target's siblings too
    try:
        done = E.fit_profile(profile, names, store, published, siblings, layers=layers)
    finally:
        if store is not None:
            store.close()
    report = done.reports
    for model, why in done.skipped.items():  # on stderr, with --json too
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
        path = write_profile(
            done.profile,
            Path(write) / f"{profile.name}.toml",
            header=f"{profile.display}: fitted by `deploykit estimate --fit`",
        )
    if as_json:
        print_json(
            {"profile": profile.name, "fits": [r.to_dict() for r in report], "written": str(path) if path else None}
        )
        return
    t = Table(title=f"{profile.name}: fitted roofline parameters")
    for col in ("target", "rows", "peak GMAC/s", "GB/s", "ridge", "dispatch us", "invoke us", "dw eff.", "rms log err"):
        t.add_column(col, justify="left" if col == "target" else "right")
    for r in report:
        t.add_row(
            r.target,
            str(r.rows),
            f"{r.peak_macs_per_s / 1e9:.1f}",
            f"{r.mem_bw_bytes_per_s / 1e9:.2f}",
            f"{r.peak_macs_per_s / r.mem_bw_bytes_per_s:.1f}",
            f"{r.dispatch_s * 1e6:.2f}",
            f"{r.invoke_s * 1e6:.1f}",
            f"{r.efficiency.get('dwconv', float('nan')):.3f}",
            "–" if r.rms_log_error is None else f"{r.rms_log_error:.3f}",  # borrowed: fitted on no row
        )
    out.print(t)
    for r in report:
        if r.caveat:
            err.print(f"note: {r.target}: {r.caveat}")
        if layers and not r.borrowed_from and not r.layer_rows:
            err.print(
                f"note: {r.target}: no per-layer tables in {db} (`deploykit profile MODEL --device"
                f" {profile.name}` stores them): fitted on whole-model rows only",
                soft_wrap=True,
            )
        if r.layer_rows:
            eff = ", ".join(f"{k} {v:.3g}" for k, v in sorted(r.efficiency.items()))
            err.print(
                f"note: {r.target}: efficiency per op kind from {r.layer_rows} per-layer rows of"
                f" {', '.join(r.layer_models)}: {eff}",
                soft_wrap=True,
            )
        if r.borrowed_from:
            how = f"scaled by {r.scale:.3g} to its {r.rows} row(s)" if r.rows else "datasheet-scaled"
            err.print(f"note: {r.target}: {r.borrowed_from}'s fitted shape, {how} (the interval is the transfer's)")
    if path:
        out.print(f"wrote {path}; use it with --profiles {write}")
