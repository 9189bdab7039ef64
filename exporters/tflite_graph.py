"""Read a .tflite file into plain Python: ops with their options, tensors with dtype, shape and quantization.

Uses the flatbuffer schema bindings that ship with ai-edge-litert (no interpreter, no allocation), so it sees
what the converter wrote: builtin options such as strides and fused activations, constant vs runtime tensors,
and ``shape_signature`` (-1 marks a dynamic dimension).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from deploykit.errors import FileError

FLOAT_TYPES = {"FLOAT32", "FLOAT16", "FLOAT64", "BFLOAT16"}


@dataclass
class TfTensor:
    index: int
    name: str
    shape: list[int]
    signature: list[int]
    dtype: str  # schema name: FLOAT32, INT8, UINT8, INT32, ...
    constant: bool
    scale: list[float] = field(default_factory=list)
    zero_point: list[int] = field(default_factory=list)

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_TYPES


@dataclass
class TfOp:
    index: int
    name: str  # builtin operator name, e.g. CONV_2D, or CUSTOM:<code>
    inputs: list[int]
    outputs: list[int]
    options: dict


@dataclass
class TfGraph:
    ops: list[TfOp]
    tensors: list[TfTensor]
    inputs: list[int]
    outputs: list[int]
    subgraphs: int

    def histogram(self) -> dict[str, int]:
        return dict(Counter(op.name for op in self.ops).most_common())

    def t(self, i: int) -> TfTensor:
        return self.tensors[i]


def read_tflite(path: str | Path) -> TfGraph:
    from ai_edge_litert import schema_py_generated as s

    path = Path(path)
    try:
        buf = path.read_bytes()
        if len(buf) < 8 or buf[4:8] != b"TFL3":
            raise ValueError("no TFL3 identifier")
        model = s.ModelT.InitFromPackedBuf(buf, 0)
    except Exception as e:  # a truncated or foreign file raises anything from the flatbuffer reader
        raise FileError(
            f"{path} is not a readable .tflite file ({type(e).__name__}: {e})",
            hint="re-export it; a file cut short by a failed copy often looks like this",
        ) from None
    op_names = {v: k for k, v in vars(s.BuiltinOperator).items() if not k.startswith("_")}
    type_names = {v: k for k, v in vars(s.TensorType).items() if not k.startswith("_")}
    g = model.subgraphs[0]
    tensors = []
    for i, t in enumerate(g.tensors):
        buffer = model.buffers[t.buffer] if t.buffer < len(model.buffers) else None
        constant = buffer is not None and (buffer.data is not None or getattr(buffer, "offset", 0) > 1)
        q = t.quantization
        tensors.append(
            TfTensor(
                index=i,
                name=(t.name or b"").decode(errors="replace"),
                shape=[int(d) for d in (t.shape if t.shape is not None else [])],
                signature=[int(d) for d in (t.shapeSignature if t.shapeSignature is not None else [])],
                dtype=type_names.get(t.type, str(t.type)),
                constant=constant,
                scale=[float(x) for x in (q.scale if q is not None and q.scale is not None else [])],
                zero_point=[int(x) for x in (q.zeroPoint if q is not None and q.zeroPoint is not None else [])],
            )
        )
    ops = []
    for i, op in enumerate(g.operators):
        code = model.operatorCodes[op.opcodeIndex]
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        name = op_names.get(builtin, str(builtin))
        if name == "CUSTOM":
            name = f"CUSTOM:{(code.customCode or b'').decode()}"
        opts = op.builtinOptions
        options = {k: v for k, v in vars(opts).items() if not k.startswith("_")} if opts is not None else {}
        ops.append(TfOp(i, name, [int(x) for x in op.inputs if x >= 0], [int(x) for x in op.outputs], _plain(options)))
    return TfGraph(ops, tensors, [int(x) for x in g.inputs], [int(x) for x in g.outputs], len(model.subgraphs))


def _plain(options: dict) -> dict:
    out = {}
    for k, v in options.items():
        if hasattr(v, "tolist"):
            v = v.tolist()
        if isinstance(v, (int, float, bool, str, list)) or v is None:
            out[k] = v
    return out


FUSED_ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}
