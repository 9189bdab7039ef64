"""The Core ML format: PyTorch → Core ML ML Program (``.mlpackage``) via coremltools, from ``torch.export``.

Precision ``fp16`` is the MobileNetV4 paper's Neural Engine setup (FP16 compute; add ``fp16_input`` for FP16
model input too, which needs iOS 16+). ``fp32`` keeps FP32 compute (the Neural Engine will not run it).
``int8`` compresses weights to int8 (linear symmetric, per channel) with FP16 compute.

coremltools converts on Linux but can only *predict* on macOS. So on Linux the saved package is checked
structurally (:func:`inspect_package`): it must load as an ML Program whose inputs and outputs have the expected
names, shapes and dtypes, with the expected compute precision visible in its ops. Numerics are compared only
on macOS, through :class:`CoremlSession` (the same session ``eval`` and the Mac's Core ML backend use).
"""

from __future__ import annotations

import platform
import warnings
from collections import Counter
from pathlib import Path

from deploykit.artifact import Manifest, TensorSpec
from deploykit.errors import DeploykitError

from .base import Described, Format, HostSession, register
from .quiet import quiet


def export_coreml(model, example, out: Path, precision: str, fp16_input: bool) -> dict:
    import coremltools as ct
    import torch
    from coremltools.converters.mil.mil import types

    with warnings.catch_warnings(), quiet():  # coremltools prints tqdm bars; deploykit shows its own progress
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


class CoremlSession(HostSession):
    """Core ML predictions on this Mac with the compute units asked for (default ALL); macOS only."""

    def __init__(self, path: Path, manifest: Manifest, compute_units: str = "ALL"):
        import coremltools as ct

        self.model = ct.models.MLModel(str(path), compute_units=getattr(ct.ComputeUnit, compute_units))
        self.inputs, self.shapes = manifest.inputs, {t.name: list(t.shape) for t in manifest.inputs}
        self.inp, self.out = manifest.inputs[0], manifest.outputs[0]
        self.env = {
            "runtime": "coremltools " + ct.__version__,
            "os": "macOS " + platform.mac_ver()[0],
            "machine": platform.machine(),
            "compute_units": compute_units,
        }
        self.delegate = {}

    def input_shape_nchw(self) -> list[int]:
        return list(self.inp.shape)

    def feed(self, x_nchw):
        self._x = {self.inp.name: x_nchw.astype(self.inp.dtype)}

    def invoke(self):
        self._y = self.model.predict(self._x)[self.out.name]

    def output(self):
        import numpy as np

        return np.asarray(self._y, dtype=np.float32).reshape(1, -1)


class Coreml(Format):
    name = "coreml"
    suffix = ".mlpackage"
    is_folder = True
    precisions = ("fp16", "fp32", "int8")  # int8 = int8 weight compression with fp16 compute
    default_precision = "fp16"
    options = ("fp16_input",)
    description = "Core ML ML Program; converts anywhere, predicts on macOS only"
    no_op_profiler = "Core ML's Python API gives no per-op times (Xcode's Core ML performance report does)"
    tools = ("coremltools",)
    rule_aliases = {"ane": "coreml-ane"}  # the names these rule sets had before they were named by backend

    def convert(self, model, example, out: Path, precision: str, calib, options: dict) -> dict:
        return export_coreml(model, example, out, precision, bool(options.get("fp16_input")))

    def describe(self, path: Path, precision: str, info: dict) -> Described:
        s = inspect_package(path)
        return Described(
            inputs=[TensorSpec(i["name"], i["shape"], i["dtype"], "NCHW") for i in s["inputs"]],
            outputs=[TensorSpec(o["name"], o["shape"], o["dtype"], "NC") for o in s["outputs"]],
            ops=s["ops"],
            extra={"structure": s},
        )

    def compat_rules(self, precision: str) -> list[str]:
        return ["coreml-ane"]

    def check(self, path: Path, rule: str) -> dict:
        from .coreml_compat import check_file

        return check_file(inspect_package(path))

    def cannot_run_here(self) -> str | None:
        if platform.system() != "Darwin":
            return f"Core ML predicts only on macOS (this is {platform.system()})"
        return None

    def structure_ok(self, manifest: Manifest) -> bool:
        """Where it cannot run: does the saved package look like what was asked for?"""
        s = manifest.options.get("structure", {})
        return s.get("type") == "mlProgram" and bool(s.get("inputs")) and bool(s.get("outputs"))

    def open_session(self, path, manifest, compute_units: str = "ALL", **_) -> CoremlSession:
        reason = self.cannot_run_here()
        if reason:
            raise DeploykitError(reason, hint="evaluate or benchmark the .onnx or .tflite export here")
        return CoremlSession(path, manifest, compute_units)


register(Coreml())
