"""Write a device profile back to TOML (``deploykit estimate --fit --write DIR``), with tomli-w.

Only the fields a profile file holds are written (the keys of :data:`deploykit.devices.SCHEMA`, so the reader
and the writer cannot drift apart), and only where they differ from the default: what the backend plugin fills
in at load time (format, processor, export precision, reach) is never written.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import tomli_w

from .artifact import atomic_write_text
from .devices import SCHEMA, Profile
from .targets import Target

_DEFAULTS = {f.name: f.default for f in fields(Target)}


def profile_toml(profile: Profile, header: str = "") -> str:
    doc = {k: getattr(profile, k) for k in SCHEMA["profile"] if k != "targets" and getattr(profile, k)}
    doc["targets"] = [target_table(t, profile) for t in profile.targets]
    comments = "".join(f"# {line}\n" for line in header.splitlines())
    return comments + tomli_w.dumps(doc)


def target_table(t: Target, profile: Profile) -> dict:
    """One ``[[targets]]`` table: the fields that differ from the default, and the target's reach only where
    it is not the profile's (the loader gives every target its profile's reach)."""
    return {
        k: getattr(t, k)
        for k in SCHEMA["target"]
        if getattr(t, k) is not None
        and (k in ("backend", "precision") or getattr(t, k) != _DEFAULTS[k])
        and not (k == "reach" and t.reach == profile.reach)
    }


def write_profile(profile: Profile, path: Path, header: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(path, profile_toml(profile, header))
