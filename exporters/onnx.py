"""The ONNX format: PyTorch → ONNX through the torch.export-based exporter (onnxscript), cleaned with onnxslim,
fp32, fp16 or int8 (QDQ, ``onnx_quantize.py``); read back and run with ONNX Runtime.

Cleanup is measured, not assumed: the node count before and after onnxslim goes into the manifest, and the
slimmed graph replaces the raw one only when it is checker-valid and not larger.
fp16 converts weights and compute to float16 with float32 model inputs/outputs (``keep_io_types``), so callers
feed the same tensors as for fp32. int8 quantizes the fp32 graph with ONNX Runtime's static quantizer (QDQ,
per-channel int8 weights, uint8 activations), calibrated on the same inputs as the other int8 files; model inputs
and outputs stay float32.
"""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from pathlib import Path

from deploykit.artifact import Manifest, TensorSpec
from deploykit.errors import DeploykitError, FileError
from deploykit.graph import STEM_CHANNELS, Layer

from .base import Described, Format, HostSession, register, resolve_shapes, user_manifest

OPSET = 18
# ONNX op → the estimator's op kind (views are skipped: they move no data).
_ONNX_KINDS = {
    "Conv": "conv",
    "Gemm": "matmul",
    "MatMul": "matmul",
    "Softmax": "softmax",
    "LayerNormalization": "layer_norm",
    "Add": "add",
    "Sub": "add",
    "Mul": "mul",
    "Div": "mul",
    "GlobalAveragePool": "pool",
    "ReduceMean": "pool",
    "AveragePool": "pool",
    "Concat": "concat",
    "Pad": "pad",
    "Transpose": "layout",
    "Reshape": "view",
    "Flatten": "view",
    "Squeeze": "view",
    "Unsqueeze": "view",
    # QDQ (int8) files: the pairs mark the int8 edges of the ops between them, which runtimes fuse into int8 kernels
    "QuantizeLinear": "view",
    "DequantizeLinear": "view",
    "Relu": "act",
    "Clip": "act",
    "HardSwish": "act",
    "HardSigmoid": "act",
    "Sigmoid": "act",
    "Tanh": "act",
    "Gelu": "act",
    "Erf": "act",
}
_ORT_DTYPES = {
    f"tensor({ort})": np
    for ort, np in [("float", "float32"), ("float16", "float16"), ("double", "float64"), ("int8", "int8")]
    + [("uint8", "uint8"), ("int16", "int16"), ("int32", "int32"), ("int64", "int64"), ("bool", "bool")]
}


def _dims(shape) -> list:
    """onnxruntime's dims: ints, symbol strings, or None (unnamed): dynamic ones kept as strings ("?")."""
    return [d if isinstance(d, int) and d > 0 else (d if isinstance(d, str) and d else "?") for d in shape]


def io_specs(sess) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """Every input and output as the session declares it (dtype, shape with its symbols)."""
    inputs = [
        TensorSpec(i.name, _dims(i.shape), _ORT_DTYPES.get(i.type, i.type), "NCHW" if len(i.shape) == 4 else "ND")
        for i in sess.get_inputs()
    ]
    outputs = [
        TensorSpec(o.name, _dims(o.shape or []), _ORT_DTYPES.get(o.type, o.type), "NC") for o in sess.get_outputs()
    ]
    return inputs, outputs


class OnnxSession(HostSession):
    """An ONNX Runtime session: ``threads`` intra-op threads (one inter-op), graph optimizations on, and the
    execution providers asked for (CPU by default). Every declared input is fed, at its dtype and shape."""

    def __init__(self, path: Path, manifest: Manifest, threads=None, providers=None, input_shapes=None, profile=False):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.log_severity_level = 3
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
        self._profile_dir = None
        if profile:  # the trace names the optimized graph's nodes; that graph, saved, names their parameters
            import tempfile

            self._profile_dir = Path(tempfile.mkdtemp(prefix="deploykit-ort-profile-"))
            so.enable_profiling = True
            so.profile_file_prefix = str(self._profile_dir / "trace")
            so.optimized_model_filepath = str(self._profile_dir / "optimized.onnx")
        try:
            self.sess = ort.InferenceSession(str(path), so, providers=list(providers or ["CPUExecutionProvider"]))
        except Exception as e:
            raise FileError(f"{path} is not a readable ONNX model: {str(e).splitlines()[0][:200]}") from None
        self.inputs = io_specs(self.sess)[0]
        if manifest is not None and len(manifest.inputs) == len(self.inputs):
            self.inputs = manifest.inputs  # deploykit's own: the same names, with the layout it exported
        self.shapes, self.notes = resolve_shapes(self.inputs, input_shapes)
        self.inp = self.inputs[0]
        self.env = {
            "runtime": "onnxruntime " + ort.__version__,
            "threads": threads,
            "graph_optimization_level": "ORT_ENABLE_ALL",
            "providers": self.sess.get_providers(),
        }
        self.delegate = {"delegate": self.sess.get_providers()}

    def input_shape_nchw(self) -> list[int]:
        return list(self.shapes[self.inp.name])

    def feed(self, x_nchw):
        self._x = {self.inp.name: x_nchw.astype(self.inp.dtype)}

    def feed_inputs(self, arrays: dict):
        self._x = arrays

    def invoke(self):
        try:
            self._y = self.sess.run(None, self._x)[0]
        except Exception as e:  # a runtime's complaint about the inputs is said in one line
            raise DeploykitError(f"ONNX Runtime could not run it: {' '.join(str(e).split())[:300]}") from None

    def output(self):
        import numpy as np

        return self._y.astype(np.float32).reshape(len(self._y), -1)

    def op_profile(self, skip: int = 0):
        """The kernels ONNX Runtime's profiler timed, their nodes' module paths read from the optimized graph."""
        import shutil

        from deploykit.profiling.ort_trace import graph_facts, read_trace

        if self._profile_dir is None:
            return super().op_profile(skip)
        try:
            trace = Path(self.sess.end_profiling())
            graph = self._profile_dir / "optimized.onnx"
            facts = graph_facts(graph) if graph.exists() else {}
            return read_trace(trace.read_text(), skip, facts, runtime=self.env["runtime"])
        finally:
            shutil.rmtree(self._profile_dir, ignore_errors=True)  # the trace too: profile_file_prefix is in it


class Onnx(Format):
    name = "onnx"
    suffix = ".onnx"
    precisions = ("fp32", "fp16", "int8")
    description = "ONNX (opset 18; int8 as QDQ), run with ONNX Runtime"
    op_profiler = "ONNX Runtime's profiler (SessionOptions.enable_profiling, a Chrome trace)"
    tools = ("onnx", "onnxruntime", "onnxslim", "onnxscript")

    def convert(self, model, example, out: Path, precision: str, calib, options: dict) -> dict:
        import onnx
        import onnxslim
        import torch

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
        extra: dict = {}
        if precision == "int8":
            from . import onnx_quantize as q
            from .fidelity import ROUNDING_NOISE_SHARE

            name = proto.graph.input[0].name
            proto, quantization = q.quantize_qdq(proto, out, calib, name)
            extra = {
                "quantization": {**quantization, "per_channel_weights": q.per_channel_weights(proto)},
                # the program the file states (its Q/DQ graph run in float), and the same with rounding noise
                "_quantized_reference": q.qdq_program(proto, name),
                "_rounding_reference": q.with_rounding_noise(proto, name, ROUNDING_NOISE_SHARE),
                "_reference_name": "onnx-qdq-simulated",
            }
        else:
            onnx.save(proto, str(out))
        return {
            "ops": dict(Counter(n.op_type for n in proto.graph.node).most_common()),
            "opset": OPSET,
            "cleanup": {"tool": "onnxslim", "nodes_before": nodes_raw, "nodes_after": nodes_slim},
            "input_layout": "NCHW",
            "io_dtype": "float32",
            **extra,
        }

    def describe(self, path: Path, precision: str, info: dict) -> Described:
        res = info["resolution"]
        return Described(
            inputs=[TensorSpec("input", [1, 3, res, res], "float32", "NCHW")],
            outputs=[TensorSpec("logits", [1, -1], "float32", "NC")],
            ops=info["ops"],
        )

    def manifest_from_file(self, path: Path) -> Manifest:
        """What the file declares: every input and output, dynamic dimensions kept as symbols, and its precision
        from its graph (quantized ops → int8, QDQ with dynamic quantization → int8-dynamic, fp16 weights → fp16)."""
        import onnx
        import onnxruntime as ort

        try:
            sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            graph = onnx.load(str(path), load_external_data=False).graph
        except Exception as e:
            raise FileError(f"{path} is not a readable ONNX model: {str(e).splitlines()[0][:200]}") from None
        inputs, outputs = io_specs(sess)
        ops = {n.op_type for n in graph.node}
        if "DynamicQuantizeLinear" in ops:
            precision = "int8-dynamic"
        elif ops & {"QuantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger"}:
            precision = "int8"
        elif any(t.data_type == onnx.TensorProto.FLOAT16 for t in graph.initializer):
            precision = "fp16"
        else:
            precision = "fp32"
        first = inputs[0].shape
        image = len(inputs) == 1 and len(first) == 4 and isinstance(first[2], int) and first[2] == first[3]
        return user_manifest(path, self.name, precision, inputs, outputs, first[2] if image else 0)

    def graph_layers(self, path: Path) -> list[Layer]:
        """The file's own graph as estimator layers: shapes from ONNX shape inference, MACs from Conv/Gemm/MatMul
        (conv: output elements x input channels per group x kernel area; matmul: output elements x K)."""
        import math

        import onnx

        try:
            model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
        except Exception as e:
            raise FileError(f"{path.name}: ONNX cannot read its graph: {' '.join(str(e).split())[:200]}") from None
        g = model.graph
        consts = {t.name: list(t.dims) for t in g.initializer}
        for node in g.node:  # a QDQ file's weights reach their op through a DequantizeLinear: still weights
            if node.op_type == "DequantizeLinear" and node.input[0] in consts:
                consts[node.output[0]] = consts[node.input[0]]
        shapes = dict(consts)
        for vi in [*g.input, *g.value_info, *g.output]:
            dims = [d.dim_value if d.HasField("dim_value") else -1 for d in vi.type.tensor_type.shape.dim]
            shapes[vi.name] = dims
        dynamic = [i.name for i in g.input if i.name not in consts and any(d < 1 for d in shapes.get(i.name, [-1]))]
        if dynamic:
            raise DeploykitError(
                f"{path.name} has dynamic input dimensions ({', '.join(dynamic)}): the estimator needs fixed shapes",
                hint="export the model with a fixed input size",
            )
        numel = lambda name: math.prod(shapes.get(name) or [0]) if name else 0  # noqa: E731
        layers = []
        for i, node in enumerate(g.node):
            kind = _ONNX_KINDS.get(node.op_type, "other")
            if kind == "view":
                continue
            out = numel(node.output[0]) if node.output else 0
            weights = [x for x in node.input if x in consts]
            acts = [x for x in node.input if x and x not in consts]
            macs = 0
            if kind == "conv" and len(node.input) > 1 and node.input[1] in shapes:
                w = shapes[node.input[1]]  # [O, I/groups, kh, kw]
                groups = next((a.i for a in node.attribute if a.name == "group"), 1)
                macs = out * math.prod(w[1:])
                if groups > 1 and w[1] == 1:
                    kind = "dwconv"
                elif w[2:] == [1, 1]:
                    kind = "pwconv"
                elif w[1] * groups <= STEM_CHANNELS:
                    kind = "stem"
            elif kind == "matmul" and len(node.input) > 1:
                b = shapes.get(node.input[1]) or [0]
                transposed = next((a.i for a in node.attribute if a.name == "transB"), 0)
                macs = out * (b[-1] if transposed else b[-2] if len(b) > 1 else b[0])
                if node.input[1] not in consts:
                    kind = "attn_matmul"
            layers.append(
                Layer(f"{i}:{node.op_type}", kind, int(macs), sum(map(numel, weights)), sum(map(numel, acts)), out)
            )
        return layers

    def open_session(
        self, path, manifest, threads=None, providers=None, input_shapes=None, profile=False, **_
    ) -> OnnxSession:
        return OnnxSession(path, manifest, threads, providers, input_shapes, profile)

    def batched(self, path: Path, manifest: Manifest, batch: int):
        """A file with a dynamic batch dimension runs as it is; a zoo model's static batch-1 file (the exporter's
        reshapes bake the batch in) is exported again at ``batch`` beside it, unverified (its batch-1 file was)."""
        from dataclasses import replace

        import torch

        from deploykit.artifact import file_sha256, path_size

        from .base import Batched, with_batch
        from .pipeline import ExportRequest, build

        lead = manifest.inputs[0].shape[0] if manifest.inputs and manifest.inputs[0].shape else 1
        if not (isinstance(lead, int) and lead > 0):
            m, shapes = with_batch(manifest, batch)
            return Batched(path, m, shapes, f"the file's dynamic batch dimension, fed {batch}")
        model = manifest.model
        if model.get("source") != "zoo":
            raise DeploykitError(
                f"{Path(path).name} has a static batch of {lead}: throughput at batch {batch} needs it exported with"
                " a dynamic batch dimension"
            )
        b = build(ExportRequest(model["name"], "onnx", manifest.precision, resolution=model["resolution"],
                                weights=model.get("weights"), out=Path(path).parent))  # fmt: skip
        out = Path(path).with_name(f"{Path(path).stem}-batch{batch}{Path(path).suffix}")
        example = torch.zeros(batch, *manifest.inputs[0].shape[1:])
        info = self.convert(b.model, example, out, manifest.precision, None, {})
        read = self.manifest_from_file(out)  # the I/O the file declares, batch N
        inputs = [replace(t, layout=o.layout) for t, o in zip(read.inputs, manifest.inputs)]
        m = replace(manifest, file=out.name, inputs=inputs, outputs=read.outputs, sha256=file_sha256(out),
                    size_bytes=path_size(out), ops=info["ops"], status="unverified", compatibility={},
                    fidelity={"verified": False, "reason": f"exported at batch {batch} for throughput; its batch-1"
                              f" file {Path(path).name} was verified"})  # fmt: skip
        shapes = {t.name: list(t.shape) for t in m.inputs}
        return Batched(out, m, shapes, f"exported again at batch {batch}")

    def memory_graph(self, path: Path):
        """Initializers (and Constant nodes) are the weights; every other value lives from the node that writes it
        to the last node that reads it, nodes in the file's (topological) order, which ONNX Runtime's sequential
        executor follows. Shapes from ONNX's shape inference; a value whose shape stays unknown counts 0 bytes."""
        import math

        import numpy as np
        import onnx
        from onnx import helper, shape_inference

        from deploykit.graph import LiveTensor, MemoryGraph

        model = shape_inference.infer_shapes(onnx.load(str(path)))
        g = model.graph

        def nbytes(elem_type: int, dims) -> int:
            return int(math.prod(dims) * np.dtype(helper.tensor_dtype_to_np_dtype(elem_type)).itemsize)

        weights = sum(nbytes(t.data_type, t.dims) for t in g.initializer)
        constants = {t.name for t in g.initializer}
        shapes = {}
        for v in [*g.input, *g.value_info, *g.output]:
            t = v.type.tensor_type
            dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
            shapes[v.name] = nbytes(t.elem_type, dims) if None not in dims else 0
        first = {v.name: 0 for v in g.input if v.name not in constants}
        last: dict[str, int] = {}
        for i, node in enumerate(g.node):
            if node.op_type == "Constant":
                weights += sum(nbytes(a.t.data_type, a.t.dims) for a in node.attribute if a.name == "value")
                constants.update(node.output)
                continue
            for name in node.input:
                if name and name not in constants:
                    last[name] = i
            for name in node.output:
                first.setdefault(name, i)
        for v in g.output:
            last[v.name] = len(g.node)
        live = [LiveTensor(n, shapes.get(n, 0), f, last.get(n, f)) for n, f in first.items()]
        return MemoryGraph(weights, live, len(g.node), "onnx file")


register(Onnx())
