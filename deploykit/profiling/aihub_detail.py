"""Qualcomm AI Hub's per-layer profile: ``execution_detail`` of the dict ``ProfileJob.download_profile()``
returns (and of the JSON the web page offers for download).

Its keys, as the qai-hub 0.56 client builds them (``qai_hub/client.py``, ``_profile_pb_to_python_dict``): one
dict per layer with ``name``, ``type`` (the runtime's layer type), ``compute_unit`` (``CPU``, ``GPU`` or
``NPU``) and, where the service measured it, ``execution_time`` (µs) and ``execution_cycles``. The layers come in
execution order; ``execution_summary.estimated_inference_time`` (µs) is the whole inference. A layer without
``execution_time`` is kept, with no time: where it ran still says something.
"""

from __future__ import annotations

import json
import re

from .records import OpProfile, OpTime, ProfileError
from .tflite_csv import modules_in

SOURCE = "Qualcomm AI Hub profile (execution_detail)"
# layer types as AI Hub names them (LiteRT builtins CONV_2D, ONNX ops Conv, QNN ops Conv2d, DepthWiseConv2d),
# compared lower-case without separators
_KINDS = {
    "conv2d": "conv",
    "conv": "conv",
    "depthwiseconv2d": "dwconv",
    "fullyconnected": "matmul",
    "gemm": "matmul",
    "matmul": "matmul",
    "batchmatmul": "matmul",
    "add": "add",
    "elementwiseadd": "add",
    "mul": "mul",
    "elementwisemultiply": "mul",
    "mean": "pool",
    "reducemean": "pool",
    "poolavg2d": "pool",
    "averagepool2d": "pool",
    "globalaveragepool": "pool",
    "softmax": "softmax",
    "hardswish": "act",
    "relu": "act",
    "relu6": "act",
    "sigmoid": "act",
    "logistic": "act",
    "layernorm": "norm",
    "concat": "concat",
    "concatenation": "concat",
    "pad": "pad",
    "transpose": "layout",
    "quantize": "layout",
    "dequantize": "layout",
    "reshape": "view",
}


def read_profile(profile, asked_unit: str | None = None, runtime: str = "Qualcomm AI Hub") -> OpProfile:
    """The layers of a profile dict (or its JSON text). ``asked_unit``: the compute unit the job asked for
    (a layer elsewhere is a fallback)."""
    if isinstance(profile, (str, bytes)):
        try:
            profile = json.loads(profile)
        except ValueError as e:
            raise ProfileError(f"not an AI Hub profile: {str(e)[:120]}") from None
    detail = profile.get("execution_detail") if isinstance(profile, dict) else None
    if not isinstance(detail, list) or not all(isinstance(x, dict) and "name" in x for x in detail):
        raise ProfileError("not an AI Hub profile: no execution_detail list of layers with names")
    asked = (asked_unit or "").upper()
    ops = []
    for x in detail:
        unit = str(x.get("compute_unit", "?")).upper()
        t = x.get("execution_time")
        layer_type = str(x.get("type", "?"))
        key = re.sub(r"[^a-z0-9]", "", layer_type.lower())
        ops.append(OpTime(str(x["name"]), layer_type, _KINDS.get(key, "other"),
                          t / 1000 if isinstance(t, (int, float)) else None, ran_on=unit,
                          fallback=bool(asked) and unit != asked, modules=modules_in(str(x["name"])) or [str(x["name"])]))  # fmt: skip
    summary = profile.get("execution_summary") or {}
    total = summary.get("estimated_inference_time")
    notes = [] if any(o.ms is not None for o in ops) else ["AI Hub reported no per-layer times, only compute units"]
    runs = len(summary.get("all_inference_times") or [])
    return OpProfile(SOURCE, runtime, ops, runs, total / 1000 if isinstance(total, (int, float)) else None, notes)
