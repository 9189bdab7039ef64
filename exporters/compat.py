"""Will a target run this file, all of it? Runs a format's compatibility rule set on a file.

Rule sets are named by the backend that would run the file (``edgetpu``, ``litert-gpu``, ``coreml-ane``, …) and
live with their format (``tflite_compat.py``, ``coreml_compat.py``); the format plugin says which apply, and
which older names still mean them (``gpu-delegate``, ``ane``).

A finding is a dict: ``{"op": index or None, "name": op name, "reason": text, "severity": "error"|"warning"}``.
Errors mean the op (and, on the Edge TPU, everything after it) will not run on the target.
"""

from __future__ import annotations

from pathlib import Path

from deploykit.errors import DeploykitError


def finding(op, name, reason, severity="error") -> dict:
    return {"op": op, "name": name, "reason": reason, "severity": severity}


def rule_names() -> list[str]:
    """Every rule set some format offers, at any precision."""
    from .base import formats

    precisions = {p for f in formats() for p in f.precisions}
    return sorted({r for f in formats() for p in precisions for r in f.compat_rules(p)})


def check(path: str | Path, target: str) -> dict:
    """Check an artifact file against a rule set; returns ``{"target", "file", "ops", "findings", "summary"}``."""
    from .base import for_path, formats

    path = Path(path)
    target = next((f.rule_aliases[target] for f in formats() if target in f.rule_aliases), target)
    known = rule_names()
    if target not in known:
        raise DeploykitError(f"unknown check target {target!r}", hint=f"use one of {', '.join(known)}")
    if not path.exists():
        raise DeploykitError(f"file not found: {path}")
    fmt = for_path(path)
    if not any(target in fmt.compat_rules(p) for p in fmt.precisions):
        owners = [f.suffix for f in formats() if f.suffix and any(target in f.compat_rules(p) for p in f.precisions)]
        raise DeploykitError(f"--target {target} checks {', '.join(owners)} files, not {path.name}")
    result = {"target": target, "file": str(path), **fmt.check(path, target)}
    errors = [f for f in result["findings"] if f["severity"] == "error"]
    result["summary"] = {
        "errors": len(errors),
        "warnings": len(result["findings"]) - len(errors),
        "ok": not errors,
        "first_unsupported_op": min((f["op"] for f in errors if f["op"] is not None), default=None),
    }
    return result


def compatibility(fmt, path: Path, precision: str) -> dict:
    """Every rule set that applies to a freshly exported file, for its manifest (findings capped at 50)."""
    out = {}
    for rule in fmt.compat_rules(precision):
        r = check(path, rule)
        out[rule] = {"summary": r["summary"], "findings": r["findings"][:50], "findings_total": len(r["findings"])}
    return out
