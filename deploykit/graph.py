"""One deployed op as the estimator sees it, whoever read it: the zoo analysis or a format's own file reader.

Ground floor, so that a format plugin can hand its file's graph to the estimator without importing it.
"""

from __future__ import annotations

from dataclasses import dataclass

# A full convolution on the image itself (3 channels, 4 with alpha) is its own op kind, "stem": it runs far below the
# throughput of a full convolution inside the network (MNv4's FusedIB blocks), and as one kind a fit learnt the
# stems' efficiency for both.
STEM_CHANNELS = 4


@dataclass
class Layer:
    name: str
    kind: str  # conv, stem, pwconv, dwconv, matmul, attn_matmul, softmax, layer_norm, act, add, mul, pool, ...
    macs: int
    weight_elems: int
    in_elems: int
    out_elems: int


@dataclass
class LiveTensor:
    """One activation tensor of a graph, as a memory planner sees it: its bytes and the ops (indices in execution
    order) between which it must be kept: from the op that writes it to the last op that reads it."""

    name: str
    bytes: int
    first: int
    last: int


@dataclass
class MemoryGraph:
    """What a runtime must hold to run a graph: its constant weights, and its activations with their lifetimes in
    the runtime's execution order. Written by a format plugin from its file, or from the model's exported graph."""

    weights_bytes: int
    tensors: list[LiveTensor]
    ops: int
    source: str  # what was read: "tflite file", "onnx file", "torch.export graph of the model"


# bytes per element of a tensor type, by the names the formats' readers use (TFLite schema names, numpy names)
DTYPE_BYTES = {
    "FLOAT32": 4, "FLOAT16": 2, "FLOAT64": 8, "BFLOAT16": 2, "INT8": 1, "UINT8": 1, "INT16": 2, "INT32": 4,
    "INT64": 8, "BOOL": 1, "INT4": 0.5,
    "float32": 4, "float16": 2, "float64": 8, "bfloat16": 2, "int8": 1, "uint8": 1, "int16": 2, "int32": 4,
    "int64": 8, "bool": 1,
}  # fmt: skip
