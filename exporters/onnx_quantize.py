"""ONNX int8: the fp32 ONNX export quantized by ONNX Runtime's static post-training quantizer, in QDQ form. The
format plugin is ``onnx.py``.

What the file is: QuantizeLinear/DequantizeLinear pairs around the float ops (QDQ), activations uint8
(asymmetric, one scale per tensor), weights int8 (symmetric, one scale per output channel: the ``axis``
attribute of their DequantizeLinear), biases int32. Model input and output stay float32 NCHW, so callers feed
what they feed the fp32 file. ONNX Runtime's CPU provider fuses each pair into int8 kernels (QLinearConv, …);
ONNX Runtime's QNN execution provider (AI Hub's ONNX NPU targets) takes QDQ files and uint8 activations.

Why uint8 activations with int8 weights (U8S8): x86's VNNI dot product multiplies u8 by s8, and it is what
ONNX Runtime's own guidance names for x86 CPUs; int8 activations ran MobileNetV4-Conv-S 1.7x slower on this
host (docs/decisions.md). Asymmetric uint8 and int8 activations compute the same values (the zero point moves
by 128), so the choice costs no fidelity. ``reduce_range`` (7-bit weights, for x86 CPUs without VNNI) is off:
it costs accuracy everywhere, NPUs included; such a CPU's saturation would show in the verification below.

Calibration: MinMax over the inputs the pipeline hands over, the same ``calibration_inputs`` the TFLite and
ExecuTorch int8 files are calibrated on (``--calibration DIR``, or the synthetic set).

Verification (``exporters/pipeline.py``): the file runs with ONNX Runtime's fused int8 kernels and is compared
with the program it states, its own Q/DQ graph run literally in float (every scale and zero point is in the
file: :func:`qdq_program`, ONNX Runtime with graph optimizations off), and with float PyTorch. ONNX Runtime has
no second int8 kernel set for the same file, so the threshold calibrates, as ExecuTorch's does, on that program
with one-LSB rounding noise (:func:`with_rounding_noise`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from .quiet import quiet

SETTINGS = {
    "format": "QDQ",
    "tool": "onnxruntime.quantization.quantize_static",
    "activations": "uint8, asymmetric, per tensor",
    "weights": "int8, symmetric, per channel (DequantizeLinear axis = output channel)",
    "bias": "int32",
    "calibration_method": "MinMax",
    "reduce_range": False,
}


def quantize_qdq(proto, out: Path, calib, input_name: str) -> tuple:
    """Quantize the float model ``proto`` into ``out`` (QDQ), calibrated on ``calib`` (NCHW torch tensor, one
    sample per row). The float model goes to a temporary file first; ``out`` is written only by the quantizer
    (the pipeline's hidden partial path, removed by the pipeline if anything fails). Returns the quantized proto
    and the quantization facts for the manifest."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    from deploykit.errors import DeploykitError

    if calib is None or len(calib) == 0:
        raise DeploykitError("int8 ONNX export needs calibration inputs")

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.rows = iter([{input_name: calib[i : i + 1].numpy()} for i in range(len(calib))])

        def get_next(self):
            return next(self.rows, None)

    with tempfile.TemporaryDirectory(prefix="deploykit-onnx-int8-") as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        onnx.save(proto, str(fp32))
        try:
            with quiet():  # the quantizer logs "consider pre-processing" on the root logger: not the user's business
                quantize_static(
                    str(fp32),
                    str(out),
                    Reader(),
                    quant_format=QuantFormat.QDQ,
                    per_channel=True,
                    reduce_range=False,
                    activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax,
                    extra_options={"WeightSymmetric": True, "ActivationSymmetric": False},
                )
        except Exception as e:  # a model the quantizer cannot handle: one line, exit 1 (the pipeline removes out)
            from .pipeline import ConversionError

            detail = " ".join(str(e).split())[:300]
            raise ConversionError(
                f"ONNX Runtime's static quantizer cannot quantize this model: {type(e).__name__}: {detail}",
                hint="export it as --precision fp32 or fp16, or as int8 in another format (--to tflite)",
            ) from None
    qproto = onnx.load(str(out))
    onnx.checker.check_model(qproto)
    return qproto, {**SETTINGS, "calibration_samples": len(calib)}


def per_channel_weights(proto) -> int:
    """How many DequantizeLinear nodes dequantize a constant with one scale per channel (an ``axis`` and a
    scale vector): the weights the quantizer made per-channel."""
    consts = {t.name: list(t.dims) for t in proto.graph.initializer}
    return sum(
        1
        for n in proto.graph.node
        if n.op_type == "DequantizeLinear"
        and n.input[0] in consts
        and len(consts.get(n.input[1], [])) == 1
        and consts[n.input[1]][0] > 1
    )


def _session(model_bytes: bytes):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # no Q/DQ fusion: literal QDQ
    so.intra_op_num_threads = 2
    so.inter_op_num_threads = 1
    return ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])


def qdq_program(proto, input_name: str):
    """The file's own Q/DQ program, run op by op in float (DequantizeLinear → float op → QuantizeLinear, as the
    ONNX specification defines each): ``program(x) -> logits`` on NCHW torch tensors."""
    import torch

    sess = _session(proto.SerializeToString())
    return lambda x: torch.from_numpy(sess.run(None, {input_name: x.numpy()})[0])


def with_rounding_noise(proto, input_name: str, share: float):
    """:func:`qdq_program` in which a ``share`` of every activation QuantizeLinear's values move by one LSB (up
    or down, seeded; weights untouched): what two correct int8 implementations may differ by at each
    requantization. The ONNX counterpart of ``executorch_convert.with_rounding_noise``."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.ModelProto()
    model.CopyFrom(proto)
    g = model.graph
    inits = {t.name: t for t in g.initializer}

    def const(name, value):
        g.initializer.append(numpy_helper.from_array(np.array(value, np.float32), name))
        return name

    half, whole = const("_noise_half", share / 2), const("_noise_share", share)
    nodes, renamed = [], {}
    for i, n in enumerate(g.node):
        nodes.append(n)
        if n.op_type != "QuantizeLinear":
            continue
        dtype = inits[n.input[2]].data_type if len(n.input) > 2 and n.input[2] in inits else TensorProto.UINT8
        lo, hi = (0, 255) if dtype == TensorProto.UINT8 else (-128, 127)
        p, y = f"_noise{i}_", n.output[0]
        nodes += [
            helper.make_node("Cast", [y], [p + "f"], to=TensorProto.FLOAT),
            helper.make_node("RandomUniformLike", [p + "f"], [p + "u"], dtype=TensorProto.FLOAT, seed=float(i)),
            helper.make_node("Less", [p + "u", half], [p + "up_b"]),
            helper.make_node("Less", [p + "u", whole], [p + "any_b"]),
            helper.make_node("Xor", [p + "up_b", p + "any_b"], [p + "down_b"]),  # share/2 <= u < share
            helper.make_node("Cast", [p + "up_b"], [p + "up"], to=TensorProto.FLOAT),
            helper.make_node("Cast", [p + "down_b"], [p + "down"], to=TensorProto.FLOAT),
            helper.make_node("Add", [p + "f", p + "up"], [p + "s"]),
            helper.make_node("Sub", [p + "s", p + "down"], [p + "t"]),
            helper.make_node("Clip", [p + "t", const(p + "lo", lo), const(p + "hi", hi)], [p + "c"]),
            helper.make_node("Cast", [p + "c"], [p + "q"], to=dtype),
        ]
        renamed[y] = p + "q"
    for n in nodes:
        if not n.output or not n.output[0].startswith("_noise"):
            for k, name in enumerate(n.input):
                n.input[k] = renamed.get(name, name)
    del g.node[:]
    g.node.extend(nodes)
    return qdq_program(model, input_name)
