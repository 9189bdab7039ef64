"""The ExecuTorch converter: PyTorch → ``.pte`` through ``torch.export`` and ExecuTorch's XNNPACK lowering.
The format plugin is ``executorch.py``.

Precisions:
- ``fp32``: ``torch.export.export`` → ``to_edge_transform_and_lower(partitioner=[XnnpackPartitioner()])`` →
  ``to_executorch()``: every op XNNPACK takes goes into delegate blobs, the rest stays on ExecuTorch's portable
  kernels (``check`` lists those).
- ``int8``: static post-training quantization through PT2E with ExecuTorch's own ``XNNPACKQuantizer``
  (symmetric, per-channel weights, int8 activations), calibrated on the same inputs as the TFLite int8 file
  (``exporters/calibration.py``), then lowered the same way; XNNPACK consumes the quantize/dequantize pairs and
  runs int8 kernels. The model input and output stay float (the delegate quantizes at its edge), so callers feed
  float NCHW as for fp32.

The model input stays NCHW: XNNPACK converts layouts inside its delegate (no graph rewrite needed, unlike
TFLite's NHWC files).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from deploykit.errors import DeploykitError

from .fidelity import ROUNDING_NOISE_SHARE
from .quiet import quiet

INSTALL_HINT = "pip install 'deploykit[executorch]'"


def require_executorch() -> None:
    """A one-line error, not an ImportError traceback, where ExecuTorch is not installed."""
    import importlib.util

    if importlib.util.find_spec("executorch") is None or importlib.util.find_spec("executorch.exir") is None:
        raise DeploykitError("ExecuTorch is not installed", hint=INSTALL_HINT)


def _lower(program, out: Path) -> dict:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
    et = edge.to_executorch()
    out.write_bytes(et.buffer)
    return {}


def _quantize(model: nn.Module, example: torch.Tensor, calib: torch.Tensor):
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    graph = torch.export.export(model, (example,)).module()
    prepared = prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        for i in range(len(calib)):
            prepared(calib[i : i + 1])
    return convert_pt2e(prepared)


def with_rounding_noise(converted, seed: int = 0, share: float = ROUNDING_NOISE_SHARE):
    """A copy of PyTorch's int8 program in which a ``share`` of every activation quantize's values move by one
    LSB (up or down, seeded): two correct int8 implementations differ by at most that at each requantization
    (XNNPACK rounds in integer arithmetic, PyTorch's simulation in float), on the values that fall near a rounding
    boundary. How far the two programs' logits then disagree is how far this network, with these weights,
    amplifies rounding: the int8 threshold calibrates on it, as TFLite's calibrates on LiteRT's reference kernels
    (ExecuTorch's host runtime has no second int8 kernel set). Weights are not touched.

    The share is the largest whose threshold is not far below what two real kernel sets agree at; it is still a
    looser gate than TFLite's (the figures behind 1/16: docs/decisions.md, "ExecuTorch's rounding-noise share")."""
    import copy

    gen = torch.Generator().manual_seed(seed)
    quantize = torch.ops.quantized_decomposed.quantize_per_tensor.default

    def noisy(x, scale, zero_point, quant_min, quant_max, dtype):
        q = quantize(x, scale, zero_point, quant_min, quant_max, dtype).to(torch.int32)
        u = torch.rand(q.shape, generator=gen)
        q = q + (u < share / 2).to(torch.int32) - ((u >= share / 2) & (u < share)).to(torch.int32)
        return q.clamp(quant_min, quant_max).to(dtype)

    program = copy.deepcopy(converted)
    for node in program.graph.nodes:
        if node.op == "call_function" and node.target == quantize:
            node.target = noisy
    program.recompile()
    return program


def export_pte(model: nn.Module, example: torch.Tensor, out: Path, precision: str, calib: torch.Tensor | None) -> dict:
    require_executorch()
    notes: list[str] = []
    reference = noisy = None
    with quiet():  # torchao/ExecuTorch print library-loading and pytree warnings on stderr
        if precision == "int8":
            if calib is None:
                raise DeploykitError("int8 ExecuTorch export needs calibration inputs")
            converted = _quantize(model.eval(), example, calib)
            program = torch.export.export(converted, (example,))
            reference, noisy = converted, with_rounding_noise(converted)
            notes.append("int8: XNNPACKQuantizer, symmetric per-channel weights, int8 activations; float model I/O")
        else:
            program = torch.export.export(model.eval(), (example,))
        _lower(program, out)
    # ``_quantized_reference``: PyTorch's own simulated-int8 program (NCHW in, logits out), for verification.
    # ``_rounding_reference``: the same program with one-LSB rounding noise (see with_rounding_noise).
    return {"input_layout": "NCHW", "notes": notes, "_quantized_reference": reference, "_rounding_reference": noisy}
