"""Per-layer analysis: every op a model runs at a resolution, with its MACs, weight and activation bytes.

How it works: the model runs once under a ``TorchDispatchMode`` that sees each ATen op (convolution, mm,
bmm, softmax, add, …) with its real tensors, and module hooks tell which module owns it. This catches what
forward hooks alone would miss: attention matmuls written with ``@``, residual adds, SE multiplies.

What is counted:

- MACs: convolution (out elements × in-channels/groups × kh × kw), mm/addmm/bmm/baddbmm (m·k·n per batch).
  Nothing else has MACs. ``torch.utils.flop_counter`` counts the same ops (as 2 FLOPs per MAC), and
  ``tests/test_analysis.py`` checks the totals agree exactly.
- Bytes, as *elements* (the estimator multiplies by the bytes of the precision it models): weights are the
  parameters and buffers an op reads; activations are the other tensor inputs and the output.
- Ops converters fold away are marked ``fused``: a BatchNorm right after the conv that produced its input,
  and a ReLU/ReLU6 right after such a conv (or its BN). They cost nothing in a deployed graph.
- Pure view ops (view, permute, transpose, expand, …) are not listed; copies that move data are (``layout``).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from .graph import STEM_CHANNELS

aten = torch.ops.aten

# ATen op name (overload packet) → op kind. Anything not listed and not a view is "other".
_KINDS = {
    "convolution": "conv",
    "mm": "matmul",
    "addmm": "matmul",
    "bmm": "matmul",
    "baddbmm": "matmul",
    "_softmax": "softmax",
    "_native_batch_norm_legit_no_training": "norm",
    "native_batch_norm": "norm",
    "native_layer_norm": "norm",
    "relu": "act",
    "hardtanh": "act",
    "hardswish": "act",
    "hardsigmoid": "act",
    "gelu": "act",
    "silu": "act",
    "sigmoid": "act",
    "add": "add",
    "mul": "mul",
    "div": "mul",
    "sub": "add",
    "mean": "pool",
    "avg_pool2d": "pool",
    "_adaptive_avg_pool2d": "pool",
    "cat": "concat",
    "constant_pad_nd": "pad",
    "clone": "layout",
    "_to_copy": "layout",
    "copy": "layout",
    "upsample_bilinear2d": "resize",
}
_VIEWS = {
    "view",
    "_unsafe_view",
    "reshape",
    "t",
    "transpose",
    "permute",
    "expand",
    "unsqueeze",
    "squeeze",
    "slice",
    "select",
    "unbind",
    "split",
    "split_with_sizes",
    "alias",
    "detach",
    "as_strided",
    "flatten",
    "lift_fresh",
    "empty",
    "_reshape_alias",
}
_FOLDABLE_ACTS = {"relu", "hardtanh"}  # what TFLite/ONNX fuse into a preceding conv (ReLU, ReLU6)


@dataclass
class LayerStat:
    index: int
    name: str  # owning module's path, e.g. "stages.2.0.pw_exp.conv"
    op: str  # conv, dwconv, pwconv, matmul, softmax, norm, act, add, mul, pool, concat, pad, layout, resize, other
    aten: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    macs: int
    weight_elems: int
    in_elems: int
    out_elems: int
    kernel: tuple[int, ...] = ()
    stride: int = 1
    groups: int = 1
    fused: bool = False  # folded into the previous op by converters (BN, ReLU/ReLU6 after a conv)

    @property
    def stage(self) -> str:
        parts = self.name.split(".")
        return ".".join(parts[:2]) if parts[0] == "stages" else parts[0]

    def weight_bytes(self, bytes_per_elem: float = 4) -> float:
        return self.weight_elems * bytes_per_elem

    def act_bytes(self, bytes_per_elem: float = 4) -> float:
        return (self.in_elems + self.out_elems) * bytes_per_elem

    @property
    def intensity(self) -> float:
        """Operational intensity at fp32, MACs per byte moved (weights + activations)."""
        moved = self.weight_bytes() + self.act_bytes()
        return self.macs / moved if moved else 0.0


@dataclass
class Analysis:
    model: str
    resolution: int
    params: int
    layers: list[LayerStat] = field(default_factory=list)

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def macs_fvcore(self) -> int:
        """MACs by fvcore's convention, the one behind timm's published GMACs: conv/linear/matmul MACs plus
        2 per eval-BatchNorm element, 5 per LayerNorm input element, 1 per global-pool input element.
        Only for comparing with timm's figures; every other number in deploykit uses :attr:`macs`."""
        extra = 0
        for x in self.layers:
            if x.aten in ("native_batch_norm", "_native_batch_norm_legit_no_training"):
                extra += 2 * x.out_elems
            elif x.aten == "native_layer_norm":
                extra += 5 * x.in_elems
            elif x.op == "pool" and x.name.startswith("head"):
                extra += x.in_elems
        return self.macs + extra

    @property
    def deployed(self) -> list[LayerStat]:
        """The ops a converted graph keeps (fused BN/activations dropped)."""
        return [layer for layer in self.layers if not layer.fused]

    def by_stage(self) -> OrderedDict[str, dict]:
        stages: OrderedDict[str, dict] = OrderedDict()
        for layer in self.layers:
            s = stages.setdefault(
                layer.stage, {"ops": 0, "macs": 0, "weight_elems": 0, "act_elems": 0, "out_shape": layer.out_shape}
            )
            s["macs"] += layer.macs
            s["weight_elems"] += layer.weight_elems
            if not layer.fused:
                s["ops"] += 1
                s["act_elems"] += layer.in_elems + layer.out_elems
            s["out_shape"] = layer.out_shape
        return stages

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "resolution": self.resolution,
            "params": self.params,
            "macs": self.macs,
            "layers": [{**asdict(x), "stage": x.stage} for x in self.layers],
        }


class _Recorder(TorchDispatchMode):
    """Tensors are told apart by identity, not storage, so the model can run on the ``meta`` device (shapes
    only, no arithmetic): counting the largest zoo model then takes milliseconds."""

    def __init__(self, param_ids: set[int], module_stack: list[str], zero_weights: bool = False):
        super().__init__()
        self.zero_weights = zero_weights  # every parameter is zero: a convolution's output is zeros, not computed
        self.param_ids = param_ids
        self.stack = module_stack
        self.layers: list[LayerStat] = []
        self.producer: dict[int, int] = {}  # id(output tensor) → index of the layer that made it
        self._alive: list[torch.Tensor] = []  # keeps recorded outputs alive so their ids stay unique

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__.rstrip("_")
        if self.zero_weights and name == "convolution":
            # Zero weights and bias give exactly zeros: its shape from the meta kernel, no arithmetic (convolutions
            # were two thirds of counting a zoo model: a sweep's first estimates waited seconds per model on them).
            meta = [a.to("meta") if isinstance(a, torch.Tensor) else a for a in args]
            out = torch.zeros(func(*meta, **(kwargs or {})).shape, dtype=args[0].dtype)
        else:
            out = func(*args, **(kwargs or {}))
        if name in _VIEWS:
            return out
        tensors = [a for a in _flat(args) if isinstance(a, torch.Tensor)]
        weights = [t for t in tensors if id(t) in self.param_ids]
        acts = [t for t in tensors if id(t) not in self.param_ids]
        result = out[0] if isinstance(out, (tuple, list)) else out
        if not isinstance(result, torch.Tensor):
            return out
        layer = LayerStat(
            index=len(self.layers),
            name=self.stack[-1] if self.stack else "",
            op=_KINDS.get(name, "other"),
            aten=name,
            in_shape=tuple(acts[0].shape) if acts else (),
            out_shape=tuple(result.shape),
            macs=0,
            weight_elems=sum(t.numel() for t in weights),
            in_elems=sum(t.numel() for t in acts),
            out_elems=result.numel(),
        )
        _fill_compute(layer, name, args, result)
        prev = self.producer.get(id(acts[0])) if acts else None
        if prev is not None and prev == len(self.layers) - 1:
            before = self.layers[prev]
            after_conv = before.op in CONV_KINDS or (
                before.fused and before.op == "norm" and self.layers[prev - 1].op in CONV_KINDS
            )
            if after_conv and (layer.op == "norm" and name != "native_layer_norm" or name in _FOLDABLE_ACTS):
                layer.fused = True
        self.layers.append(layer)
        self.producer[id(result)] = layer.index
        self._alive.append(result)
        return out


CONV_KINDS = ("conv", "stem", "dwconv", "pwconv")  # what a BatchNorm or an activation after it folds into


def _fill_compute(layer: LayerStat, name: str, args, result: torch.Tensor) -> None:
    if name == "convolution":
        x, w = args[0], args[1]
        groups = args[8]
        kh, kw = w.shape[2:]
        layer.macs = result.numel() * w.shape[1] * kh * kw
        layer.kernel, layer.stride, layer.groups = (kh, kw), args[3][0], groups
        if groups > 1 and groups == x.shape[1]:
            layer.op = "dwconv"
        elif kh == kw == 1 and groups == 1:
            layer.op = "pwconv"
        elif x.shape[1] <= STEM_CHANNELS:
            layer.op = "stem"
    elif name in ("mm", "addmm"):
        a, b = (args[1], args[2]) if name == "addmm" else (args[0], args[1])
        layer.macs = a.shape[0] * a.shape[1] * b.shape[1]
    elif name in ("bmm", "baddbmm"):
        a, b = (args[1], args[2]) if name == "baddbmm" else (args[0], args[1])
        layer.macs = a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2]


def _flat(args):
    for a in args:
        if isinstance(a, (list, tuple)):
            yield from _flat(a)
        else:
            yield a


def analyze(
    model: nn.Module, resolution: int, name: str = "", batch: int = 1, in_chans: int = 3, zero_weights: bool = False
) -> Analysis:
    """Run ``model`` once on a ``(batch, in_chans, resolution, resolution)`` input and record every op.

    The input is made on the model's device: build the model on ``meta`` (``with torch.device("meta")``)
    to count without computing. ``zero_weights``: the caller zeroed every parameter (convolutions are skipped)."""
    model = model.eval()
    param_ids = {id(t) for t in [*model.parameters(), *model.buffers()]}
    device = next(iter(model.parameters())).device
    stack: list[str] = []
    names = {m: n for n, m in model.named_modules()}

    def push(mod, _inp):
        stack.append(names.get(mod, stack[-1] if stack else ""))

    def pop(mod, _inp, _out):
        stack.pop()

    handles = [m.register_forward_pre_hook(push) for m in model.modules()]
    handles += [m.register_forward_hook(pop) for m in model.modules()]
    recorder = _Recorder(param_ids, stack, zero_weights)
    x = torch.zeros(batch, in_chans, resolution, resolution, device=device)
    try:
        with torch.no_grad(), recorder:
            model(x)
    finally:
        for h in handles:
            h.remove()
    params = sum(p.numel() for p in model.parameters())
    return Analysis(model=name or type(model).__name__, resolution=resolution, params=params, layers=recorder.layers)


def analyze_spec(name: str, resolution: int | None = None, deploy: bool = True) -> Analysis:
    """Analyse a zoo model by name at its default (or a given) resolution, in deploy form."""
    from .zoo import get_spec

    spec = get_spec(name)
    res = spec.resolution if resolution is None else resolution
    spec.check_resolution(res)
    # Counting needs shapes, not trained values: build without weight initialisation (meta device), then give
    # the tensors zeroed CPU storage. (Running on meta itself is slower: its shape functions are Python.)
    with torch.device("meta"):
        model = spec.build()
    model = model.to_empty(device="cpu")
    with torch.no_grad():
        for t in [*model.parameters(), *model.buffers()]:
            t.zero_()
    if deploy and hasattr(model, "reparameterize"):
        model.reparameterize()
    return analyze(model, res, name=spec.name, zero_weights=True)
