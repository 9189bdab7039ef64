"""Device profiles: what a device is, how it is reached, which targets it runs, and its hardware figures.

Profiles are TOML files: the ones shipped in ``device_profiles/``, then any in ``$DEPLOYKIT_PROFILES`` or a
``--profiles DIR`` (a later file with the same ``name`` replaces an earlier one). Each is validated against
:data:`SCHEMA` and against the backend registry (a target's backend must be served over the profile's reach);
a bad file is a one-line error naming the file and the field. What a target's backend means (its artifact
format, processor class, export precision) is asked of the backend plugin that serves it.

:func:`reachability` says, per profile, whether it can be benchmarked now: it asks the backends of the
profile's reach what they discover, and matches the profile's ``match`` against the devices found.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tomllib
import types
import typing
from dataclasses import MISSING, dataclass, field, fields, replace
from importlib import resources
from pathlib import Path

from .backends import base as backends
from .errors import DeploykitError
from .machine import host_info
from .targets import PRECISIONS, ROOFLINE_FIELDS, TARGET_RANGES, FoundDevice, Profile, Target


def _schema(cls, skip: set[str]) -> dict[str, tuple[tuple[type, ...], bool]]:
    """``field: (accepted types, required)`` read off a dataclass, so the file format cannot drift from it."""

    def accepted(t) -> tuple[type, ...]:
        if typing.get_origin(t) in (typing.Union, types.UnionType):
            return tuple(x for a in typing.get_args(t) if a is not type(None) for x in accepted(a))
        t = typing.get_origin(t) or t
        return (t, int) if t is float else (t,)  # TOML writes 1e10 as a float but 100 as an int

    hints = typing.get_type_hints(cls)
    return {
        f.name: (accepted(hints[f.name]), f.default is MISSING and f.default_factory is MISSING)
        for f in fields(cls)
        if f.name not in skip
    }


# What a profile file may hold: Profile's and Target's fields, less what deploykit fills in itself.
SCHEMA = {
    "profile": _schema(Profile, {"path", "host"}),
    "target": _schema(Target, {"device", "format", "export_precision", "processor", "remote_name"}),
}


@dataclass
class Reach:
    """Can a profile be benchmarked now, how it was looked for, and the devices that match it."""

    reachable: bool
    how: str
    devices: list[FoundDevice] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)  # target id → why its backend is not here


def profile_dirs(extra: str | Path | None = None) -> list[Path]:
    dirs = [Path(str(resources.files("deploykit.device_profiles")))]
    for d in (os.environ.get("DEPLOYKIT_PROFILES"), extra):
        if d:
            p = Path(d)
            if not p.is_dir():
                raise DeploykitError(f"profiles folder not found: {p}")
            dirs.append(p)
    return dirs


def load_profiles(extra: str | Path | None = None) -> dict[str, Profile]:
    profiles: dict[str, Profile] = {}
    for d in profile_dirs(extra):
        for f in sorted(d.glob("*.toml")):
            p = load_profile(f)
            profiles[p.name] = p
    return profiles


def get_profile(name: str, extra: str | Path | None = None) -> Profile:
    profiles = load_profiles(extra)
    if name not in profiles:
        import difflib

        close = difflib.get_close_matches(name, list(profiles), n=3)
        hint = f"did you mean {', '.join(close)}?" if close else f"known: {', '.join(sorted(profiles))}"
        raise DeploykitError(f"unknown device {name!r}", hint=hint)
    return profiles[name]


# Parsed profiles, keyed by the file's path and content and by the backend plugins registered: a sweep asks for
# the profiles several times a job (preparing it, finding its target, asking whether it is hosted), and parsing
# the TOML is most of what a full load costs. Keyed on content, not mtime: file times tick coarsely enough that a
# file rewritten within a few milliseconds keeps its mtime. Held pickled: each caller gets a fresh copy, and
# unpickling is the cheaper way to make one (figures in docs/decisions.md, "Profiles parsed once").
_PARSED: dict[tuple, bytes] = {}


def load_profile(path: Path) -> Profile:
    """The profile in ``path``, validated; each call returns its own copy (callers may change it)."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DeploykitError(f"bad device profile {path}: {e}") from None
    plugins = tuple((b.name, id(b)) for b in backends.backends())
    key = (str(path), hashlib.blake2b(raw, digest_size=16).digest(), plugins)
    if key not in _PARSED:
        _PARSED[key] = pickle.dumps(_parse_profile(path, raw))
    profile = pickle.loads(_PARSED[key])
    if profile.name == "host":  # what this machine is, asked every time (never from a cached copy)
        profile.host = host_info()
        profile.targets = [_host_target(t, profile.host) if t.processor == "cpu" else t for t in profile.targets]
    return profile


def _parse_profile(path: Path, raw: bytes) -> Profile:
    try:
        data = tomllib.loads(raw.decode())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise DeploykitError(f"bad device profile {path}: {e}") from None
    _validate(data, SCHEMA["profile"], path, "")
    _check_reach(data["reach"], path, "")
    services = data.get("services", {})
    for reach, remote in services.items():
        _check_reach(reach, path, "services.")
        if not isinstance(remote, str) or not remote:
            raise DeploykitError(f"bad device profile {path}: services.{reach} must be the device's name there")
    targets = []
    for i, t in enumerate(data["targets"]):
        where = f"targets[{i}]."
        if not isinstance(t, dict):
            raise DeploykitError(f"bad device profile {path}: {where[:-1]} is not a table")
        _validate(t, SCHEMA["target"], path, where)
        _check_ranges(t, path, where)
        if t["precision"] not in PRECISIONS:
            raise DeploykitError(f"bad device profile {path}: {where}precision {t['precision']!r} is unknown")
        reach = t.pop("reach", data["reach"])
        _check_reach(reach, path, where)
        try:
            plugin = backends.for_target(reach, t["backend"])
        except DeploykitError as e:
            raise DeploykitError(f"bad device profile {path}: {where}{e}") from None
        if plugin.hosted and reach not in services:
            raise DeploykitError(
                f"bad device profile {path}: {where}reach {reach!r} is a hosted service: name the device there",
                hint=f'add services = {{ {reach} = "DEVICE NAME" }} to the profile',
            )
        target = Target(device=data["name"], reach=reach, remote_name=services.get(reach, ""), **t)
        runtime, export_precision = plugin.target_runtime(target)
        targets.append(
            replace(target, format=runtime.format, processor=runtime.processor, export_precision=export_precision)
        )
    ids = [t.id for t in targets]
    if len(set(ids)) != len(ids):
        raise DeploykitError(f"bad device profile {path}: two targets share an id; give one a name")
    return Profile(
        data["name"],
        data["display"],
        data["reach"],
        targets,
        str(path),
        data.get("match"),
        data.get("notes", ""),
        services,
    )


def _check_reach(reach: str, path: Path, where: str) -> None:
    if reach not in backends.reaches():
        raise DeploykitError(
            f"bad device profile {path}: {where}reach {reach!r} is not one of {', '.join(backends.reaches())}"
        )


def _check_ranges(t: dict, path: Path, where: str) -> None:
    """Numbers in range, and the roofline table's keys, types and ranges (the estimator trusts them)."""

    def bad(key: str, why: str) -> DeploykitError:
        return DeploykitError(f"bad device profile {path}: {where}{key} {why}")

    for key, (lo, hi) in TARGET_RANGES.items():
        if key in t and not (lo <= t[key] <= hi):
            raise bad(key, f"= {t[key]!r} is outside {lo:g}..{hi:g}")
    roof = t.get("roofline") or {}
    for key, value in roof.items():
        if key not in ROOFLINE_FIELDS:
            raise bad(f"roofline.{key}", f"is not a roofline field (known: {', '.join(sorted(ROOFLINE_FIELDS))})")
        types_, span = ROOFLINE_FIELDS[key]
        values = value.values() if isinstance(value, dict) else value if isinstance(value, list) else [value]
        if not isinstance(value, types_) or isinstance(value, bool) and bool not in types_:
            raise bad(f"roofline.{key}", f"has the wrong type ({type(value).__name__})")
        if span is not None:
            for v in values:
                if isinstance(v, bool) or not isinstance(v, int | float) or not (span[0] <= v <= span[1]):
                    raise bad(f"roofline.{key}", f"= {value!r}: expected numbers in {span[0]:g}..{span[1]:g}")


def _validate(data: dict, schema: dict, path: Path, where: str) -> None:
    for key, (typ, required) in schema.items():
        if required and key not in data:
            raise DeploykitError(f"bad device profile {path}: missing {where}{key}")
        wrong_bool = isinstance(data.get(key), bool) and bool not in typ  # True is an int to isinstance
        if key in data and (not isinstance(data[key], typ) or wrong_bool):
            raise DeploykitError(f"bad device profile {path}: {where}{key} has the wrong type")
    unknown = set(data) - set(schema)
    if unknown:
        raise DeploykitError(f"bad device profile {path}: unknown field {where}{sorted(unknown)[0]}")


def _host_target(t: Target, info: dict) -> Target:
    threads = t.threads or info["physical_cores"]
    ghz = (info.get("cpu_mhz") or 2000) / 1000
    simd = set(info["simd"])
    # fp32 MAC/cycle/core: 2 FMA ports × vector lanes. int8 on x86 without VNNI runs at about the fp32 rate
    # (vpmaddwd); with VNNI/SDOT it is 4× (measured on this machine: XNNPACK int8 ≈ fp32 per pointwise conv).
    lanes = 16 if "avx512f" in simd else 8 if "avx2" in simd else 4
    fp32 = 2 * lanes
    per_cycle = fp32 * (4 if simd & {"avx512_vnni", "avx_vnni", "asimddp"} and t.precision.startswith("int8") else 1)
    peak = threads * ghz * 1e9 * per_cycle
    src = f"derived: {threads} core(s) x {ghz:.2f} GHz x {per_cycle} MAC/cycle ({', '.join(sorted(simd)) or 'scalar'})"
    return replace(t, threads=threads, peak_macs_per_s=t.peak_macs_per_s or peak, source=t.source or src)


def backend_of(target: Target) -> backends.Backend:
    """The plugin that runs a profile target."""
    return backends.for_target(target.reach, target.backend)


def reachability(profile: Profile) -> Reach:
    """Ask the backends of every reach the profile's targets use what is attached (or, for a hosted service,
    whether an account is configured), and match the profile against it. A target is available when a device
    of its own reach matches; the profile is reachable when any target is."""
    seen: dict[str, list[FoundDevice]] = {}
    for reach in profile.reaches:
        for p in backends.of_reach(reach):
            seen[p.name] = p.discover()  # discovery runs adb/lsusb: once per plugin
    matching: list[FoundDevice] = []
    unavailable = {}
    for t in profile.targets:
        plugin = backend_of(t)
        mine = [d for d in seen[plugin.name] if d.state in ("ready", "device") and plugin.matches(profile, d)]
        matching += [d for d in mine if d not in matching]
        if not mine:
            unavailable[t.id] = plugin.how_to_reach(profile)
    if len(unavailable) < len(profile.targets):
        ids = ", ".join(d.id for d in matching)
        how = "; ".join(dict.fromkeys(f"{d.how or d.reach}: {d.id}" for d in matching)) if matching else ids
        return Reach(True, how, matching, unavailable)
    hows = dict.fromkeys(backend_of(t).how_to_reach(profile) for t in profile.targets)
    return Reach(False, "; ".join(hows) or f"no backend reaches {profile.reach}", [], unavailable)


def device_for(reach: Reach, target: Target) -> FoundDevice | None:
    """The attached device a target runs on: the first of its own reach (or the ``--serial`` one)."""
    return next((d for d in reach.devices if d.reach == target.reach), None)
