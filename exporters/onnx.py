"""PyTorch → ONNX: torch.export-based exporter (onnxscript), cleaned with onnxslim, fp32 or fp16.

Cleanup is measured, not assumed: the node count before and after onnxslim goes into the manifest, and the
slimmed graph replaces the raw one only when it is checker-valid and not larger.
fp16 converts weights and compute to float16 with float32 model inputs/outputs (``keep_io_types``), so callers
feed the same tensors as for fp32.
"""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from pathlib import Path

import torch

OPSET = 18


def export_onnx(model: torch.nn.Module, example: torch.Tensor, out: Path, precision: str) -> dict:
    import onnx
    import onnxslim

    # The exporter logs one warning per torchvision op it cannot register ("torchvision is not installed"):
    # noise in the middle of a progress bar, and nothing to do with the user's model.
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model,
            (example,),
            dynamo=True,
            opset_version=OPSET,
            input_names=["input"],
            output_names=["logits"],
            verbose=False,
            optimize=True,
        )
    raw = program.model_proto
    nodes_raw = len(raw.graph.node)
    slim = onnxslim.slim(raw)
    onnx.checker.check_model(slim)
    nodes_slim = len(slim.graph.node)
    proto = slim if nodes_slim <= nodes_raw else raw
    if precision == "fp16":
        from onnxruntime.transformers.float16 import convert_float_to_float16

        # keep_io_types inserts input/output casts out of topological order; onnxslim re-sorts the graph.
        proto = onnxslim.slim(convert_float_to_float16(proto, keep_io_types=True))
    onnx.checker.check_model(proto)
    onnx.save(proto, str(out))
    return {
        "ops": dict(Counter(n.op_type for n in proto.graph.node).most_common()),
        "opset": OPSET,
        "cleanup": {"tool": "onnxslim", "nodes_before": nodes_raw, "nodes_after": nodes_slim},
        "input_layout": "NCHW",
        "io_dtype": "float32",
    }
