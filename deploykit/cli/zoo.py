"""`deploykit models` and `deploykit info`: the zoo and one model's layer analysis."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from ..errors import DeploykitError
from .common import JsonOpt
from .render import err, millions, out, print_json


def models(
    family: Annotated[str | None, typer.Option(help="Only this family, e.g. MobileNetV4.")] = None,
    as_json: JsonOpt = False,
):
    """List the zoo: params and MACs counted on our models at their default resolution, with published top-1."""
    from ..catalog import model_rows

    # a spinner's str text is read as markup whatever the console says: give it Text
    with err.status(Text("counting params and MACs (cached after the first run)…")) as status:
        rows = model_rows(family, on_count=lambda name: status.update(Text(f"counting {name}…")))
    if not rows:
        raise DeploykitError(f"no models in family {family!r}", hint="run `deploykit models` for the families")
    if as_json:
        print_json(rows)
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


def info(
    model: Annotated[str, typer.Argument(help="Model name or alias (see `deploykit models`).")],
    resolution: Annotated[int | None, typer.Option("--resolution", "-r", help="Input side in pixels.")] = None,
    stages: Annotated[bool, typer.Option("--stages", help="Only the per-stage table.")] = False,
    as_json: JsonOpt = False,
):
    """Per-stage and per-layer MACs, weights and activation traffic of a model at a resolution."""
    from ..analysis import analyze_spec
    from ..zoo import get_spec

    spec = get_spec(model)
    a = analyze_spec(spec.name, resolution)
    if as_json:
        print_json({**a.to_dict(), "family": spec.family, "macs_fvcore": a.macs_fvcore})
        return
    pub = spec.published
    out.print(
        Text(spec.name, style="bold")
        + Text(
            f" ({spec.family}) at {a.resolution}×{a.resolution}: "
            f"{millions(a.params)} M params, {millions(a.macs)} M MACs, {len(a.deployed)} ops after conv/BN/ReLU folding"
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
            millions(s["macs"]),
            f"{s['weight_elems'] * 4 / 1024:,.0f}",
            f"{s['act_elems'] * 4 / 1024:,.0f}",
            "×".join(map(str, s["out_shape"])),
        )
        for i, k in enumerate(("ops", "macs", "weight_elems", "act_elems")):
            totals[i] += s[k]
    t.add_section()
    t.add_row(
        "total", str(totals[0]), millions(totals[1]), f"{totals[2] * 4 / 1024:,.0f}", f"{totals[3] * 4 / 1024:,.0f}", ""
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
