"""`deploykit compare`: did a change make a model slower? Two stored runs, or two files timed interleaved (`--ab`).

Exit status for CI: 0 when no cell is significantly slower beyond the threshold, 1 when one is, 2 for a usage
error (and a file or device that cannot run is 1, as everywhere: one line).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from ..compare import DEFAULT_ROUNDS, DEFAULT_TIMEOUT_S, DEFAULT_WARMUP, MIN_ROUNDS
from ..errors import DeploykitError, Interrupted
from .common import (
    MAX_RUNS,
    MAX_SECONDS,
    MAX_THREADS,
    MAX_WARMUP,
    DbOpt,
    JsonOpt,
    ProfilesOpt,
    backend_names,
    bounded,
    device_names,
    named_shapes,
)
from .render import BarListener, bar, err, out, print_json

MAX_ROUNDS = 10_000
VERDICT_STYLE = {"slower": "bold red", "faster": "bold green", "same": "", "inconclusive": "yellow"}


def compare(
    base: Annotated[
        str, typer.Argument(help="A run label in --db, a database file, or FILE@LABEL; with --ab: a model file.")
    ],
    new: Annotated[str, typer.Argument(help="The same, for the new side.")],
    ab: Annotated[
        bool, typer.Option("--ab", help="BASE and NEW are model files: time them interleaved on --device.")
    ] = False,
    threshold: Annotated[float, typer.Option(help="Smallest change that counts, in percent.")] = 5.0,
    db: DbOpt = "deploykit-results.db",
    model: Annotated[str | None, typer.Option(help="Stored runs: only this model.")] = None,
    device: Annotated[
        str | None,
        typer.Option(
            "--device", "-d", help="--ab: the device; stored runs: only this device.", autocompletion=device_names
        ),
    ] = None,
    target: Annotated[str | None, typer.Option(help="Stored runs: only this target id.")] = None,
    across_machines: Annotated[
        bool, typer.Option("--across-machines", help="Stored runs: judge rows measured on different machines too.")
    ] = False,
    backend: Annotated[
        list[str] | None, typer.Option(help="--ab: only these backends (repeatable).", autocompletion=backend_names)
    ] = None,
    rounds: Annotated[
        int | None,
        typer.Option(
            help=f"--ab: rounds, each timing both files in a random order (at least {MIN_ROUNDS}; default {DEFAULT_ROUNDS})."
        ),
    ] = None,
    runs: Annotated[
        int | None, typer.Option(help="--ab: invocations per file per round (default: fill 0.2 s).")
    ] = None,
    warmup: Annotated[
        int | None, typer.Option(help=f"--ab: warm-up invocations of each file's session (default {DEFAULT_WARMUP}).")
    ] = None,
    threads: Annotated[
        int | None, typer.Option(help="--ab: threads each CPU session runs on (default: the device target's).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="--ab: seed of the round orders (reported when drawn).")] = None,
    timeout: Annotated[
        float | None, typer.Option(help=f"--ab: seconds any one round may take (default {DEFAULT_TIMEOUT_S:g}).")
    ] = None,
    input_shape: Annotated[
        list[str] | None, typer.Option("--input-shape", help="--ab: NAME=1,3,640,640 for dynamic dimensions.")
    ] = None,
    profiles: ProfilesOpt = None,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="A Markdown table (for a pull-request comment).")
    ] = False,
    as_json: JsonOpt = False,
):
    """Is NEW slower than BASE? Per cell: ratio of medians, 95% interval, rank test, verdict. Exit 1 when a cell is
    significantly slower by more than --threshold."""
    if as_json and markdown:
        raise DeploykitError("--json and --markdown cannot be combined: give one")
    bounded("--threshold", threshold, 0, 1000, low_open=True)
    if ab:
        for flag, given in (("--model", model), ("--target", target), ("--across-machines", across_machines)):
            if given:
                raise DeploykitError(f"{flag} is for stored runs; with --ab the two files are the selection")
        report = _compare_files(
            base,
            new,
            device,
            backend,
            rounds,
            runs,
            warmup,
            threads,
            seed,
            timeout,
            input_shape,
            profiles,
            threshold / 100,
            as_json,
        )
    else:
        ab_only = {"--backend": backend, "--rounds": rounds, "--runs": runs, "--warmup": warmup, "--threads": threads}
        ab_only.update({"--seed": seed, "--timeout": timeout, "--input-shape": input_shape})
        given = [flag for flag, value in ab_only.items() if value is not None]
        if given:
            raise DeploykitError(f"{given[0]} goes with --ab (two files timed interleaved)")
        report = _compare_runs(base, new, db, model, device, target, across_machines, threshold / 100)
    if as_json:
        print_json(report)
    elif markdown:
        print(to_markdown(report))
    else:
        _print_table(report)
    raise typer.Exit(1 if report["counts"]["slower"] else 0)


def _compare_runs(base, new, db, model, device, target, across_machines, threshold) -> dict:
    from ..compare import runs_report

    if model is not None:  # an alias or timm name finds the rows stored under the zoo name
        from ..zoo import get_spec

        try:
            model = get_spec(model).name
        except DeploykitError:
            pass  # a user's own model
    return runs_report(base, new, db, threshold, across_machines, model=model, device=device, target=target)


def _compare_files(
    base, new, device, backend, rounds, runs, warmup, threads, seed, timeout, input_shape, profiles, threshold, as_json
) -> dict:
    from ..compare import PAIRED_METHOD, VERDICTS
    from ..interleave import ABRequest, run_ab

    if device is None:
        raise DeploykitError("--ab needs --device: the device both files run on", hint="see `deploykit devices`")
    rounds = DEFAULT_ROUNDS if rounds is None else rounds
    warmup = DEFAULT_WARMUP if warmup is None else warmup
    timeout = DEFAULT_TIMEOUT_S if timeout is None else timeout
    bounded("--rounds", rounds, MIN_ROUNDS, MAX_ROUNDS)
    if runs is not None:
        bounded("--runs", runs, 1, MAX_RUNS)
    bounded("--warmup", warmup, 0, MAX_WARMUP)
    if threads is not None:
        bounded("--threads", threads, 1, MAX_THREADS)
    bounded("--timeout", timeout, 0, MAX_SECONDS, low_open=True)
    req = ABRequest(
        base=Path(base),
        new=Path(new),
        device=device,
        backends=backend,
        rounds=rounds,
        runs=runs,
        warmup=warmup,
        threads=threads,
        threshold=threshold,
        seed=seed,
        timeout_s=timeout,
        profiles=Path(profiles) if profiles else None,
        input_shapes=named_shapes(input_shape or []),
    )
    with bar(as_json) as progress:
        try:
            results = run_ab(req, BarListener(progress))
        except KeyboardInterrupt:
            raise Interrupted("nothing is stored by an A/B run") from None
    counts = dict.fromkeys(VERDICTS, 0)
    cells = []
    for r in results:
        counts[r.judgement.verdict] += 1
        d = r.to_dict()
        same_target = r.base_target == r.new_target
        d["cell"] = r.base_target if same_target else f"{r.base_target} vs {r.new_target}"
        d["base_rounds_ms"], d["new_rounds_ms"] = r.base_ms, r.new_ms  # every round's block median, in order
        d["base_ms"], d["new_ms"] = r.base_median, r.new_median
        d.update(d.pop("judgement"))
        cells.append(d)
    warnings = [r.note for r in results if r.note]
    busy = [r for r in results if r.interference.get("other_cpu_share", 0) > 0.15]
    if busy:
        warnings.append(
            f"other processes used {busy[0].interference['other_cpu_share']:.0%} of the CPUs during the run: the"
            " interleaving cancels what they do to both files alike, not what hits one block more than the other"
        )
    return {
        "mode": "ab",
        "base": base,
        "new": new,
        "device": device,
        "threshold": threshold,
        "method": PAIRED_METHOD,
        "warnings": warnings,
        "counts": counts,
        "cells": cells,
    }


def _interval(c: dict) -> str:
    if c.get("low") is None:
        return "–"
    return f"{c['low']:.3f}-{c['high']:.3f}"


def _ratio(c: dict) -> str:
    return "–" if c.get("ratio") is None else f"{c['ratio']:.3f}"


def _p(c: dict) -> str:
    return "–" if c.get("p_value") is None else f"{c['p_value']:.3g}"


def _ms(v) -> str:
    return "–" if v is None else f"{v:.3f}"


def _summary(report: dict) -> str:
    counts = ", ".join(f"{n} {v}" for v, n in report["counts"].items() if n)
    line = f"{counts} (threshold {report['threshold']:.0%}; {report['method']})"
    if report["mode"] == "ab" and report["cells"]:
        # the drawn seed is what repeats a run's round orders: said wherever the result is read, not only in --json
        c = report["cells"][0]
        seeds = ", ".join(dict.fromkeys(str(x["seed"]) for x in report["cells"]))
        line += f"; {len(c['order'])} rounds of {c['runs']} invocations a file, round orders from seed {seeds}"
    return line


def _print_table(report: dict) -> None:
    t = Table(title=f"{report['base']} → {report['new']}: new / base")
    for col in ("cell", "base ms", "new ms", "ratio", "95% interval", "p", "verdict", "why"):
        t.add_column(col, justify="right" if col in ("base ms", "new ms", "ratio", "p") else "left")
    for c in report["cells"]:
        t.add_row(
            c["cell"],
            _ms(c["base_ms"]),
            _ms(c["new_ms"]),
            _ratio(c),
            _interval(c),
            _p(c),
            Text(c["verdict"], style=VERDICT_STYLE[c["verdict"]]),
            "; ".join(c["reasons"]),
        )
    out.print(t)
    out.print(_summary(report), soft_wrap=True)
    for w in report["warnings"]:
        err.print(f"warning: {w}", soft_wrap=True)


def to_markdown(report: dict) -> str:
    """The comparison as a pull-request comment: a headline, a table, the method and its warnings."""
    slower = report["counts"]["slower"]
    head = "**Slower**: " if slower else "**No significant slowdown**: "
    lines = [
        f"### deploykit compare: `{report['base']}` → `{report['new']}`",
        "",
        head + _summary(report),
        "",
        "| cell | base ms | new ms | new / base | 95% interval | p | verdict | why |",
        "|---|--:|--:|--:|---|--:|---|---|",
    ]
    for c in report["cells"]:
        verdict = f"**{c['verdict']}**" if c["verdict"] in ("slower", "faster") else c["verdict"]
        why = "; ".join(c["reasons"]).replace("|", "\\|")
        cell = c["cell"].replace("|", "\\|")
        lines.append(
            f"| {cell} | {_ms(c['base_ms'])} | {_ms(c['new_ms'])} | {_ratio(c)} | {_interval(c)} | {_p(c)} | {verdict} | {why} |"
        )
    lines += [""] + [f"> {w}" for w in report["warnings"]]
    return "\n".join(lines).rstrip() + "\n"
