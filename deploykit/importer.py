"""``deploykit results import``: latencies measured outside deploykit, stored as ``measured`` rows.

The case it exists for: iPhones. deploykit cannot reach one, but Xcode's Core ML performance report (open the
.mlpackage in Xcode, Performance tab, pick the device and compute units) measures one; those numbers belong in
the same store and report as everything else, saying where they came from.

Input: CSV (a header row) or JSON (a list of objects) with, per row,
``device`` (a profile name), ``model`` (a zoo name or alias, or any name for your own model),
``compute_unit`` or ``target`` (a target's backend or name in that profile, or one of its backend's aliases such
as Core ML's ``CPU_AND_NE`` / ``Neural Engine``), and ``latency_ms``; optionally ``resolution``, ``precision``,
``tool`` (default "imported"), ``date`` and ``note``. Every row is checked before any is stored; a bad one is
one line naming its row number, and nothing is written.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from .devices import backend_of, load_profiles
from .errors import DeploykitError
from .measurement import Measurement
from .store import Store
from .targets import Target

REQUIRED = ("device", "model", "latency_ms")


def read_rows(path: Path) -> list[dict]:
    try:
        text = path.read_text()
    except OSError as e:
        raise DeploykitError(f"cannot read {path}: {e.strerror or e}") from None
    if path.suffix.lower() == ".json":
        try:
            rows = json.loads(text)
        except ValueError as e:
            raise DeploykitError(f"{path} is not valid JSON: {e}") from None
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise DeploykitError(f"{path}: expected a JSON list of objects, one per measurement")
        return rows
    return list(csv.DictReader(text.splitlines()))


def _target(profile, wanted: str) -> Target | None:
    for t in profile.targets:
        names = {t.backend, t.name, t.id, *(k for k, v in backend_of(t).aliases.items() if v == t.backend)}
        if wanted in names or wanted.lower() in {n.lower() for n in names if n}:
            return t
    return None


def parse(path: Path, profiles=None) -> list[Measurement]:
    """Rows → Measurements (provenance ``measured``), or a DeploykitError naming the first bad row."""
    from .zoo import get_spec

    rows = read_rows(path)
    if not rows:
        raise DeploykitError(f"{path} holds no rows")
    known = load_profiles(profiles)
    out = []
    for i, row in enumerate(rows, start=2 if path.suffix.lower() != ".json" else 1):
        where = f"{path.name} row {i}"
        missing = [k for k in REQUIRED if not str(row.get(k) or "").strip()]
        unit = str(row.get("compute_unit") or row.get("target") or "").strip()
        if missing or not unit:
            raise DeploykitError(f"{where}: missing {', '.join(missing) or 'compute_unit (or target)'}")
        device = str(row["device"]).strip()
        if device not in known:
            raise DeploykitError(f"{where}: unknown device {device!r}", hint="see `deploykit devices`")
        target = _target(known[device], unit)
        if target is None:
            choices = ", ".join(t.backend for t in known[device].targets)
            raise DeploykitError(f"{where}: {device} has no target {unit!r}", hint=f"its targets: {choices}")
        try:
            ms = float(row["latency_ms"])
        except (TypeError, ValueError):
            ms = -1.0
        if not ms > 0:
            raise DeploykitError(
                f"{where}: latency_ms must be a positive number of milliseconds, not {row['latency_ms']!r}"
            )
        model, resolution = str(row["model"]).strip(), row.get("resolution")
        try:
            spec = get_spec(model)
            model, resolution = spec.name, int(resolution or spec.resolution)
        except DeploykitError:
            resolution = int(resolution or 0)  # a user's own model keeps its name
        m = Measurement.for_target(target, model, resolution, median_ms=ms)
        if row.get("precision"):
            m.precision = str(row["precision"])
        m.env = {
            "source": "imported",
            "tool": str(row.get("tool") or "imported"),
            "file": path.name,
            "device": {"model": known[device].display},
            **({"date": str(row["date"])} if row.get("date") else {}),
            **({"note": str(row["note"])} if row.get("note") else {}),
        }
        out.append(m)
    return out


def import_file(path: Path, db: Path, profiles=None) -> list[Measurement]:
    rows = parse(path, profiles)
    with Store(db) as store:
        store.add_many(rows)
    return rows
