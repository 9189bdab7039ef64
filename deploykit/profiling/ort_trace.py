"""ONNX Runtime's profile: the Chrome-trace JSON that ``SessionOptions.enable_profiling`` writes
(https://onnxruntime.ai/docs/performance/tune-performance/profiling-tools.html).

It is a list of events (or ``{"traceEvents": [...]}``); each inference is one ``model_run`` event (cat
``Session``), and each kernel one ``<node>_kernel_time`` event (cat ``Node``) with ``dur`` in µs and ``args``:
``op_name``, ``provider`` (the execution provider that ran it), ``input_type_shape`` and ``output_type_shape``.
The nodes are those of the *optimized* graph (fused Conv+activation, NCHWc convolutions with a residual Sum
folded in, Reorder nodes), whose names do not carry the module path. The optimized graph itself
(``SessionOptions.optimized_model_filepath``) does, in its initializer names (``stages.2.0.pw_exp.conv.weight``,
``…weight_bias`` once BatchNorm is folded): :func:`graph_facts` reads those, and what each node folded in.
"""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path

from .records import OpProfile, OpTime, ProfileError

SOURCE = "ONNX Runtime profiler (Chrome trace)"
_KINDS = {
    "Gemm": "matmul",
    "MatMul": "matmul",
    "FusedMatMul": "matmul",
    "FusedGemm": "matmul",
    "Add": "add",
    "Sum": "add",
    "Sub": "add",
    "Mul": "mul",
    "Div": "mul",
    "ReduceMean": "pool",
    "GlobalAveragePool": "pool",
    "AveragePool": "pool",
    "MaxPool": "pool",
    "Softmax": "softmax",
    "LayerNormalization": "norm",
    "BatchNormalization": "norm",
    "Relu": "act",
    "Clip": "act",
    "HardSwish": "act",
    "HardSigmoid": "act",
    "Sigmoid": "act",
    "Gelu": "act",
    "FastGelu": "act",
    "BiasGelu": "act",
    "Tanh": "act",
    "Concat": "concat",
    "Pad": "pad",
    "Resize": "resize",
    "Transpose": "layout",
    "ReorderInput": "layout",
    "ReorderOutput": "layout",
    "QuantizeLinear": "layout",
    "DequantizeLinear": "layout",
    "Cast": "layout",
    "Reshape": "view",
    "Flatten": "view",
    "Squeeze": "view",
    "Unsqueeze": "view",
    # the quantized ops of an int8 (QDQ) model, as ONNX Runtime's graph optimizer fuses each Q/DQ group into one
    "QGemm": "matmul",
    "QLinearMatMul": "matmul",
    "MatMulInteger": "matmul",
    "DynamicQuantizeMatMul": "matmul",
    "QLinearAdd": "add",
    "QLinearMul": "mul",
    "QLinearGlobalAveragePool": "pool",
    "QLinearAveragePool": "pool",
    "QLinearSigmoid": "act",
    "QLinearLeakyRelu": "act",
    "QLinearSoftmax": "softmax",
    "QLinearConcat": "concat",
}
_CONVS = {"Conv", "FusedConv", "QLinearConv", "ConvInteger"}
_SUM_CONVS = {"Conv", "FusedConv"}  # whose fourth input is a residual summed in (NCHWc Conv's Sum, FusedConv's Z)
_WEIGHT_INPUT = {"QLinearConv": 3}  # x, x_scale, x_zero_point, w, ...; the others take the weight second
_SUFFIX = re.compile(r"(\.(weight|bias))(_bias|_nchwc|_reordered|_quantized|_scale|_zero_point)*$|_bias$")


def read_trace(text: str, skip: int = 0, graph: dict | None = None, runtime: str = "") -> OpProfile:
    """The kernels of a trace's inferences (the first ``skip`` inferences, warm-up, left out), each with its
    median time per inference, in the order of the first inference kept. ``graph``: :func:`graph_facts` of the
    optimized model, for module paths and what each node folded in."""
    try:
        data = json.loads(text)
    except (ValueError, TypeError) as e:
        raise ProfileError(f"not an ONNX Runtime trace: {str(e)[:120]}") from None
    events = data.get("traceEvents") if isinstance(data, dict) else data
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise ProfileError("not an ONNX Runtime trace: expected a list of trace events")
    runs = sorted((e["ts"], e["ts"] + e["dur"]) for e in events if e.get("name") == "model_run" and "dur" in e)
    kernels = [e for e in events if e.get("cat") == "Node" and str(e.get("name", "")).endswith("_kernel_time")]
    if not runs or not kernels:
        raise ProfileError("the trace holds no inference (no model_run or no kernel events): truncated?")
    skip = min(skip, len(runs) - 1)
    kept = runs[skip:]
    graph = graph or {}
    order: dict[str, OpTime] = {}
    per_run: dict[str, list[float]] = {}  # node → its time in each kept inference (ms)
    for e in kernels:
        run = next((k for k, (a, b) in enumerate(kept) if a <= e.get("ts", -1) <= b), None)
        if run is None:
            continue
        node = e["name"].removesuffix("_kernel_time")
        if node not in order:
            order[node] = _op(node, e.get("args") or {}, graph.get(node, {}))
            per_run[node] = [0.0] * len(kept)
        per_run[node][run] += float(e.get("dur", 0)) / 1000
    for node, op in order.items():  # a median: one preempted inference would move a mean by milliseconds
        op.ms = statistics.median(per_run[node])
    whole = [(b - a) / 1000 for a, b in kept]
    sums = [sum(times[k] for times in per_run.values()) for k in range(len(kept))]
    return OpProfile(SOURCE, runtime, list(order.values()), len(kept), statistics.median(whole),
                     run_op_ms=statistics.median(sums))  # fmt: skip


def _op(node: str, args: dict, facts: dict) -> OpTime:
    op_type = str(args.get("op_name", "?"))
    shapes = [next(iter(s.values())) for s in args.get("input_type_shape", []) if isinstance(s, dict) and s]
    outs = [next(iter(s.values())) for s in args.get("output_type_shape", []) if isinstance(s, dict) and s]
    if op_type in _CONVS:  # from the trace's shapes; a pre-packed weight has none there: the graph's, then
        kind = _conv_kind(shapes) or facts.get("conv_kind", "conv")
    else:
        kind = _KINDS.get(op_type, "other")
    provider = str(args.get("provider", ""))
    return OpTime(node, op_type, kind, None, ran_on=provider, modules=list(facts.get("modules", [])),
                  fuses=list(facts.get("fuses", [])), out_shape=list(outs[0]) if outs else None)  # fmt: skip


def _conv_kind(shapes: list) -> str | None:
    """conv, pwconv or dwconv from the input and weight shapes ([N, C, H, W], [O, C/groups, kh, kw]); None where
    the trace gives no weight shape (a QLinearConv's inputs are x, its scale and zero point, then the weight, which
    ONNX Runtime pre-packs and lists without a shape)."""
    if len(shapes) < 2 or len(shapes[1]) != 4:
        return None
    (_, c, *_), (o, per_group, kh, kw) = shapes[0], shapes[1]
    return _kind_of_weight(o, per_group, kh, kw, channels=c)


def _kind_of_weight(o: int, per_group: int, kh: int, kw: int, channels: int) -> str:
    if per_group == 1 and o == channels and channels > 1:
        return "dwconv"
    return "pwconv" if kh == kw == 1 else "conv"


def module_of(initializer: str) -> str | None:
    """``stages.2.0.pw_exp.conv.weight_bias`` → ``stages.2.0.pw_exp.conv``; None for a name that is no parameter
    (``val_500``, an exporter's constant)."""
    if not _SUFFIX.search(initializer):
        return None
    return _SUFFIX.sub("", initializer) or None


def graph_facts(path: Path) -> dict:
    """``{node name: {"modules": [...], "fuses": [...]}}`` of an optimized ONNX graph: the module paths its
    parameters name, and what ONNX Runtime folded into it (an activation attribute: act; a convolution's fourth
    input, the residual Sum of an NCHWc or FusedConv node: add)."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:
        raise ProfileError(f"{Path(path).name}: not a readable ONNX graph: {str(e)[:120]}") from None
    dims = {t.name: list(t.dims) for t in model.graph.initializer}
    out = {}
    for n in model.graph.node:
        modules = list(dict.fromkeys(m for x in n.input if x in dims and (m := module_of(x))))
        fuses = []
        if any(a.name == "activation" for a in n.attribute):
            fuses.append("act")
        if n.op_type in _SUM_CONVS and len(n.input) > 3 and n.input[3]:
            fuses.append("add")
        out[n.name] = {"modules": modules, "fuses": fuses}
        weight = n.input[_WEIGHT_INPUT.get(n.op_type, 1)] if n.op_type in _CONVS and len(n.input) > 1 else None
        if weight in dims and len(dims[weight]) == 4:
            o, per_group, kh, kw = dims[weight]
            group = next((a.i for a in n.attribute if a.name == "group"), 1)
            out[n.name]["conv_kind"] = _kind_of_weight(o, per_group, kh, kw, channels=per_group * group)
    return out
