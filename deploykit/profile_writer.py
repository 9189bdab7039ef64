"""Write a device profile back to TOML (``deploykit estimate --fit --write DIR``).

The standard library reads TOML but does not write it; profiles are a fixed, shallow shape (top-level strings,
an array of target tables, each with one optional ``roofline`` sub-table holding scalars, string lists and
one inline table), so a small writer for exactly that shape is clearer than another dependency.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

from .devices import Profile, Target

_TARGET_FIELDS = [f.name for f in fields(Target) if f.name not in ("device", "roofline")]
_TARGET_DEFAULTS = {f.name: f.default for f in fields(Target)}


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a valid TOML basic string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} to a profile")


def profile_toml(profile: Profile, header: str = "") -> str:
    lines = [f"# {line}" for line in header.splitlines()]
    for key in ("name", "display", "reach", "match", "notes"):
        v = getattr(profile, key)
        if v:
            lines.append(f"{key} = {_value(v)}")
    for t in profile.targets:
        lines += ["", "[[targets]]"]
        for key in _TARGET_FIELDS:
            v = getattr(t, key)
            if v is None or v == _TARGET_DEFAULTS[key] and key not in ("backend", "precision"):
                continue
            lines.append(f"{key} = {_value(v)}")
        if t.roofline:
            lines.append("[targets.roofline]")
            lines += [f"{k} = {_value(v)}" for k, v in t.roofline.items()]
    return "\n".join(lines) + "\n"


def write_profile(profile: Profile, path: Path, header: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".toml.partial")
    tmp.write_text(profile_toml(profile, header))
    tmp.replace(path)
    return path
