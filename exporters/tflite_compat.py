"""Compatibility rules for .tflite files: will Coral's Edge TPU, or the TFLite GPU delegate, run all of it?

- ``edgetpu``: Coral's supported-op table with its documented limitations (coral.ai "TensorFlow models on the
  Edge TPU", compiler v16), plus deploykit's *EdgeTPU-ready* profile: int8/uint8 model input and output, no
  float tensor anywhere, no QUANTIZE/DEQUANTIZE between the first and last op, no TRANSPOSE, static shapes,
  batch 1. When ``edgetpu_compiler`` is on PATH it is also run and its per-op log parsed.
- ``litert-gpu`` (formerly ``gpu-delegate``): the TFLite GPU delegate's op list and per-op constraints
  (tensorflow/lite/tools/versioning/gpu_compatibility.cc), plus its 4-D tensor limit.

Rule sets are named by the backend that would run the file; :mod:`deploykit.exporters.compat` runs them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from .compat import finding
from .tflite_graph import FUSED_ACTIVATIONS, TfGraph

# Coral Edge TPU supported operations (op name → limitation text, checked below where statically checkable).
EDGETPU_OPS = {
    "ADD": "",
    "AVERAGE_POOL_2D": "no fused activation",
    "CONCATENATION": "no fused activation",
    "CONV_2D": "same dilation in x and y",
    "DEPTHWISE_CONV_2D": "same dilation in x and y",
    "EXPAND_DIMS": "",
    "FULLY_CONNECTED": "default weights format; one-dimensional output",
    "L2_NORMALIZATION": "",
    "LOGISTIC": "",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "unidirectional only",
    "LSTM": "unidirectional only",
    "MAXIMUM": "",
    "MAX_POOL_2D": "no fused activation",
    "MEAN": "no batch reduction; a channel reduction needs channels % 4 == 0",
    "MINIMUM": "",
    "MUL": "",
    "PACK": "no packing in batch dimension",
    "PAD": "no padding in batch dimension",
    "PRELU": "alpha one-dimensional",
    "QUANTIZE": "",
    "REDUCE_MAX": "not on the batch dimension",
    "REDUCE_MIN": "not on the batch dimension",
    "RELU": "",
    "RELU6": "",
    "RELU_N1_TO_1": "",
    "RESHAPE": "large reshapes may not map",
    "RESIZE_BILINEAR": "3-D input/output",
    "RESIZE_NEAREST_NEIGHBOR": "3-D input/output",
    "RSQRT": "",
    "SLICE": "",
    "SOFTMAX": "one-dimensional input, at most 16000 elements",
    "SPACE_TO_DEPTH": "",
    "SPLIT": "no split in batch dimension",
    "SQUEEZE": "",
    "STRIDED_SLICE": "",
    "SUB": "",
    "SUM": "no batch reduction; a channel reduction needs channels % 4 == 0",
    "SQUARED_DIFFERENCE": "",
    "TANH": "",
    "TRANSPOSE": "",
    "TRANSPOSE_CONV": "",
}

# TFLite GPU delegate: ops accepted by gpu_compatibility.cc (constraints for some are checked below).
GPU_OPS = set(
    """ADD ADD_N AVERAGE_POOL_2D BATCH_MATMUL CAST CONCATENATION CONV_2D CUMSUM DENSIFY DEPTHWISE_CONV_2D
    DEPTH_TO_SPACE DEQUANTIZE EMBEDDING_LOOKUP DYNAMIC_UPDATE_SLICE FULLY_CONNECTED GATHER HARD_SWISH LSTM
    MAX_POOL_2D MEAN MUL PACK ONE_HOT QUANTIZE RELU_N1_TO_1 PRELU RESHAPE SELECT SELECT_V2 SLICE SOFTMAX
    SPACE_TO_DEPTH SPLIT SPLIT_V STRIDED_SLICE TILE TRANSPOSE TRANSPOSE_CONV RESIZE_BILINEAR
    RESIZE_NEAREST_NEIGHBOR RELU RELU6 LEAKY_RELU REDUCE_MAX REDUCE_MIN REDUCE_PROD SUM PAD PADV2 MIRROR_PAD
    ABS CEIL COS ELU EXP FLOOR GELU LOG LOGISTIC NEG RSQRT SIGN SIN SQRT SQUARE TANH ATAN2 DIV EQUAL FLOOR_DIV
    FLOOR_MOD GREATER GREATER_EQUAL LOGICAL_AND LESS LESS_EQUAL MAXIMUM MINIMUM NOT_EQUAL POW
    SQUARED_DIFFERENCE SUB""".split()
)


def check_edgetpu(g: TfGraph) -> list[dict]:
    out = []
    if g.subgraphs != 1:
        out.append(finding(None, "model", f"{g.subgraphs} subgraphs; the Edge TPU compiler takes one"))
    for i in g.inputs + g.outputs:
        t = g.t(i)
        role = "input" if i in g.inputs else "output"
        if t.dtype not in ("INT8", "UINT8"):
            out.append(finding(None, role, f"model {role} {t.name!r} is {t.dtype}; the Edge TPU needs int8/uint8"))
        if any(d < 0 for d in t.signature):
            out.append(finding(None, role, f"model {role} {t.name!r} has a dynamic shape {t.signature}"))
        if t.shape and t.shape[0] != 1:
            out.append(finding(None, role, f"model {role} {t.name!r} has batch {t.shape[0]}; use batch 1"))
    last = len(g.ops) - 1
    for op in g.ops:
        name = op.name
        if name not in EDGETPU_OPS:
            out.append(
                finding(op.index, name, "not in the Edge TPU supported-op set: it and every later op run on the CPU")
            )
            continue
        if name == "TRANSPOSE":
            out.append(finding(op.index, name, "layout transpose inside the graph (export with NHWC input instead)"))
        if name == "QUANTIZE" and 0 < op.index < last:
            # Coral maps an int8→int8 requantize, but an EdgeTPU-ready graph has no Q/DQ between its ends.
            why = "float→int8 island: the producing op ran in float" if g.t(op.inputs[0]).is_float else "requantize"
            out.append(finding(op.index, name, f"QUANTIZE inside the graph ({why})"))
        floats = [g.t(i) for i in op.inputs + op.outputs if g.t(i).is_float]
        if floats:
            out.append(finding(op.index, name, f"float tensor {floats[0].name!r} ({floats[0].dtype})"))
        out += _edgetpu_constraints(g, op)
    for t in g.tensors:
        big = [d for d in t.shape[:-3] if d > 1]
        if big and not t.constant:
            out.append(finding(None, "tensor", f"{t.name!r} {t.shape}: only the 3 innermost dimensions may exceed 1"))
    return out


def _edgetpu_constraints(g: TfGraph, op) -> list[dict]:
    out, o, name = [], op.options, op.name
    act = FUSED_ACTIVATIONS.get(o.get("fusedActivationFunction", 0), "NONE")
    if name in ("AVERAGE_POOL_2D", "MAX_POOL_2D", "CONCATENATION") and act != "NONE":
        out.append(finding(op.index, name, f"fused activation {act} is not supported here"))
    if name in ("CONV_2D", "DEPTHWISE_CONV_2D") and o.get("dilationHFactor", 1) != o.get("dilationWFactor", 1):
        out.append(finding(op.index, name, "different dilation in x and y"))
    if name == "FULLY_CONNECTED":
        if o.get("weightsFormat", 0) != 0:
            out.append(finding(op.index, name, "non-default weights format"))
        if sum(d > 1 for d in g.t(op.outputs[0]).shape) > 1:
            out.append(finding(op.index, name, f"output {g.t(op.outputs[0]).shape} is not one-dimensional"))
    if name == "SOFTMAX":
        shape = g.t(op.inputs[0]).shape
        if sum(d > 1 for d in shape) > 1 or _numel(shape) > 16000:
            out.append(finding(op.index, name, f"input {shape}: needs a 1-D input of at most 16000 elements"))
    if name in ("MEAN", "SUM") and len(op.inputs) > 1:
        # the axes are a constant tensor whose values the graph reader does not decode; a reduction over the
        # batch dimension shows up as an output whose batch differs from the input's
        shape, out_shape = g.t(op.inputs[0]).shape, g.t(op.outputs[0]).shape
        if shape and out_shape and out_shape[0] != shape[0]:
            out.append(finding(op.index, name, f"reduces the batch dimension ({shape} → {out_shape})"))
    return out


def check_gpu(g: TfGraph) -> list[dict]:
    out = []
    for op in g.ops:
        if op.name not in GPU_OPS:
            out.append(finding(op.index, op.name, "not supported by the TFLite GPU delegate: runs on the CPU"))
            continue
        o = op.options
        if op.name == "SOFTMAX" and o.get("beta", 1.0) != 1.0:
            out.append(finding(op.index, op.name, "beta != 1"))
        if op.name in ("SLICE", "STRIDED_SLICE") and len(g.t(op.inputs[0]).shape) not in (3, 4):
            out.append(finding(op.index, op.name, "only 3-D or 4-D inputs"))
        if op.name == "STRIDED_SLICE" and (o.get("ellipsisMask") or o.get("newAxisMask") or o.get("shrinkAxisMask")):
            out.append(finding(op.index, op.name, "ellipsis/new-axis/shrink-axis masks"))
        if op.name == "FULLY_CONNECTED" and o.get("weightsFormat", 0) != 0:
            out.append(finding(op.index, op.name, "non-default weights format"))
        for i in op.inputs + op.outputs:
            t = g.t(i)
            if len(t.shape) > 4 and not t.constant:
                out.append(finding(op.index, op.name, f"{len(t.shape)}-D tensor {t.shape}: the delegate is 4-D"))
                break
    if any(g.t(i).dtype in ("INT8", "UINT8") for i in g.inputs):
        out.append(
            finding(None, "model", "int8 model: the GPU delegate dequantizes and computes in fp16/fp32", "warning")
        )
    return out


def run_edgetpu_compiler(path: Path) -> dict:
    """Run Coral's ``edgetpu_compiler`` when installed and parse its per-op table; never faked."""
    exe = shutil.which("edgetpu_compiler")
    if exe is None:
        return {"ran": False, "reason": "edgetpu_compiler not on PATH (static analysis only)"}
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run([exe, "-s", "-o", tmp, str(path)], capture_output=True, text=True, timeout=600)
    return {"ran": True, "returncode": proc.returncode, **parse_edgetpu_log(proc.stdout)}


_LOG_ROW = re.compile(r"^(\w+)\s+(\d+)\s+(.+?)\s*$")


def parse_edgetpu_log(text: str) -> dict:
    """Parse ``edgetpu_compiler -s`` output: version, mapped/CPU op counts and the per-op status table."""
    version = re.search(r"Edge TPU Compiler version\s+(\S+)", text)
    mapped = re.search(r"Number of operations that will run on Edge TPU:\s*(\d+)", text)
    cpu = re.search(r"Number of operations that will run on CPU:\s*(\d+)", text)
    rows, in_table = [], False
    for line in text.splitlines():
        if line.strip().startswith("Operator") and "Status" in line:
            in_table = True
            continue
        if in_table:
            m = _LOG_ROW.match(line.strip())
            if m and m.group(1).isupper():
                rows.append({"op": m.group(1), "count": int(m.group(2)), "status": m.group(3)})
            elif rows and not line.strip():
                in_table = False
    return {
        "version": version.group(1) if version else None,
        "ops_on_edgetpu": int(mapped.group(1)) if mapped else None,
        "ops_on_cpu": int(cpu.group(1)) if cpu else None,
        "ops": rows,
    }


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def check_file(path: Path, rule: str) -> dict:
    """One rule set (``edgetpu`` or ``litert-gpu``) on a .tflite file: op count, findings, compiler log."""
    from .tflite_graph import read_tflite

    graph = read_tflite(path)
    if rule == "litert-gpu":
        return {"ops": len(graph.ops), "findings": check_gpu(graph)}
    findings = check_edgetpu(graph)
    compiler = run_edgetpu_compiler(path)
    if compiler.get("ran"):
        findings += [
            finding(None, r["op"], f"edgetpu_compiler: {r['status']}")
            for r in compiler["ops"]
            if not r["status"].startswith("Mapped to Edge TPU")
        ]
    return {"ops": len(graph.ops), "findings": findings, "compiler": compiler}
