"""How results reach the terminal: the two consoles, the progress bar of long commands and its listener,
warnings, and the measurement table and CSV rows that `bench`, `results` and `results import|delete` share.

User text (model names, file and device names, notes, messages) is never Rich markup or an emoji code: "[bold]x",
"[/bold]" and "mod:factory:" print as typed, in plain prints and table cells alike (a Table renders a str cell
with its console's markup setting). Styling is applied with Text objects where it is wanted.
"""

from __future__ import annotations

import json

from rich.console import Console
from rich.table import Table

out = Console(emoji=False, markup=False)
err = Console(stderr=True, emoji=False, markup=False)
for console in (out, err):
    if not console.is_terminal:  # piped or captured: never truncate or wrap at 80 columns
        console.width = 200


def print_json(value) -> None:
    """``--json``: the value, indented, on stdout alone (nothing else of the command's goes there)."""
    print(json.dumps(value, indent=2))


class BarListener:
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

    def step(self) -> None:
        self.progress.advance(self.task)

    def warn(self, text: str) -> None:
        self.progress.console.print(f"warning: {text}", markup=False, highlight=False)


def bar(disable: bool):
    """The progress bar of long commands (bench, sweep, eval), on stderr, gone when done, off for --json."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    # a description holds user text (a model or file name): TextColumn reads markup unless told not to
    cols = (TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    # Off where nobody watches (piped, captured): a non-interactive console would print the last frame on exit.
    return Progress(*cols, console=err, transient=True, disable=disable or not err.is_terminal)


def millions(n: float) -> str:
    return f"{n / 1e6:,.2f}"


def say_quality(results: list) -> None:
    """Warnings on stderr: noisy measurements with their reasons, and warnings that travel with a row."""
    for m in results:
        if m.quality == "noisy":
            reasons = "; ".join(m.details.get("quality_reasons", []))
            err.print(f"warning: {m.model} on {m.target} was measured on a busy machine: {reasons}")
        for w in m.warnings:
            err.print(f"warning: {m.model} on {m.target}: {w}")


def shapes_text(m) -> str:
    """A measured file's input shapes as fed ("x=8,3,96,96"), or "": one file at batch 1 and at batch 8 is two
    different cells, told apart by this wherever rows are shown."""
    shapes = m.env.get("input_shapes") or {}
    return "; ".join(f"{name}={','.join(map(str, dims))}" for name, dims in shapes.items())


def model_label(m) -> str:
    """The model, plus what tells its row apart from the model's plain one: the input shapes it was fed and, for a
    row of ``bench --threads``, the thread count (``x [x=8,3,96,96; threads=1]``)."""
    said = [x for x in (shapes_text(m), threads_text(m)) if x]
    return f"{m.model} [{'; '.join(said)}]" if said else m.model


def threads_text(m) -> str:
    """``threads=N`` for a row measured at a thread count the user asked for (``bench --threads``), else ""."""
    n = (m.env or {}).get("threads_requested")
    return f"threads={n}" if n else ""


def _mb(v) -> str:
    return "–" if v is None else f"{v / 2**20:.1f}"


# Columns of the cost a row may carry (Measurement.cost()): shown only when some row has them
_COST_COLUMNS = (
    ("load ms", "load_ms", lambda v: f"{v:.1f}"),
    ("first ms", "first_ms", lambda v: f"{v:.3f}"),
    ("p99", "p99_ms", lambda v: f"{v:.3f}"),
    ("memory MiB", "memory_bytes", _mb),
    ("size MiB", "size_bytes", _mb),
    ("img/s", "throughput_ips", lambda v: f"{v:.1f}"),
)


def measurement_table(rows: list, title: str) -> None:
    t = Table(title=title)
    costs = [m.cost() for m in rows]
    extra = [c for c in _COST_COLUMNS if any(cost[c[1]] is not None for cost in costs)]
    numeric = ("px", "median ms", "p50", "p90", "min", "stdev", "n", *(c[0] for c in extra))
    # the input side where rows differ in it (`bench -r`), else one side for all and no column to read
    sided = len({m.resolution for m in rows}) > 1
    cols = (
        "model",
        *(("px",) if sided else ()),
        "target",
        "provenance",
        "median ms",
        "p50",
        "p90",
        "min",
        "stdev",
        "n",
    )
    labelled = any(m.label for m in rows)  # `bench --label`: the run a row belongs to, for `compare`
    for col in (*cols, *(c[0] for c in extra), "status", "quality", *(("label",) if labelled else ())):
        t.add_column(col, justify="right" if col in numeric else "left")
    f = lambda v: "–" if v is None else f"{v:.3f}"  # noqa: E731
    for m, cost in zip(rows, costs):
        s = m.stats
        t.add_row(
            model_label(m),
            *((str(m.resolution),) if sided else ()),
            m.target,
            m.provenance,
            f(m.median_ms),
            f(s and s.p50),
            f(s and s.p90),
            f(s and s.min),
            f(s and s.stdev),
            str(s.n) if s else "–",
            *("–" if cost[key] is None else show(cost[key]) for _, key, show in extra),
            m.status,
            m.quality or "–",
            *((m.label or "–",) if labelled else ()),
        )
    out.print(t)


# `results --csv`: every column of the table and the row's identity (its input shapes too), then the error; the
# cost columns (Measurement.cost()) after those of the release before them, so a reader by position still works
CSV_COLUMNS = (
    "id created model input_shapes resolution format precision target device backend provenance status"
    " median_ms p50 p90 min stdev n quality warnings error"
    " load_ms first_ms p99 memory_bytes size_bytes threads batch throughput_ips label"
).split()


def csv_row(m) -> list:
    s = m.stats
    stats = {"p50": s.p50, "p90": s.p90, "min": s.min, "stdev": s.stdev, "n": s.n} if s else {}
    cost = m.cost()
    cost["p99"] = cost.pop("p99_ms")
    computed = {"input_shapes": shapes_text(m), "warnings": "; ".join(m.warnings), **stats, **cost}
    return [computed[c] if c in computed else getattr(m, c, None) for c in CSV_COLUMNS]


def layers_measured_table(table: dict, title: str) -> None:
    """A stored per-layer profile (``details["layers_measured"]``, deploykit/profiling/join.py): each deployed
    layer with its measured and predicted time, how it was matched, where it ran and its findings, then what
    the ops add up to and what did not join."""
    t = Table(title=title)
    numeric = ("#", "measured ms", "predicted ms", "MACs/B")
    for col in (
        "#",
        "layer",
        "kind",
        "matched",
        "measured ms",
        "predicted ms",
        "bound",
        "MACs/B",
        "ran on",
        "findings",
    ):
        t.add_column(col, justify="right" if col in numeric else "left")
    f = lambda v, d=3: "–" if v is None else f"{v:.{d}f}"  # noqa: E731
    for r in table.get("rows", []):
        matched = {"fused": f"fused in {r.get('fused_into')}", None: "unmatched"}.get(r["match"], r["match"])
        ran_on = r.get("ran_on") or "–"
        t.add_row(
            str(r["index"]),
            r["layer"],
            r["kind"],
            matched,
            f(r["measured_ms"]),
            f(r.get("predicted_ms")),
            r.get("bound") or "–",
            f(r.get("intensity"), 1),
            ran_on + (" (fallback)" if r.get("fallback") else ""),
            "; ".join(x.get("reason", "") for x in r.get("findings", [])) or "",
        )
    out.print(t)
    for line in layers_measured_summary(table):
        out.print(line, soft_wrap=True)


def layers_measured_summary(table: dict) -> list[str]:
    """The lines under a per-layer table: op times against the timed median, the matched share, the unmatched."""
    lines = []
    op_sum, per_run, median = table.get("op_sum_ms"), table.get("run_op_sum_ms"), table.get("timed_median_ms")
    said = f"{table.get('source')}, {table.get('runs')} run(s): each op's time summed {op_sum:.3f} ms"
    if per_run is not None:
        said += f"; per inference the ops summed {per_run:.3f} ms (median)"
    if table.get("tool_run_ms"):
        said += f", the runtime's own total {table['tool_run_ms']:.3f} ms"
    lines.append(said)
    if median:
        ops = per_run if per_run is not None else op_sum
        said = f"timed median {median:.3f} ms: the ops per inference are {ops / median:.0%} of it"
        if table.get("timed_p50_ms"):
            said += f"; timed p50 {table['timed_p50_ms']:.3f} ms, min {table['timed_min_ms']:.3f} ms"
        lines.append(said)
    if table.get("predicted_total_ms") is not None:
        lines.append(f"roofline predicts {table['predicted_total_ms']:.3f} ms")
    if table.get("layers"):
        m = table.get("matched", {})
        lines.append(
            f"matched {sum(m.values())}/{table['layers']} layers ({table['matched_share']:.0%}: {m.get('name', 0)} by"
            f" name, {m.get('order', 0)} by order, {m.get('fused', 0)} fused into another layer's op)"
        )
    if table.get("unmatched_layers"):
        lines.append(f"unmatched layers: {', '.join(table['unmatched_layers'])}")
    ops = table.get("unmatched_ops", [])
    if ops:
        short = lambda n: n if len(n) <= 60 else n[:28] + "…" + n[-28:]  # noqa: E731  (a TFLite tensor's scope names)
        names = ", ".join(short(o["name"]) for o in ops[:8]) + (", …" if len(ops) > 8 else "")
        lines.append(f"{len(ops)} op(s) map to no layer ({table.get('unmatched_op_ms', 0):.3f} ms): {names}")
    if table.get("findings_unplaced"):
        lines.append(f"{len(table['findings_unplaced'])} check finding(s) on ops that ran no layer")
    lines += [f"note: {n}" for n in table.get("notes", [])]
    return lines
