"""Compatibility rules for Core ML packages: will the Neural Engine run all of it?

``coreml-ane`` (formerly ``ane``): known Neural Engine blockers: FP32 compute, flexible shapes, ops the ANE does
not run, and large reshapes/transposes (the ANE works on rank ≤ 4 tensors with a channel-first layout; above
that Core ML falls back to GPU/CPU).
"""

from __future__ import annotations

from .compat import finding

# Core ML ops the Neural Engine does not execute (Core ML then splits the graph onto GPU/CPU).
ANE_UNSUPPORTED_OPS = {"gather", "gather_nd", "scatter", "scatter_nd", "non_zero", "topk", "argsort", "cumsum"}
ANE_MAX_RANK = 4  # rank-5+ tensors (e.g. multi-head attention reshapes) fall off the Neural Engine


def check_ane(structure: dict) -> list[dict]:
    out = []
    if structure["type"] != "mlProgram":
        out.append(finding(None, "model", f"{structure['type']} model: export an ML Program for the Neural Engine"))
    dtypes = structure.get("tensor_dtypes", {})
    if dtypes.get("float32", 0) > dtypes.get("float16", 0):
        out.append(finding(None, "model", "FP32 compute precision: the Neural Engine runs FP16 only"))
    for io in structure["inputs"]:
        if any(d <= 0 for d in io["shape"]) or not io["shape"]:
            out.append(finding(None, io["name"], "flexible input shape: the Neural Engine needs static shapes"))
        if io["dtype"] == "float32":
            out.append(
                finding(None, io["name"], "FP32 model input adds a cast; FP16 input is the ANE setup", "warning")
            )
    for op, n in structure["ops"].items():
        if op in ANE_UNSUPPORTED_OPS:
            out.append(finding(None, op, f"{n}× {op}: not executed by the Neural Engine"))
    n_layout = sum(n for op, n in structure["ops"].items() if op in ("transpose", "reshape"))
    if n_layout > 20:
        out.append(
            finding(
                None, "reshape/transpose", f"{n_layout} reshapes/transposes: layout shuffles cost on the ANE", "warning"
            )
        )
    if structure.get("max_rank", 0) > ANE_MAX_RANK:
        out.append(finding(None, "model", f"rank-{structure['max_rank']} tensors: the ANE handles rank ≤ 4"))
    return out


def check_file(structure: dict) -> dict:
    """The ``coreml-ane`` rule set on a package's structure (:func:`deploykit.exporters.coreml.inspect_package`)."""
    return {"ops": sum(structure["ops"].values()), "findings": check_ane(structure)}
