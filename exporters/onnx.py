"""The ONNX format: PyTorch → ONNX through the torch.export-based exporter (onnxscript), cleaned with onnxslim,
fp32 or fp16; read back and run with ONNX Runtime.

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

from deploykit.artifact import Manifest, TensorSpec
from deploykit.errors import DeploykitError

from .base import Described, Format, HostSession, register, user_manifest

OPSET = 18
_ORT_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(int8)": "int8"}
_ORT_DTYPES["tensor(uint8)"] = "uint8"


class OnnxSession(HostSession):
    """An ONNX Runtime session: ``threads`` intra-op threads (one inter-op), graph optimizations on, and the
    execution providers asked for (CPU by default)."""

    def __init__(self, path: Path, manifest: Manifest, threads: int | None = None, providers=None):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.log_severity_level = 3
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
        try:
            self.sess = ort.InferenceSession(str(path), so, providers=list(providers or ["CPUExecutionProvider"]))
        except Exception as e:
            raise DeploykitError(f"{path} is not a readable ONNX model: {str(e).splitlines()[0][:200]}") from None
        self.inp = manifest.inputs[0]
        self.env = {
            "runtime": "onnxruntime " + ort.__version__,
            "threads": threads,
            "graph_optimization_level": "ORT_ENABLE_ALL",
            "providers": self.sess.get_providers(),
        }
        self.delegate = {"delegate": self.sess.get_providers()}

    def input_shape_nchw(self) -> list[int]:
        return list(self.inp.shape)

    def feed(self, x_nchw):
        self._x = {self.inp.name: x_nchw.astype(self.inp.dtype)}

    def invoke(self):
        self._y = self.sess.run(None, self._x)[0]

    def output(self):
        import numpy as np

        return self._y.astype(np.float32).reshape(len(self._y), -1)


class Onnx(Format):
    name = "onnx"
    suffix = ".onnx"
    precisions = ("fp32", "fp16")
    description = "ONNX (opset 18), run with ONNX Runtime"
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
        onnx.save(proto, str(out))
        return {
            "ops": dict(Counter(n.op_type for n in proto.graph.node).most_common()),
            "opset": OPSET,
            "cleanup": {"tool": "onnxslim", "nodes_before": nodes_raw, "nodes_after": nodes_slim},
            "input_layout": "NCHW",
            "io_dtype": "float32",
        }

    def describe(self, path: Path, precision: str, info: dict) -> Described:
        res = info["resolution"]
        return Described(
            inputs=[TensorSpec("input", [1, 3, res, res], "float32", "NCHW")],
            outputs=[TensorSpec("logits", [1, -1], "float32", "NC")],
            ops=info["ops"],
        )

    def manifest_from_file(self, path: Path) -> Manifest:
        import onnxruntime as ort

        try:
            sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as e:
            raise DeploykitError(f"{path} is not a readable ONNX model: {str(e).splitlines()[0][:200]}") from None
        i = sess.get_inputs()[0]
        dtype = _ORT_DTYPES.get(i.type, "float32")
        inputs = [TensorSpec(i.name, [d if isinstance(d, int) else 1 for d in i.shape], dtype, "NCHW")]
        outputs = [
            TensorSpec(o.name, [d if isinstance(d, int) else 1 for d in o.shape], "float32", "NC")
            for o in sess.get_outputs()
        ]
        precision = "fp16" if dtype == "float16" else "fp32"
        return user_manifest(path, self.name, precision, inputs, outputs, inputs[0].shape[-1])

    def open_session(self, path, manifest, threads: int | None = None, providers=None, **_) -> OnnxSession:
        return OnnxSession(path, manifest, threads, providers)


register(Onnx())
