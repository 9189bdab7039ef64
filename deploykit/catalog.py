"""The zoo catalogue behind ``deploykit models``: counted params/MACs per model plus published facts.

Counting all models takes several seconds, so results are cached in the user cache folder, keyed by a hash
of the zoo and analysis source: any change to an architecture invalidates the cache by itself.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

from .analysis import analyze_spec
from .zoo import list_models
from .zoo.registry import ModelSpec


def cache_dir() -> Path:
    """``$DEPLOYKIT_CACHE``, else ``$XDG_CACHE_HOME/deploykit``, else ``~/.cache/deploykit``."""
    if os.environ.get("DEPLOYKIT_CACHE"):
        return Path(os.environ["DEPLOYKIT_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "deploykit"


def _source_hash() -> str:
    here = Path(__file__).parent
    h = hashlib.sha256()
    for f in sorted([*here.joinpath("zoo").glob("*.py"), *here.joinpath("zoo").glob("*.csv"), here / "analysis.py"]):
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _row(spec: ModelSpec) -> dict:
    a = analyze_spec(spec.name)
    pub = spec.published
    return {
        "name": spec.name,
        "family": spec.family,
        "resolution": spec.resolution,
        "params_m": round(a.params / 1e6, 3),
        "macs_m": round(a.macs / 1e6, 1),
        "top1": pub.top1 if pub else None,
        "top1_source": pub.top1_source if pub else None,
        "timm_name": spec.timm_name,
        "aliases": list(spec.aliases),
    }


def model_rows(family: str | None = None, on_count: Callable[[str], None] | None = None) -> list[dict]:
    """One row per zoo model (counted at its default resolution, deploy form), cached across runs."""
    path = cache_dir() / f"catalog-{_source_hash()}.json"
    try:
        cached = json.loads(path.read_text())
    except (OSError, ValueError):
        cached = {}
    rows, dirty = [], False
    for spec in list_models(family):
        if spec.name not in cached:
            if on_count:
                on_count(spec.name)
            cached[spec.name] = _row(spec)
            dirty = True
        rows.append(cached[spec.name])
    if dirty:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(cached))
            tmp.replace(path)  # atomic: a concurrent reader sees the old file or the new, never half
        except OSError:
            pass  # a read-only home only costs the recount next time
    return rows
