"""``deploykit results import``: latencies measured outside deploykit, stored as ``measured`` rows.

The case it exists for: iPhones. deploykit cannot reach one, but Xcode's Core ML performance report (open the
.mlpackage in Xcode, Performance tab, pick the device and compute units) measures one; those numbers belong in
the same store and report as everything else, saying where they came from.

Input: CSV (a header row) or JSON (a list of objects) with, per row,
``device`` (a profile name), ``model`` (a zoo name or alias, or any name for your own model),
``compute_unit`` or ``target`` (a target's backend or name in that profile, or one of its backend's aliases such
as Core ML's ``CPU_AND_NE`` / ``Neural Engine``), and ``latency_ms``; optionally ``resolution``, ``precision``,
``tool`` (default "imported"), ``date`` and ``note``. ``precision`` chooses among a device's targets of one backend
(``litert-xnnpack`` fp32 and int8); a ``target`` may also be a full target id such as ``pixel8/litert-xnnpack/int8``.
Every row is checked before any is stored; a bad one is one line naming its row number, and nothing is written.
A row already stored (same cell, latency, tool, date and note) is skipped, so importing a file twice counts it once.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from .devices import backend_of, load_profiles
from .errors import DeploykitError
from .measurement import Measurement
from .store import Store
from .targets import Target

REQUIRED = ("device", "model", "latency_ms")
# No device takes an hour per inference: a latency outside (0, 1 h) is a unit or typing mistake (1e300, inf)
MAX_LATENCY_MS = 3_600_000.0


def read_rows(path: Path) -> list[dict]:
    try:
        text = path.read_text(encoding="utf-8-sig")  # a spreadsheet's CSV may start with a byte-order mark
    except UnicodeDecodeError:
        raise DeploykitError(f"{path} is not a text file: give a CSV or JSON file of measurements") from None
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
    try:
        return list(csv.DictReader(text.splitlines()))
    except csv.Error as e:  # a NUL byte, an over-long field
        raise DeploykitError(f"{path} is not a readable CSV file: {e}") from None


def _targets(profile, wanted: str) -> list[Target]:
    """The profile's targets a row's ``compute_unit``/``target`` names: by backend, target name, full id or one
    of the backend's aliases (case aside). One backend may have several (its fp32 and int8 targets)."""
    found = []
    for t in profile.targets:
        names = {t.backend, t.name, t.id, *(k for k, v in backend_of(t).aliases.items() if v == t.backend)}
        if wanted.lower() in {n.lower() for n in names if n}:
            found.append(t)
    return found


def _target(profile, unit: str, precision: str | None, where: str) -> Target:
    """The one target a row is of: its compute unit's targets, narrowed by the row's precision."""
    named = _targets(profile, unit)
    if not named:
        raise DeploykitError(
            f"{where}: {profile.name} has no target {unit!r}",
            hint=f"its targets: {', '.join(t.id for t in profile.targets)}",
        )
    chosen = [t for t in named if precision in (t.precision, t.export_precision)] if precision else named
    if len(chosen) == 1:
        return chosen[0]
    if not chosen:
        raise DeploykitError(
            f"{where}: {profile.name} has no {unit!r} target of precision {precision!r}",
            hint=f"its {unit!r} targets: {', '.join(t.id for t in named)}",
        )
    raise DeploykitError(
        f"{where}: {profile.name} has {len(chosen)} {unit!r} targets: {', '.join(t.id for t in chosen)}",
        hint="add a precision column, or give the full target id as target",
    )


def _latency(row: dict, where: str) -> float:
    """The row's latency_ms, a number of milliseconds a device could take: above 0 and under an hour."""
    value = row["latency_ms"]
    try:
        ms = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        ms = math.nan
    if not 0 < ms < MAX_LATENCY_MS:  # NaN fails this too
        raise DeploykitError(
            f"{where}: latency_ms must be a number of milliseconds above 0 and under one hour"
            f" ({MAX_LATENCY_MS:.0f}), not {value!r}"
        )
    return ms


def _resolution(row: dict, default: int, where: str) -> int:
    """The row's resolution (input side in pixels), or ``default`` when it gives none."""
    value = row.get("resolution")
    if value is None or str(value).strip() == "":
        return default
    try:
        resolution = int(str(value).strip())
    except ValueError:
        resolution = 0
    if resolution < 1:
        raise DeploykitError(f"{where}: resolution must be a positive whole number of pixels, not {value!r}")
    return resolution


def _text(row: dict, key: str, where: str) -> str:
    """A text field, stripped; a JSON object or list there is a mistake, not a name."""
    value = row.get(key)
    if isinstance(value, (dict, list)):
        raise DeploykitError(f"{where}: {key} must be text, not {json.dumps(value)[:60]}")
    return "" if value is None else str(value).strip()


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
        texts = ("device", "model", "compute_unit", "target", "precision", "tool", "date", "note")
        fields = {k: _text(row, k, where) for k in texts}
        missing = [k for k in REQUIRED if k != "latency_ms" and not fields[k]]
        missing += [] if str(row.get("latency_ms") or "").strip() else ["latency_ms"]
        unit = fields["compute_unit"] or fields["target"]
        if missing or not unit:
            raise DeploykitError(f"{where}: missing {', '.join(missing) or 'compute_unit (or target)'}")
        device = fields["device"]
        if device not in known:
            raise DeploykitError(f"{where}: unknown device {device!r}", hint="see `deploykit devices`")
        target = _target(known[device], unit, fields["precision"] or None, where)
        ms = _latency(row, where)
        try:
            spec = get_spec(fields["model"])
        except DeploykitError:
            spec = None  # a user's own model keeps its name
        model = spec.name if spec else fields["model"]
        resolution = _resolution(row, spec.resolution if spec else 0, where)
        m = Measurement.for_target(target, model, resolution, median_ms=ms)
        m.env = {
            "source": "imported",
            "tool": fields["tool"] or "imported",
            "file": path.name,
            "device": {"model": known[device].display},
            **{k: fields[k] for k in ("date", "note") if fields[k]},
        }
        out.append(m)
    return out


def identity(m: Measurement) -> tuple:
    """What makes two imported rows the same measurement: the cell, the latency and where it came from (the
    tool, date and note; not the file's name, so a renamed copy of a file is still the same rows)."""
    return (
        m.model, m.resolution, m.target, m.precision, m.provenance, m.median_ms,
        m.env.get("source"), m.env.get("tool"), m.env.get("date"), m.env.get("note"),
    )  # fmt: skip


def import_file(path: Path, db: Path, profiles=None) -> tuple[list[Measurement], list[Measurement]]:
    """Store a file's rows; returns (stored, skipped: already in the store, or given twice in the file)."""
    rows = parse(path, profiles)
    with Store(db) as store:
        skipped = store.add_unseen(rows, identity)
    return [m for m in rows if m.id is not None], skipped  # a stored row has its row id
