"""Peak memory and file size, estimated from a graph: what a deployment costs on a device nobody has attached.

Memory: the weights plus the activations an arena planner must hold at once. A runtime's planner (TFLite's
``ArenaPlanner``, XNNPACK's runtime, ExecuTorch's memory planning) gives each intermediate tensor an offset in
one buffer for the span of ops between its producer and its last reader, reusing space whose tensor is dead.
:func:`plan_arena` does what TFLite's does by default: tensors by size, largest first, each at the lowest offset
that fits between the tensors already placed whose lifetimes overlap its own (offsets aligned to 64 bytes), and
the arena is the highest end. Its lower bound, the largest set of tensors live at one op, is reported beside it.

The graph is the file's own where its format can read it (``Format.memory_graph``: a .tflite's ops in the
interpreter's order, an .onnx's nodes in the sequential executor's), else the model's ``torch.export`` graph at
the precision's bytes per element, with what converters fuse (BatchNorm, ReLU/ReLU6 after a convolution) and
views written in place (:func:`model_memory_graph`; an ExecuTorch program's XNNPACK blob cannot be read here).

What this leaves out, measured per runtime in docs/benchmarks.md ("Memory: estimated against measured"): copies
of the weights a runtime makes (XNNPACK packs them beside the memory-mapped file; ONNX Runtime pre-packs), its
per-op scratch buffers, thread stacks and allocator slack.

File size: the parameters the deployed graph keeps at the precision's bytes per parameter
(:func:`estimate_file_size`), checked against the files deploykit exported (same page).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from ..graph import LiveTensor, MemoryGraph

ALIGN = 64  # TFLite's kDefaultTensorAlignment, and XNNPACK's XNN_EXTRA_BYTES-padded allocations round to it
# Bytes per stored parameter and per activation element, by export precision: int8-dynamic keeps float activations
PARAM_BYTES = {"fp32": 4, "fp16": 2, "int8": 1, "int8-dynamic": 1, "int8-edgetpu": 1}
ACTIVATION_BYTES = {"fp32": 4, "fp16": 2, "int8": 1, "int8-dynamic": 4, "int8-edgetpu": 1}


@dataclass
class MemoryEstimate:
    weights_bytes: int
    arena_bytes: int  # the planned activation arena
    live_peak_bytes: int  # its lower bound: the most bytes live at one op
    largest_tensor_bytes: int
    tensors: int
    ops: int
    source: str

    @property
    def total_bytes(self) -> int:
        """Weights plus the planned arena: the estimate a device's peak memory is compared with."""
        return self.weights_bytes + self.arena_bytes

    def to_dict(self) -> dict:
        return {**asdict(self), "total_bytes": self.total_bytes}


def _align(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def plan_arena(tensors: list[LiveTensor]) -> int:
    """The arena a greedy-by-size planner needs for these lifetimes (bytes)."""
    placed: list[tuple[int, int, int, int]] = []  # (offset, size, first, last)
    end = 0
    for t in sorted(tensors, key=lambda t: (-t.bytes, t.first)):
        if t.bytes <= 0:
            continue
        size = _align(t.bytes)
        overlapping = sorted((o, s) for o, s, f, la in placed if f <= t.last and t.first <= la)
        offset, best, gap_start = None, None, 0
        for o, s in overlapping:  # the smallest gap between live neighbours that holds it
            gap = o - gap_start
            if gap >= size and (best is None or gap < best):
                offset, best = gap_start, gap
            gap_start = max(gap_start, o + s)
        if offset is None:
            offset = gap_start
        placed.append((offset, size, t.first, t.last))
        end = max(end, offset + size)
    return end


def live_peak(tensors: list[LiveTensor], ops: int) -> int:
    """The most bytes live at any one op: no planner can do with less."""
    delta = [0] * (ops + 2)
    for t in tensors:
        delta[t.first] += t.bytes
        delta[min(t.last, ops) + 1] -= t.bytes
    peak = running = 0
    for d in delta:
        running += d
        peak = max(peak, running)
    return peak


def estimate_memory(graph: MemoryGraph) -> MemoryEstimate:
    return MemoryEstimate(
        weights_bytes=int(graph.weights_bytes),
        arena_bytes=plan_arena(graph.tensors),
        live_peak_bytes=live_peak(graph.tensors, graph.ops),
        largest_tensor_bytes=max((t.bytes for t in graph.tensors), default=0),
        tensors=len(graph.tensors),
        ops=graph.ops,
        source=graph.source,
    )


def file_memory(path: Path) -> MemoryEstimate | None:
    """The estimate from a file's own graph, or None where its format cannot read one (then use the model's)."""
    from ..exporters import base as formats

    graph = formats.for_path(Path(path)).memory_graph(Path(path))
    return estimate_memory(graph) if graph is not None else None


# ATen ops that only reinterpret their input (no new buffer), and those a converter fuses into the convolution
# before them (written in place of its output when that output has no other reader)
_VIEWS = {
    "view", "_unsafe_view", "reshape", "t", "transpose", "permute", "expand", "unsqueeze", "squeeze", "slice",
    "select", "alias", "detach", "flatten", "_reshape_alias", "lift_fresh_copy", "contiguous",
}  # fmt: skip
_FUSED = {"_native_batch_norm_legit_no_training", "relu", "relu_", "hardtanh", "hardtanh_", "relu6"}


def model_memory_graph(model, example, precision: str = "fp32") -> MemoryGraph:
    """The model's ``torch.export`` graph as lifetimes: parameters (less those BatchNorms that fold away) at the
    precision's bytes per parameter, activations at its bytes per element, in the exported (topological) order."""
    import operator

    import torch

    ep = torch.export.export(model.eval(), (example,))
    sig = ep.graph_signature
    params = {**sig.inputs_to_parameters, **sig.inputs_to_buffers}
    state = {**dict(ep.named_parameters()), **dict(ep.named_buffers())}
    nodes = list(ep.graph.nodes)
    users = {n.name: [u for u in n.users] for n in nodes}
    root: dict[str, str] = {}  # node → the node whose buffer it is
    size: dict[str, int] = {}
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    weights = 0
    act = ACTIVATION_BYTES.get(precision, 4)
    op = 0

    def nbytes(val) -> int:
        return int(val.numel() * act) if isinstance(val, torch.Tensor) else 0

    def packet(n) -> str:
        return getattr(getattr(n.target, "_overloadpacket", None), "__name__", str(n.target))

    for n in nodes:
        if n.op == "placeholder":
            if n.name in params:
                folds = all(packet(u) == "_native_batch_norm_legit_no_training" for u in users[n.name])
                if not folds:
                    weights += state[params[n.name]].numel() * PARAM_BYTES.get(precision, 4)
                root[n.name] = ""  # constant: not an activation
            else:
                root[n.name], size[n.name], first[n.name] = n.name, nbytes(n.meta.get("val")), 0
            continue
        if n.op == "output":
            for a in n.all_input_nodes:
                if root.get(a.name):
                    last[root[a.name]] = op + 1
            continue
        if n.op != "call_function":
            continue
        ins = [a for a in n.all_input_nodes if root.get(a.name)]
        name = packet(n)
        if n.target is operator.getitem:  # a tuple's element: BatchNorm's output is element 0, the rest are stats
            src = n.args[0]
            root[n.name] = root.get(src.name, "") if n.args[1] == 0 else ""
            continue
        if name in _VIEWS and ins:
            root[n.name] = root[ins[0].name]
            continue
        op += 1
        for a in ins:
            last[root[a.name]] = op
        if name in _FUSED and ins and len(users[ins[0].name]) == 1:
            root[n.name] = root[ins[0].name]  # written over its producer's output
            continue
        val = n.meta.get("val")
        if isinstance(val, tuple | list):
            val = val[0] if val else None
        root[n.name], size[n.name], first[n.name] = n.name, nbytes(val), op
    live = [LiveTensor(k, size[k], first[k], last.get(k, first[k])) for k in first]
    return MemoryGraph(int(weights), live, op, "torch.export graph of the model")


def model_memory(model_name: str, precision: str = "fp32", resolution: int | None = None) -> MemoryEstimate:
    """The estimate of a zoo model in deploy form (BatchNorm statistics and RepViT branches as exported)."""
    import torch

    from ..zoo import get_spec

    spec = get_spec(model_name)
    res = resolution or spec.resolution
    model = spec.build().eval()
    if hasattr(model, "reparameterize"):
        model.reparameterize()
    with torch.no_grad():
        return estimate_memory(model_memory_graph(model, torch.zeros(1, 3, res, res), precision))


def estimate_file_size(params: int, precision: str) -> int:
    """A file's size from the parameters its graph keeps: bytes per parameter at the precision. Formats add
    their graph and per-channel quantization parameters on top (a few per cent: docs/benchmarks.md)."""
    return int(params * PARAM_BYTES.get(precision, 4))


MEMORY_FORMAT = 1  # bump when model_memory_graph or plan_arena changes what they return


def cached_model_memory(name: str, precision: str, resolution: int) -> MemoryEstimate | None:
    """:func:`model_memory` from the user cache when estimated before (keyed, as the layer cache, by the hash of
    the zoo's and the analysis's source), or None where the model has no graph to read (a user's own model, or
    one torch.export cannot trace): an estimate row is then stored without a memory figure."""
    import json

    from ..artifact import atomic_write_text
    from ..catalog import cache_dir, source_hash

    path = cache_dir() / f"memory-{source_hash()}-{MEMORY_FORMAT}" / f"{name}@{resolution}-{precision}.json"
    try:
        return MemoryEstimate(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        pass
    try:
        est = model_memory(name, precision, resolution)
    except Exception:  # an unknown name (a user's file), or a graph torch.export cannot trace
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(asdict(est)))
    except OSError:
        pass  # a read-only home only costs the estimate again next time
    return est


def memory_details(name: str, precision: str, resolution: int) -> dict:
    """What an estimate row stores of the deployment's memory and file size (its ``details``), or nothing."""
    est = cached_model_memory(name, precision, resolution)
    if est is None:
        return {}
    return {"memory": est.to_dict(), "size_bytes": est.weights_bytes}
