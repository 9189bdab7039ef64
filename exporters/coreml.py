"""PyTorch → Core ML ML Program via coremltools, from ``torch.export``.

Precision ``fp16`` is the MobileNetV4 paper's Neural Engine setup (FP16 compute; add ``fp16_input`` for FP16
model input too, which needs iOS 16+). ``fp32`` keeps FP32 compute (the Neural Engine will not run it).
``int8`` compresses weights to int8 (linear symmetric, per channel) with FP16 compute.

coremltools converts on Linux but can only *predict* on macOS. So on Linux the saved package is checked
structurally (:func:`inspect_package`): it must load as an ML Program whose inputs and outputs have the expected
names, shapes and dtypes, with the expected compute precision visible in its ops. Numerics are compared only
on macOS (``deploykit.exporters.fidelity``).
"""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

import torch

from deploykit.errors import DeploykitError


def export_coreml(model: torch.nn.Module, example: torch.Tensor, out: Path, precision: str, fp16_input: bool) -> dict:
    import coremltools as ct
    from coremltools.converters.mil.mil import types

    from .tflite import _quiet

    with warnings.catch_warnings(), _quiet():  # coremltools prints tqdm bars; deploykit shows its own progress
        warnings.simplefilter("ignore")
        program = torch.export.export(model.eval(), (example,)).run_decompositions({})
        mlmodel = ct.convert(
            program,
            inputs=[ct.TensorType(name="input", shape=tuple(example.shape), dtype=types.fp16 if fp16_input else None)],
            outputs=[ct.TensorType(name="logits")],
            convert_to="mlprogram",
            compute_precision=ct.precision.FLOAT32 if precision == "fp32" else ct.precision.FLOAT16,
            minimum_deployment_target=ct.target.iOS16 if fp16_input else ct.target.iOS15,
        )
        if precision == "int8":
            config = ct.optimize.coreml.OptimizationConfig(
                global_config=ct.optimize.coreml.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8")
            )
            mlmodel = ct.optimize.coreml.linear_quantize_weights(mlmodel, config)
    mlmodel.save(str(out))
    return {"input_layout": "NCHW", "io_dtype": "float16" if fp16_input else "float32"}


def inspect_package(path: Path) -> dict:
    """Structure of a saved .mlpackage, read without running it: spec type, I/O, op histogram, dtypes used."""
    import coremltools as ct

    try:
        spec = ct.utils.load_spec(str(path))
    except Exception as e:
        raise DeploykitError(f"{path} is not a readable Core ML package ({type(e).__name__}: {e})") from None
    kind = spec.WhichOneof("Type")
    ios = {
        "inputs": [_feature(f) for f in spec.description.input],
        "outputs": [_feature(f) for f in spec.description.output],
    }
    ops: Counter = Counter()
    dtypes: Counter = Counter()
    if kind == "mlProgram":
        for fn in spec.mlProgram.functions.values():
            for block in fn.block_specializations.values():
                for op in block.operations:
                    ops[op.type] += 1
                    for o in op.outputs:
                        t = o.type.tensorType
                        if t.dataType:
                            dtypes[_MIL_DTYPES.get(t.dataType, str(t.dataType))] += 1
    return {
        "spec_version": spec.specificationVersion,
        "type": kind,
        **ios,
        "ops": dict(ops.most_common()),
        "tensor_dtypes": dict(dtypes),
    }


# MIL proto DataType enum values used by ML Programs.
_MIL_DTYPES = {10: "float16", 11: "float32", 12: "float64", 21: "int8", 22: "int16", 23: "int32", 24: "int64"}
_ARRAY_DTYPES = {65552: "float16", 65568: "float32", 65600: "float64", 131104: "int32"}


def _feature(f) -> dict:
    t = f.type.multiArrayType
    return {"name": f.name, "shape": [int(d) for d in t.shape], "dtype": _ARRAY_DTYPES.get(t.dataType, str(t.dataType))}
