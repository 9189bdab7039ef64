"""The zoo catalogue behind ``deploykit models``: counted params/MACs per model plus published facts.

Counting needs torch and takes several seconds for the whole zoo, while listing the zoo should be instant. So
the counted rows ship with the package (``deploykit/zoo/catalog.json``, written by
``python -m deploykit.catalog --write``) together with the hash of the source they were counted from: the
zoo's ``*.py``/``*.csv`` and ``analysis.py``. When that hash is the current source's, the rows are used as they
are and torch is never imported. Otherwise (a changed architecture, a model registered at run time) the missing
rows are counted with torch and cached in the user cache folder under the same hash, so any change to an
architecture invalidates both by itself. A test keeps the shipped file up to date.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from .artifact import atomic_write_text
from .machine import cache_dir  # noqa: F401  (the catalog's cache lives there; kept importable from here)
from .zoo import list_models
from .zoo.registry import ModelSpec

SHIPPED = "catalog.json"  # in the deploykit.zoo package


def source_hash() -> str:
    """A hash of everything the counted rows depend on: the zoo's ``*.py`` and ``*.csv``, and ``analysis.py``.

    Only those suffixes are read, so the shipped ``catalog.json`` (which stores this hash) is not part of it.
    """
    here = Path(__file__).parent
    files = [*here.joinpath("zoo").glob("*.py"), *here.joinpath("zoo").glob("*.csv"), here / "analysis.py"]
    h = hashlib.sha256()
    for f in sorted(files):
        h.update(f.relative_to(here).as_posix().encode() + b"\0")
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def count_row(spec: ModelSpec) -> dict:
    """Count one model (imports torch): params and MACs of the deploy form at its default resolution."""
    from .analysis import analyze_spec

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


def read_shipped() -> dict:
    """The shipped catalogue, ``{"source_hash": ..., "rows": [...]}``; empty when absent or unreadable."""
    try:
        data = json.loads(resources.files("deploykit.zoo").joinpath(SHIPPED).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _shipped_rows(key: str) -> dict[str, dict]:
    data = read_shipped()
    if data.get("source_hash") != key:
        return {}
    return {r["name"]: r for r in data.get("rows", [])}


def model_rows(family: str | None = None, on_count: Callable[[str], None] | None = None) -> list[dict]:
    """One row per zoo model (counted at its default resolution, deploy form).

    From the shipped catalogue when it was made from the current source, else counted and cached across runs.
    """
    key = source_hash()
    path = cache_dir() / f"catalog-{key}.json"
    known = _shipped_rows(key)
    cached: dict[str, dict] = {}
    if any(spec.name not in known for spec in list_models(family)):
        try:
            cached = json.loads(path.read_text())
        except (OSError, ValueError):
            cached = {}
    rows, dirty = [], False
    for spec in list_models(family):
        row = known.get(spec.name) or cached.get(spec.name)
        if row is None:
            if on_count:
                on_count(spec.name)
            row = cached[spec.name] = count_row(spec)
            dirty = True
        rows.append(row)
    if dirty:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, json.dumps(cached))  # a concurrent reader sees the old file or the new
        except OSError:
            pass  # a read-only home only costs the recount next time
    return rows


def write_shipped(path: Path | None = None) -> Path:
    """Count every registered model afresh and write the shipped catalogue (run after changing the zoo)."""
    path = path or Path(__file__).parent / "zoo" / SHIPPED
    key = source_hash()
    rows = [count_row(spec) for spec in list_models()]
    # One row a line: small diffs when a model changes.
    body = ",\n".join("  " + json.dumps(r, ensure_ascii=False) for r in rows)
    atomic_write_text(path, f'{{"source_hash": "{key}", "rows": [\n{body}\n]}}\n')
    return path


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m deploykit.catalog", description=__doc__.splitlines()[0])
    p.add_argument("--write", action="store_true", help="recount every model and rewrite deploykit/zoo/catalog.json")
    args = p.parse_args(argv)
    if args.write:
        print(f"wrote {write_shipped()} ({source_hash()})")
    else:
        shipped = read_shipped().get("source_hash")
        state = "up to date" if shipped == source_hash() else f"stale ({shipped} != {source_hash()})"
        print(f"{SHIPPED}: {state}")


if __name__ == "__main__":
    main()
