"""The TFLite/LiteRT format: a ``.tflite`` file, written by ``tflite_convert.py``, read back with the flatbuffer
reader (``tflite_graph.py``), judged by the Edge TPU and GPU-delegate rules (``tflite_compat.py``), and run on
the host with LiteRT's interpreter (XNNPACK, or the reference kernels for verification).

Precisions: fp32, fp16 (fp16 weights), int8-dynamic, int8 (full integer, calibrated) and int8-edgetpu (int8
plus the Edge TPU's graph rewrites); see ``tflite_convert.py`` for how and why.
"""

from __future__ import annotations

import math
from pathlib import Path

from deploykit.artifact import Manifest, TensorSpec
from deploykit.errors import DeploykitError, FileError
from deploykit.graph import STEM_CHANNELS, Layer

from .base import Described, Format, HostSession, register, resolve_shapes, user_manifest
from .quiet import quiet

FULL_INT8 = ("int8", "int8-edgetpu")
_DTYPES = {"FLOAT32": "float32", "FLOAT16": "float16", "INT8": "int8", "UINT8": "uint8"}

# TFLite op → the estimator's op kind.
_KINDS = {
    "CONV_2D": "conv",
    "DEPTHWISE_CONV_2D": "dwconv",
    "FULLY_CONNECTED": "matmul",
    "BATCH_MATMUL": "attn_matmul",
    "SOFTMAX": "softmax",
    "ADD": "add",
    "MUL": "mul",
    "SUB": "add",
    "MEAN": "pool",
    "AVERAGE_POOL_2D": "pool",
    "CONCATENATION": "concat",
    "PAD": "pad",
    "TRANSPOSE": "layout",
    "RESHAPE": "view",
    "QUANTIZE": "layout",
    "DEQUANTIZE": "layout",
    "HARD_SWISH": "act",
    "LOGISTIC": "act",
    "GELU": "act",
    "RELU": "act",
    "RELU6": "act",
    "TANH": "act",
}


def tensor_spec(t, layout: str) -> TensorSpec:
    """A flatbuffer tensor as the manifest describes it (scale/zero-point when per-tensor quantized)."""
    dtype = _DTYPES.get(t.dtype, t.dtype.lower())
    quantized = dtype in ("int8", "uint8") and len(t.scale) == 1
    return TensorSpec(
        t.name, t.shape, dtype, layout, t.scale[0] if quantized else None, t.zero_point[0] if quantized else None
    )


def quantize(x, spec: TensorSpec):
    """Float → the tensor's dtype, with its scale/zero-point when it is quantized."""
    import numpy as np

    if spec.scale is None:
        return x.astype(spec.dtype)
    info = np.iinfo(spec.dtype)
    q = np.round(x / spec.scale) + spec.zero_point
    return np.clip(q, info.min, info.max).astype(spec.dtype)


def dequantize(q, spec: TensorSpec):
    import numpy as np

    if spec.scale is None:
        return q.astype(np.float32)
    return ((q.astype(np.float32) - spec.zero_point) * spec.scale).astype(np.float32)


def tensor_shape(t) -> list:
    """Static dims as ints, dynamic ones (-1 in the shape signature) as "?"."""
    sig = t.signature or t.shape
    return [d if d > 0 else "?" for d in sig]


class TfliteSession(HostSession):
    """LiteRT's interpreter: XNNPACK with ``threads`` threads, or the portable reference kernels. Every input is
    fed at its declared dtype; dynamic dimensions are resized to the resolved shapes before allocation."""

    def __init__(self, path, manifest, threads=None, reference_kernels=False, input_shapes=None):
        from importlib.metadata import version

        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        resolver = OpResolverType.BUILTIN_REF if reference_kernels else OpResolverType.AUTO
        self.inputs = manifest.inputs
        self.shapes, self.notes = resolve_shapes(self.inputs, input_shapes)
        try:
            with quiet():  # LiteRT prints "INFO: Created TensorFlow Lite XNNPACK delegate" on stderr
                self.it = Interpreter(
                    model_path=str(path), num_threads=threads or 2, experimental_op_resolver_type=resolver
                )
                self.details = self.it.get_input_details()
                for d, t in zip(self.details, self.inputs):
                    if list(d["shape"]) != self.shapes[t.name]:
                        self.it.resize_tensor_input(d["index"], self.shapes[t.name])
                self.it.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise FileError(f"{Path(path).name}: LiteRT cannot load it: {' '.join(str(e).split())[:200]}") from None
        self.inp, self.out = self.inputs[0], manifest.outputs[0]
        self.in_index = self.details[0]["index"]
        self.out_index = self.it.get_output_details()[0]["index"]
        delegate = "reference kernels" if reference_kernels else "XNNPACK"
        self.env = {"runtime": "ai-edge-litert " + version("ai-edge-litert"), "threads": threads, "delegate": delegate}
        self.delegate = {"delegate": delegate}

    def input_shape_nchw(self) -> list[int]:
        s = list(self.shapes[self.inp.name])
        return [s[0], s[3], s[1], s[2]] if self.inp.layout == "NHWC" and len(s) == 4 else s

    def feed(self, x_nchw):
        if self.inp.layout == "NHWC" and x_nchw.ndim == 4:
            x_nchw = x_nchw.transpose(0, 2, 3, 1)
        self.it.set_tensor(self.in_index, quantize(x_nchw, self.inp))

    def feed_inputs(self, arrays: dict):
        for d, t in zip(self.details, self.inputs):
            self.it.set_tensor(d["index"], arrays[t.name])

    def invoke(self):
        try:
            self.it.invoke()
        except RuntimeError as e:
            raise DeploykitError(f"LiteRT could not run it: {' '.join(str(e).split())[:300]}") from None

    def output(self):
        y = dequantize(self.it.get_tensor(self.out_index), self.out)
        return y.reshape(len(y), -1)


class Tflite(Format):
    name = "tflite"
    suffix = ".tflite"
    precisions = ("fp32", "fp16", "int8-dynamic", "int8", "int8-edgetpu")
    description = "TFLite/LiteRT flatbuffer, run with LiteRT (XNNPACK)"
    tools = ("litert-torch", "ai-edge-litert", "ai-edge-quantizer")
    reference_kernels = "LiteRT reference-vs-XNNPACK"
    # ai-edge-litert 2.3: Interpreter and CompiledModel return no profile (its only profiling switch,
    # experimental_force_delegate_node_profiling, feeds a profiler the Python API cannot attach or read)
    no_op_profiler = (
        "LiteRT's Python API (ai-edge-litert) has no op profiler: no per-op times on this host"
        " (benchmark_model --enable_op_profiling on a phone has them: record its CSV and pass it with --from)"
    )
    rule_aliases = {"gpu-delegate": "litert-gpu"}  # the names these rule sets had before they were named by backend

    def convert(self, model, example, out: Path, precision: str, calib, options: dict) -> dict:
        from .tflite_convert import export_tflite

        return export_tflite(model, example, out, precision, calib)

    def describe(self, path: Path, precision: str, info: dict) -> Described:
        from .tflite_graph import read_tflite

        g = read_tflite(path)
        ops = g.histogram()
        notes = []
        q, dq = ops.get("QUANTIZE", 0), ops.get("DEQUANTIZE", 0)
        if precision in FULL_INT8 and q + dq:
            # Each is a float island's edge, a delegate partition boundary on CPUs (MobileViT int8, 88 QUANTIZE +
            # 55 DEQUANTIZE, measured 4.2x slower than its fp32 file with XNNPACK).
            notes.append(
                f"partly float: {q} QUANTIZE and {dq} DEQUANTIZE ops inside the graph;"
                " expect this int8 file to be slower than fp32 on CPUs (bench both)"
            )
        return Described(
            inputs=[tensor_spec(g.t(i), "NHWC") for i in g.inputs],
            outputs=[tensor_spec(g.t(i), "NC") for i in g.outputs],
            ops=ops,
            notes=notes,
        )

    def manifest_from_file(self, path: Path) -> Manifest:
        """What the file declares: every input and output (dynamic dims as "?"), and its precision from its
        tensors: int8 input → int8; int8 weights with float activations → int8-dynamic; fp16 weights → fp16."""
        from .tflite_graph import read_tflite

        g = read_tflite(path)
        inputs = []
        for i in g.inputs:
            t = g.t(i)
            image = len(t.shape) == 4 and t.shape[-1] in (1, 3)
            inputs.append(tensor_spec(t, "NHWC" if image else "NCHW" if len(t.shape) == 4 else "ND"))
            inputs[-1].shape = tensor_shape(t)
        outputs = [tensor_spec(g.t(i), "NC") for i in g.outputs]
        weights = {g.t(i).dtype for op in g.ops for i in op.inputs if g.t(i).constant}
        if inputs[0].dtype in ("int8", "uint8"):
            precision = "int8"
        elif "INT8" in weights:
            precision = "int8-dynamic"
        elif "FLOAT16" in weights:
            precision = "fp16"
        else:
            precision = "fp32"
        first = inputs[0]
        square = first.layout == "NHWC" and isinstance(first.shape[1], int) and first.shape[1] == first.shape[2]
        return user_manifest(path, self.name, precision, inputs, outputs, first.shape[1] if square else 0)

    def compat_rules(self, precision: str) -> list[str]:
        return ["edgetpu", "litert-gpu"] if precision in FULL_INT8 else ["litert-gpu"]

    def check(self, path: Path, rule: str) -> dict:
        from .tflite_compat import check_file

        return check_file(path, rule)

    def open_session(self, path, manifest, threads=None, reference_kernels=False, input_shapes=None, **_):
        return TfliteSession(path, manifest, threads, reference_kernels, input_shapes)

    def graph_layers(self, path: Path) -> list[Layer]:
        """The real op graph: MACs from the conv/FC/matmul tensor shapes."""
        from .tflite_graph import read_tflite

        g = read_tflite(path)
        out = []
        for op in g.ops:
            kind = _KINDS.get(op.name, "other")
            if kind == "view":
                continue
            ins = [g.t(i) for i in op.inputs]
            outs = [g.t(i) for i in op.outputs]
            weights = [t for t in ins if t.constant]
            acts = [t for t in ins if not t.constant]
            n_out = sum(math.prod(t.shape) for t in outs)
            macs = 0
            if kind in ("conv", "dwconv") and len(ins) > 1:
                w = ins[1].shape  # conv: [O, kh, kw, I]; depthwise: [1, kh, kw, C·m]
                macs = n_out * (w[1] * w[2] * (w[3] if kind == "conv" else 1))
                if kind == "conv" and w[1] == w[2] == 1:
                    kind = "pwconv"
                elif kind == "conv" and w[3] <= STEM_CHANNELS:
                    kind = "stem"
            elif kind == "matmul" and len(ins) > 1:
                macs = n_out * ins[1].shape[-1]
                if not ins[1].constant:
                    kind = "attn_matmul"
            elif kind == "attn_matmul" and len(ins) > 1:
                macs = n_out * ins[0].shape[-1]
            out.append(
                Layer(
                    f"{op.index}:{op.name}",
                    kind,
                    int(macs),
                    sum(math.prod(t.shape) for t in weights),
                    sum(math.prod(t.shape) for t in acts),
                    n_out,
                )
            )
        return out

    def batched(self, path: Path, manifest: Manifest, batch: int):
        """The same file: LiteRT resizes the input's batch before allocating (``resize_tensor_input``); a graph
        that bakes batch 1 into a reshape fails to run, and that row says so."""
        from .base import Batched, with_batch

        m, shapes = with_batch(manifest, batch)
        return Batched(path, m, shapes, f"LiteRT resized the input to batch {batch}")

    def memory_graph(self, path: Path):
        """Constant buffers are the weights; every other tensor lives from the op that writes it (a graph input
        from the start) to the last op that reads it (a graph output to the end), ops in the file's order, the
        order the interpreter runs them."""
        from deploykit.graph import DTYPE_BYTES, LiveTensor, MemoryGraph

        from .tflite_graph import read_tflite

        g = read_tflite(path)
        size = lambda t: int(math.prod(t.shape) * DTYPE_BYTES.get(t.dtype, 4))  # noqa: E731
        first: dict[int, int] = {i: 0 for i in g.inputs}
        last: dict[int, int] = {}
        for op in g.ops:
            for i in op.inputs:
                last[i] = op.index
            for i in op.outputs:
                first.setdefault(i, op.index)
        for i in g.outputs:
            last[i] = len(g.ops)
        weights = sum(size(t) for t in g.tensors if t.constant)
        live = [
            LiveTensor(g.t(i).name, size(g.t(i)), first[i], last.get(i, first[i])) for i in first if not g.t(i).constant
        ]
        return MemoryGraph(weights, live, len(g.ops), "tflite file")


register(Tflite())
