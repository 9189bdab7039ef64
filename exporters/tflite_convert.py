"""The TFLite converter: PyTorch → TFLite/LiteRT through litert-torch (no TensorFlow), NHWC model input for every
precision, with the graph rewrites and the int8 quantizer it needs. The format plugin is `tflite.py`.

Precisions:
- ``fp32``: plain conversion.
- ``fp16``: fp32 conversion, then float16 weights (ai-edge-quantizer FLOAT_CASTING): what the GPU delegate
  consumes; CPUs dequantize the weights once at load time.
- ``int8-dynamic``: int8 per-channel weights, float activations quantized per op at run time (ai-edge-quantizer).
- ``int8``: static post-training quantization through PT2E, calibrated: int8 weights, activations, model input
  and output.
- ``int8-edgetpu``: ``int8`` plus graph rewrites so that every op is in Coral's Edge TPU set (see below).

Why our own quantizer pass: in torch 2.13 non-strict ``torch.export`` no longer records ``source_fn_stack``,
which litert-torch's PT2E annotators use to find residual ADDs and MULs. Those ops were left in float, and the
converter wrapped each in DEQUANTIZE/QUANTIZE: islands that kept int8 MobileNets from mapping to an Edge TPU
and made them no faster than fp32. :class:`FullInt8Quantizer` annotates every remaining arithmetic op on the
exported graph by its ATen target instead.

Why NHWC input: TFLite kernels are NHWC, so an NCHW model input costs a TRANSPOSE (which the Edge TPU profile
forbids); ``litert_torch.to_channel_last_io`` moves the layout change out of the graph. Outputs are (N, classes).

Edge TPU rewrites (``int8-edgetpu``), all exact except GELU:
- hard-swish ``x·relu6(x+3)/6`` and hard-sigmoid ``relu6(x+3)/6`` as ADD, RELU6, MUL (HARD_SWISH is not in
  Coral's supported-op table; TFLite has no int8 hard-sigmoid kernel at all). The plain ``int8`` export rewrites
  both too: XNNPACK does not take int8 HARD_SWISH, so each one split the graph into a built-in kernel between
  XNNPACK partitions — MobileNetV3-Large int8 ran at 10.2 ms against 4.0 ms rewritten (2 threads, this host),
  MobileNetV3-Small 4.9 against 1.5 ms (docs/benchmarks.md).
- SiLU as ``x·sigmoid(x)`` (LOGISTIC, MUL),
- GELU as its tanh approximation (TANH, MUL, ADD; max deviation from exact GELU ≈ 3e-4 on the activation).
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .quiet import quiet

aten = torch.ops.aten

# Ops the PT2E annotators may miss (see module docstring): annotated int8-in/int8-out by target.
_ANNOTATE = {
    aten.add.Tensor,
    aten.sub.Tensor,
    aten.mul.Tensor,
    aten.div.Tensor,
    aten.hardswish.default,
    aten.hardtanh.default,
    aten.relu.default,
    aten.relu6.default,
    aten.sigmoid.default,
    aten.tanh.default,
    aten.gelu.default,
    aten.silu.default,
    aten.mean.dim,
    aten.cat.default,
    aten.matmul.default,
    aten.bmm.default,
    aten.softmax.int,
    aten._softmax.default,
    aten.layer_norm.default,
    aten.constant_pad_nd.default,
    aten.pad.default,
}
# Ops whose int8 output must reuse the input's scale (TFLite PAD requires it; a new scale would need a
# requantize, i.e. a QUANTIZE inside the graph). An explicit F.pad — TF "SAME" padding in tf_ checkpoints —
# left unannotated ran in float, wrapped in QUANTIZE/DEQUANTIZE and TRANSPOSEs.
_SAME_SCALE = {aten.constant_pad_nd.default, aten.pad.default}


def _c(x: torch.Tensor, value: float) -> torch.Tensor:
    """A constant of the same rank as ``x`` (1×1×…×1). With a Python scalar instead, litert-torch's layout pass
    treats the quantized ADD/MUL as layout-sensitive and brackets it with NHWC↔NCHW TRANSPOSEs."""
    return x.new_full((1,) * x.dim(), value)


class Hardsigmoid(nn.Module):
    def forward(self, x):
        return F.relu6(x + _c(x, 3.0)) * _c(x, 1.0 / 6.0)


class Hardswish(nn.Module):
    def forward(self, x):
        return x * (F.relu6(x + _c(x, 3.0)) * _c(x, 1.0 / 6.0))


class SiLU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(x)


class GeluTanh(nn.Module):
    def forward(self, x):
        inner = _c(x, math.sqrt(2.0 / math.pi)) * (x + _c(x, 0.044715) * x * x * x)
        return _c(x, 0.5) * x * (_c(x, 1.0) + torch.tanh(inner))


def rewrite_activations(model: nn.Module, edgetpu: bool) -> tuple[nn.Module, list[str]]:
    """A copy of ``model`` with activations replaced by int8/Edge TPU-mappable equivalents; and notes."""
    swaps = {nn.Hardsigmoid: Hardsigmoid, nn.Hardswish: Hardswish}  # exact; see the module docstring for why
    if edgetpu:
        swaps.update({nn.SiLU: SiLU, nn.GELU: GeluTanh})
    model = copy.deepcopy(model)
    done: dict[str, int] = {}
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            new = swaps.get(type(child))
            if new is not None:
                setattr(parent, name, new())
                done[type(child).__name__] = done.get(type(child).__name__, 0) + 1
    notes = [f"rewrote {n}× {k} as {swaps[getattr(nn, k)].__name__}" for k, n in done.items()]
    if "GELU" in done:
        notes.append("GELU uses its tanh approximation on the Edge TPU (|Δ| ≤ 3e-4 per activation)")
    return model, notes


def symmetric_same_padding(model: nn.Module, example: torch.Tensor) -> tuple[nn.Module, list[str]]:
    """Replace TF-"SAME" convs (an explicit, asymmetric F.pad before the conv) by plain convs, exactly.

    Why: in the int8 path litert-torch's NHWC layout pass has no rule for a constant pad, so each one came out
    wrapped in TRANSPOSEs (and, unannotated, QUANTIZE islands): MobileNetV3-Large-0.75 (timm's tf_ checkpoint)
    was not Edge TPU-ready. A symmetric pad is a conv attribute the converter handles. An asymmetric one,
    (p-1, p) per side, equals a conv with padding p whose kernel has one zero row/column prepended: output i
    then reads inputs s·i-p+1 … s·i-p+k exactly as before. Cost: those convs do (k+1)²/k² of their MACs
    (only the stride-2 ones; the shapes are fixed by ``example``). Used for ``int8-edgetpu`` only: on this
    host's XNNPACK, MNv3-Large-0.75 int8 ran 6.97 ms with grown kernels against 3.64 ms with the PADs and their
    TRANSPOSEs (fp32: 2.93 ms), so the CPU ``int8`` file keeps the pads (scale-shared, no QUANTIZE)."""
    from deploykit.zoo.layers import SamePadConv2d

    sizes: dict[nn.Module, tuple[int, int]] = {}
    hooks = [
        m.register_forward_pre_hook(lambda mod, inp: sizes.__setitem__(mod, tuple(inp[0].shape[-2:])))
        for m in model.modules()
        if isinstance(m, SamePadConv2d)
    ]
    with torch.no_grad():
        model(example)
    for h in hooks:
        h.remove()
    grown = 0
    for parent in list(model.modules()):
        for name, conv in list(parent.named_children()):
            if conv not in sizes or conv.dilation != (1, 1):
                continue
            (top, bottom), (left, right) = conv.pads(sizes[conv])
            dh, dw = bottom - top, right - left  # 0 or 1 for TF "SAME"
            kh, kw = conv.kernel_size
            new = nn.Conv2d(
                conv.in_channels,
                conv.out_channels,
                (kh + dh, kw + dw),
                conv.stride,
                (bottom, right),
                groups=conv.groups,
                bias=conv.bias is not None,
            )
            with torch.no_grad():
                new.weight.copy_(F.pad(conv.weight, [dw, 0, dh, 0]))  # zero column left, zero row on top
                if conv.bias is not None:
                    new.bias.copy_(conv.bias)
            setattr(parent, name, new)
            grown += bool(dh or dw)
    return model, [f"TF-SAME padding: {grown} asymmetric-pad conv(s) exported with a grown kernel"] if grown else []


def _import_litert_torch():
    """litert-torch, imported with its C++ runtime's start-up lines (absl's "All log messages before
    absl::InitializeLog()", oneDNN's notice, torchao's kernel libraries) kept off the user's terminal."""
    with quiet():
        import litert_torch
    return litert_torch


def export_tflite(
    model: nn.Module, example: torch.Tensor, out: Path, precision: str, calibration: torch.Tensor | None
) -> dict:
    litert_torch = _import_litert_torch()

    notes: list[str] = []
    if precision in ("int8", "int8-edgetpu"):
        model, notes = rewrite_activations(model, edgetpu=precision == "int8-edgetpu")
    if precision == "int8-edgetpu":  # not for CPU int8: XNNPACK runs the grown 4×4/6×6 kernels 1.9× slower
        model, pad_notes = symmetric_same_padding(model, example)
        notes += pad_notes
    nhwc_model = litert_torch.to_channel_last_io(model.eval(), args=[0])
    x = example.permute(0, 2, 3, 1).contiguous()
    reference = None
    with quiet():
        if precision in ("int8", "int8-edgetpu"):
            edge, reference = _convert_static_int8(nhwc_model, x, calibration.permute(0, 2, 3, 1).contiguous())
        else:
            edge = litert_torch.convert(nhwc_model, (x,))
        edge.export(str(out))
        if precision in ("fp16", "int8-dynamic"):
            _post_quantize(out, precision)
    # ``_quantized_reference``: PyTorch's own simulated-int8 program (NHWC in, logits out), for verification.
    return {"input_layout": "NHWC", "notes": notes, "_quantized_reference": reference}


def _convert_static_int8(model: nn.Module, x: torch.Tensor, calib: torch.Tensor):
    litert_torch = _import_litert_torch()
    from litert_torch.quantize import pt2e_quantizer as pq
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = FullInt8Quantizer().set_global(pq.get_symmetric_quantization_config(is_per_channel=True))
    graph = torch.export.export(model, (x,)).module()
    prepared = prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        for i in range(len(calib)):
            prepared(calib[i : i + 1])
    converted = convert_pt2e(prepared, fold_quantize=False)
    edge = litert_torch.convert(converted, (x,), quant_config=QuantConfig(pt2e_quantizer=quantizer))
    return edge, converted


_CLAMPS = {aten.relu.default, aten.relu6.default, aten.hardtanh.default}
# Ops that move int8 values without changing them (and, in TFLite, without changing their scale).
_VIEWS = {
    aten.view.default,
    aten.reshape.default,
    aten._unsafe_view.default,
    aten.expand.default,
    aten.permute.default,
    aten.transpose.int,
    aten.clone.default,
    aten.unsqueeze.default,
    aten.squeeze.dim,
    aten.flatten.using_ints,
}
# TFLite's int8 kernels require these output quantizations exactly (activations.cc): (scale, zero point).
_FIXED_OUTPUT = {
    aten.softmax.int: (1.0 / 256.0, -128),
    aten._softmax.default: (1.0 / 256.0, -128),
    aten.sigmoid.default: (1.0 / 256.0, -128),
    aten.tanh.default: (1.0 / 128.0, 0),
}


def _full_int8_quantizer_class():
    _import_litert_torch()
    from litert_torch.quantize import pt2e_quantizer as pq
    from litert_torch.quantize import pt2e_quantizer_utils as pqu
    from torchao.quantization.pt2e.quantizer import (
        FixedQParamsQuantizationSpec,
        QuantizationAnnotation,
        SharedQuantizationSpec,
    )

    def fixed(scale, zero_point):
        return FixedQParamsQuantizationSpec(
            dtype=torch.int8,
            scale=scale,
            zero_point=zero_point,
            quant_min=-128,
            quant_max=127,
            qscheme=torch.per_tensor_affine,
        )

    class _FullInt8Quantizer(pq.PT2EQuantizer):
        """litert-torch's PT2E quantizer, plus int8 annotations for every arithmetic op it left in float.

        Two details make PyTorch's simulated int8 program match what TFLite executes: an ADD/SUB/MUL whose
        only user is a ReLU/ReLU6 is annotated as one fused unit (TFLite fuses the clamp and quantizes once,
        after it), and SOFTMAX/LOGISTIC/TANH get the fixed output scales TFLite's int8 kernels demand.
        """

        def annotate(self, model):
            model = super().annotate(model)
            cfg = self.global_config
            act = pqu.get_input_act_qspec(cfg)
            for node in model.graph.nodes:
                if node.op != "call_function" or node.target not in _ANNOTATE:
                    continue
                ann = node.meta.get("quantization_annotation")
                if ann is not None and ann._annotated:
                    continue
                if node.target in _SAME_SCALE:
                    src = node.args[0]
                    node.meta["quantization_annotation"] = QuantizationAnnotation(
                        input_qspec_map={src: act}, output_qspec=SharedQuantizationSpec((src, node)), _annotated=True
                    )
                    continue
                if node.target == aten.cat.default:
                    args = node.args[0]
                elif node.target == aten.layer_norm.default:
                    args = node.args[:1]  # weight and bias stay float: the converter folds them
                else:
                    args = node.args[:2]
                users = list(node.users)
                fuse_clamp = (
                    node.target in (aten.add.Tensor, aten.sub.Tensor, aten.mul.Tensor)
                    and len(users) == 1
                    and users[0].target in _CLAMPS
                )
                if node.target in _CLAMPS and _fused_into_producer(node):
                    node.meta["quantization_annotation"] = QuantizationAnnotation(
                        input_qspec_map={}, output_qspec=pqu.get_output_act_qspec(cfg), _annotated=True
                    )
                    continue
                out_spec = pqu.get_output_act_qspec(cfg)
                if node.target in _FIXED_OUTPUT:
                    out_spec = fixed(*_FIXED_OUTPUT[node.target])
                node.meta["quantization_annotation"] = QuantizationAnnotation(
                    input_qspec_map={a: _input_spec(a, act) for a in args if isinstance(a, torch.fx.Node)},
                    output_qspec=None if fuse_clamp else out_spec,
                    _annotated=True,
                )
            return model

    def _input_spec(arg, act):
        """An input fed by a fixed-scale op (softmax, sigmoid, tanh), directly or through reshapes/transposes,
        keeps that fixed scale. A freshly observed scale there means a requantize, and the converter lowers
        attention's ``softmax → matmul`` to ``softmax → RESHAPE → BATCH_MATMUL``, whose int8 RESHAPE may not change
        scale: that failed MobileViT's int8 conversion."""
        src = arg
        while isinstance(src, torch.fx.Node) and src.target in _VIEWS:
            src = src.args[0]
        if isinstance(src, torch.fx.Node) and src.target in _FIXED_OUTPUT:
            return fixed(*_FIXED_OUTPUT[src.target])
        return act

    def _fused_into_producer(clamp) -> bool:
        src = clamp.args[0]
        return (
            isinstance(src, torch.fx.Node)
            and src.target in (aten.add.Tensor, aten.sub.Tensor, aten.mul.Tensor)
            and len(src.users) == 1
        )

    return _FullInt8Quantizer


def FullInt8Quantizer():  # noqa: N802 - a factory standing in for the class, built lazily (heavy imports)
    return _full_int8_quantizer_class()()


def _post_quantize(path: Path, precision: str) -> None:
    from ai_edge_quantizer import quantizer, recipe
    from ai_edge_quantizer.algorithm_manager import AlgorithmName
    from ai_edge_quantizer.qtyping import TFLOperationName

    qt = quantizer.Quantizer(str(path))
    if precision == "fp16":
        qt.add_weight_only_config(
            regex=".*",
            operation_name=TFLOperationName.ALL_SUPPORTED,
            num_bits=16,
            algorithm_key=AlgorithmName.FLOAT_CASTING,
        )
    else:
        qt.load_quantization_recipe(recipe.dynamic_wi8_afp32())
    qt.quantize().export_model(str(path), overwrite=True)
