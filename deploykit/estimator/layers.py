"""What the estimator estimates and fits on: a model's deployed layers (counted from the zoo and cached, or read
from an exported file), and the rows of measured latencies a fit takes, with those whose layers cannot be read
set aside."""

from __future__ import annotations

from typing import NamedTuple

from ..errors import DeploykitError, FileError
from ..graph import Layer
from ..targets import Target


def layers_from_analysis(analysis) -> list[Layer]:
    """The deployed ops of a zoo model (fused BN/ReLU dropped), with attention ops told apart."""
    out = []
    for x in analysis.deployed:
        kind = x.op
        if kind == "matmul" and x.weight_elems == 0:
            kind = "attn_matmul"  # both operands are activations: q·kᵀ, attn·v
        elif x.aten == "native_layer_norm":
            kind = "layer_norm"
        out.append(Layer(x.name, kind, x.macs, x.weight_elems, x.in_elems, x.out_elems))
    return out


def model_layers(model: str, resolution: int | None = None) -> tuple[str, int, list[Layer]]:
    """Layers of a zoo model by name, or of an exported file (.tflite: its real graph; .onnx/.mlpackage: the
    model its manifest names). Returns (model name, resolution, layers)."""
    from pathlib import Path

    from ..exporters import base as formats

    p = Path(model)
    if p.suffix.lower() in {f.suffix for f in formats.formats() if f.suffix}:
        fmt = formats.for_path(p)
        if not p.exists():
            raise DeploykitError(f"artifact not found: {p}")
        from ..artifact import read_manifest

        manifest = read_manifest(p)
        layers = fmt.graph_layers(p)
        if layers is not None and not any(x.macs or x.out_elems for x in layers):
            # a parser can read junk as an empty graph (protobuf takes a few stray bytes for an empty ModelProto):
            # an estimate of nothing would be 0 ms, stored as a result
            raise FileError(f"{p.name}: its {fmt.name} graph has no operators: not a model deploykit can estimate")
        if layers is not None:
            if manifest is None:
                return p.stem, 0, layers
            return manifest.model["name"], manifest.model["resolution"], layers
        if manifest is None:
            raise DeploykitError(
                f"{p} has no manifest, and deploykit cannot read its graph: estimate its model by name"
            )
        model, resolution = manifest.model["name"], manifest.model["resolution"]
    from ..zoo import get_spec

    spec = get_spec(model)
    res = spec.resolution if resolution is None else resolution
    spec.check_resolution(res)
    return spec.name, res, zoo_layers(spec.name, res)


LAYERS_FORMAT = 1  # bump when layers_from_analysis changes what it returns


def zoo_layers(name: str, resolution: int) -> list[Layer]:
    """A zoo model's deployed layers, from the user cache when counted before. Counting imports torch and
    runs the model (seconds); an estimate itself is arithmetic. The cache key is the hash of the code the count
    depends on (the zoo's source, analysis.py: :func:`deploykit.catalog.source_hash`) and this function's
    format, never weights, so any change to an architecture or to the analysis counts afresh."""
    import json

    from ..artifact import atomic_write_text
    from ..catalog import cache_dir, source_hash

    path = cache_dir() / f"layers-{source_hash()}-{LAYERS_FORMAT}" / f"{name}@{resolution}.json"
    try:
        return [Layer(*x) for x in json.loads(path.read_text())]
    except (OSError, ValueError, TypeError):
        pass
    from ..analysis import analyze_spec

    layers = layers_from_analysis(analyze_spec(name, resolution))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = [[x.name, x.kind, x.macs, x.weight_elems, x.in_elems, x.out_elems] for x in layers]
        atomic_write_text(path, json.dumps(rows))
    except OSError:
        pass  # a read-only home only costs the recount next time
    return layers


class FitRow(NamedTuple):
    """One latency a fit takes: a model (a zoo name, or the file whose graph is read) at a resolution, measured
    or published in ``latency_ms``, with where it comes from (``measured``, or the corpus source)."""

    model: str
    resolution: int
    latency_ms: float
    source: str


def models_of(rows: list[FitRow]) -> set[tuple[str, int]]:
    """The distinct (model, resolution) pairs of fit rows: how many models a fit rests on."""
    return {(row[0], row[1]) for row in rows}


def training_rows(target: Target, store=None, published: bool = False) -> list[FitRow]:
    """The rows to fit a target on: its measured ok rows in the store, and/or its rows of the corpus of published
    latencies (``split`` = fit; never the held-out ones)."""
    from .. import corpus

    rows = []
    if store is not None:
        for m in store.query(target=target.id, provenance="measured", status="ok"):
            rows.append(FitRow(_layers_source(m), m.resolution, m.median_ms, "measured"))
    if published:
        for r in corpus.rows_for(target):
            rows.append(FitRow(r.model, r.resolution, r.latency_ms, r.source))
    return rows


def _layers_source(m) -> str:
    """What :func:`model_layers` reads a stored row's layers from: its zoo model by name, or, for a model of the
    user's own, the file it measured while that file is still there (an .onnx/.tflite graph is read from it)."""
    from pathlib import Path

    from ..zoo import get_spec

    try:
        return get_spec(m.model).name
    except DeploykitError:
        return m.artifact if m.artifact and Path(m.artifact).is_file() else m.model


def analysable_rows(rows: list[tuple]) -> tuple[list[tuple], dict[str, str]]:
    """Split fit rows into those whose model's layers deploykit can read, and {model: why not} for the rest (a
    user's own model imported by name, a file since moved): one unreadable model must not refuse a whole fit."""
    why_not: dict[tuple[str, int], str | None] = {}
    usable, skipped = [], {}
    for row in rows:
        key = (row[0], row[1])
        if key not in why_not:
            try:
                model_layers(*key)
                why_not[key] = None
            except DeploykitError as e:
                why_not[key] = e.message
        if why_not[key] is None:
            usable.append(row)
        else:
            skipped[row[0]] = why_not[key]
    return usable, skipped


def layer_samples(rows) -> list[tuple[list[Layer], float]]:
    """[(layers, ms)] for (model, resolution, ms, ...) rows: what :func:`deploykit.estimator.fitting.fit` takes.
    Each model's layers are read once, and rows of one model share one list."""
    cache: dict[tuple[str, int], list[Layer]] = {}
    samples = []
    for model, res, ms, *_ in rows:
        if (model, res) not in cache:
            cache[(model, res)] = model_layers(model, res)[2]
        samples.append((cache[(model, res)], ms))
    return samples


def total_macs(layers: list[Layer]) -> int:
    return sum(x.macs for x in layers)
