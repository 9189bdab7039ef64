"""XNNPACK's operator names, as its profiling events spell them, in the analysis' op kinds.

Both ExecuTorch's ETDump (``Convolution (NHWC, F32) IGEMM #3``) and TFLite's ``benchmark_model``
(``Delegate/Convolution (NHWC, QC8) GEMM:12``) report the operator names XNNPACK gives its operators
(``xnn_operator_type_to_string``: "Convolution (NHWC, F32) DWConv", "Fully Connected (NC, QS8, QC8W) GEMM",
"Add (ND)", "Mean (ND) Reduce2", "Transpose (ND, X32)"); the part before the first parenthesis names the
operation and the tail the microkernel family.
"""

from __future__ import annotations

import re

# operation name (before " (") → op kind; a 1x1 convolution runs as "Fully Connected" in ExecuTorch's lowering
# and as a "Convolution … GEMM" in TFLite's, so both map to kinds the join accepts for a pointwise layer
_KINDS = {
    "Fully Connected": "matmul",
    "Batch Matrix Multiply": "matmul",
    "Dynamic Fully Connected": "matmul",
    "Add": "add",
    "Subtract": "add",
    "Multiply": "mul",
    "Divide": "mul",
    "Mean": "pool",
    "Sum": "pool",
    "Average Pooling": "pool",
    "Global Average Pooling": "pool",
    "Max Pooling": "pool",
    "Argmax Pooling": "pool",
    "Softmax": "softmax",
    "HardSwish": "act",
    "Sigmoid": "act",
    "Clamp": "act",
    "ELU": "act",
    "GELU": "act",
    "Leaky ReLU": "act",
    "Tanh": "act",
    "Copy": "layout",
    "Transpose": "layout",
    "Convert": "layout",
    "Depth To Space": "layout",
    "Space To Depth": "layout",
    "Constant Pad": "pad",
    "Resize Bilinear": "resize",
    "Static Reshape": "view",
    "Static Resize Bilinear": "resize",
    "Concatenate": "concat",
    "Slice": "layout",
    "Layer Norm": "norm",
    "RMS Norm": "norm",
}
_TAIL = re.compile(r"\s*(#\d+|:\d+)$")  # ExecuTorch's occurrence counter, benchmark_model's event id


def operator_name(name: str) -> str:
    """``Delegate/Convolution (NHWC, F32) IGEMM:3`` or ``… IGEMM #3`` → ``Convolution (NHWC, F32) IGEMM``."""
    return _TAIL.sub("", name.removeprefix("Delegate/")).strip()


def kind_of(name: str) -> str:
    """The op kind of an XNNPACK operator name (``other`` for one this table does not know)."""
    op = operator_name(name)
    head = op.split(" (", 1)[0].strip()
    if head == "Convolution" or head == "Deconvolution":
        if op.endswith("DWConv"):
            return "dwconv"
        return "pwconv" if op.endswith(" GEMM") else "conv"  # XNNPACK runs 1x1 convolutions as GEMM
    return _KINDS.get(head, "other")
