"""`deploykit sweep` and `deploykit farm`: the whole matrix, on this host or on a Ray farm."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import DeploykitError, Interrupted
from .common import (
    MAX_SECONDS,
    JsonOpt,
    LabelOpt,
    NoCacheOpt,
    bounded,
    check_label,
    check_method,
    one_line,
    output_path,
)
from .render import BarListener, bar, err, out, print_json, say_quality


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
    no_cache: NoCacheOpt = False,
    label: LabelOpt = None,
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
    connect_timeout: Annotated[
        float | None, typer.Option(help="--executor ray --address: seconds to reach the head and hear back (10).")
    ] = None,
    as_json: JsonOpt = False,
):
    """Export, verify, measure (attached devices) or estimate (the rest), store, and report: the whole matrix.
    Exit status 1 when any cell failed (each is named); failed cells are re-run only with --retry-failed."""

    from ..measurement import Method
    from ..sweep import SweepOptions, check_weights, plan_sweep, run_sweep, store_published

    # a name given twice is one name: a duplicate would run (and store) every job of it twice
    split = lambda text: list(dict.fromkeys(x.strip() for x in text.split(",") if x.strip()))  # noqa: E731
    check_method(runs, repetitions, warmup, strict, budget)
    check_label(label)
    if report_file is not None:
        report_file = str(output_path(report_file, "--report"))  # a link resolved: its file is rewritten
    if executor not in ("serial", "ray"):
        raise DeploykitError(f"--executor {executor!r}: give serial or ray")
    for flag, given in (("--address", address), ("--connect-timeout", connect_timeout is not None)):
        if given and executor != "ray":
            raise DeploykitError(f"{flag} is for the Ray head: it goes with --executor ray")
    farm, reach = _farm_and_its_devices(address, grace, connect_timeout) if executor == "ray" else (None, None)
    plan_args = (split(models), split(devices), split(formats) if formats else None, profiles)
    jobs = plan_sweep(*plan_args, reach=reach) if reach else plan_sweep(*plan_args)
    if plan_only:
        print_json([j.to_dict() for j in jobs])
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
        label=label,
    )
    measured = [j.model for j in jobs if j.mode == "measure"]
    if measured:
        said = check_weights(measured, weights)
        err.print("weights: " + "; ".join(f"{m}: {w}" for m, w in said.items()), soft_wrap=True)
    store_published(sorted({j.device for j in jobs}), opts.db, profiles)
    with bar(as_json) as progress:
        listener = BarListener(progress)
        try:
            if farm is not None:
                from ..farm.executor import run_sweep_ray

                summary = run_sweep_ray(jobs, opts, listener, farm)
            else:
                summary = run_sweep(jobs, opts, listener)
        except KeyboardInterrupt:
            raise Interrupted(f"finished jobs are stored in {db}; run the same command to resume") from None
    if report_file:
        from ..reports.html import write_report

        try:
            summary.report = str(write_report(opts.db, report_file, profiles))
        except OSError as e:
            raise DeploykitError(
                f"results are in {db}, but the report cannot be written: {report_file}: {e.strerror}"
            ) from None
    say_quality(listener.results)
    if as_json:
        print_json(summary.to_dict())
    else:
        _say_summary(summary, db, out_dir, retry_failed)
    if summary.failed_cells:
        raise typer.Exit(1)


def _farm_and_its_devices(address: str | None, grace: float, connect_timeout: float | None):
    """`--executor ray`: the farm's options, and which devices its nodes have attached, asked without starting
    anything (a --plan is a dry run)."""
    from ..farm.connection import DEFAULT_TIMEOUT_S, check_timeout
    from ..farm.executor import FarmOptions, cluster_reach, plan_nodes

    bounded("--grace", grace, 0, MAX_SECONDS)
    timeout_s = check_timeout(DEFAULT_TIMEOUT_S if connect_timeout is None else connect_timeout, "--connect-timeout")
    farm = FarmOptions(address=address, grace_s=grace, timeout_s=timeout_s)
    return farm, cluster_reach(nodes=plan_nodes(farm))


def _say_summary(summary, db: str, out_dir: str, retry_failed: bool) -> None:
    noisy = f", {summary.count('noisy')} noisy" if summary.count("noisy") else ""
    gone = summary.count("device-unavailable")
    gone = f", {gone} device-unavailable" if gone else ""
    out.print(
        f"sweep: {summary.jobs} job(s), {summary.skipped} already done, ran {summary.ran}: "
        f"{summary.count('ok')} ok, {summary.count('unsupported')} unsupported, {summary.count('failed')} failed"
        f"{noisy}{gone}; results in {db}",
    )
    exports = summary.exports or {}
    if any(exports.values()):  # reused files were verified when first exported (their manifests say how)
        out.print(
            f"exports: {exports['exported']} converted and verified, {exports['reused']} reused from {out_dir},"
            f" {exports['reused_from_cache']} reused from cache"
        )
    for cell in summary.failed_cells:
        out.print(f"failed: {cell['model']} on {cell['target']}: {one_line(cell['error'])}")
    if summary.failed_cells and not retry_failed:
        out.print("(failed cells are kept as results; run again with --retry-failed to retry them)")
    if summary.report:
        out.print(f"report: {summary.report}")


farm_app = typer.Typer(help="A device farm on Ray: hosts advertise their devices; `sweep --executor ray` uses them.")


FarmTimeoutOpt = Annotated[float, typer.Option(help="Seconds to reach the head and hear back.")]


@farm_app.command("resources")
def farm_resources(as_json: JsonOpt = False):
    """The Ray resources (one per attached device, and this host) and labels this host would advertise."""
    from ..farm.node import local_versions, version_labels
    from ..farm.resources import host_devices, node_resources

    resources, labels = node_resources(host_devices())
    labels.update(version_labels(local_versions()))
    if as_json:
        print_json({"resources": resources, "labels": labels})
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
    from ..farm.node import token_path, up

    bounded("--port", port, 1, 65535)
    cmd = up(port, dry_run)
    out.print(" ".join(cmd) if dry_run else f"farm head up on port {port}", markup=False, highlight=False)
    if not dry_run:
        out.print(f"other hosts: copy {token_path()} to ~/.ray/ there, then `deploykit farm join THIS_HOST:{port}`")


@farm_app.command("join")
def farm_join(
    address: Annotated[str, typer.Argument(help="The head, HEAD:PORT.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check, then print the `ray start` command only.")] = False,
    timeout: FarmTimeoutOpt = 10.0,
):
    """Start a worker node advertising this host's attached devices (join again after plugging a phone in)."""
    from ..farm.connection import check_timeout
    from ..farm.node import join

    cmd = join(address, dry_run, timeout=check_timeout(timeout))
    out.print(" ".join(cmd) if dry_run else f"joined {address}", markup=False, highlight=False)


@farm_app.command("status")
def farm_status(
    address: Annotated[str | None, typer.Option(help="The head, HEAD:PORT (default: this host's Ray).")] = None,
    timeout: FarmTimeoutOpt = 10.0,
    as_json: JsonOpt = False,
):
    """The farm's nodes, their devices, and the jobs in flight (one line, exit 1, when no farm answers)."""
    from ..farm.connection import check_timeout, split_address
    from ..farm.node import status

    if address is not None:
        split_address(address)
    s = status(address, check_timeout(timeout))
    if as_json:
        print_json(s)
        return
    for n in s["nodes"]:
        state = "alive" if n["alive"] else "dead"
        out.print(f"{n['address']} {state} {n['cpus']:g} CPU: {', '.join(n['devices']) or 'no devices'}", markup=False)
    jobs = s["in_flight"]["jobs"]
    out.print(f"{len(jobs)} job(s) in flight" + (f" (driver {s['in_flight']['driver']})" if jobs else ""))
    for j in jobs:
        out.print(f"  {j['model']} on {j['target']} ({j['device'] or 'hosted'})", markup=False)
