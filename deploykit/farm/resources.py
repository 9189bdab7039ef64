"""What a farm host advertises, and how a driver reads the devices of a cluster back.

A physical device is one Ray custom resource of capacity 1, named ``REACH:ID`` after how it is reached and its
id: ``adb:SERIAL`` per phone in state ``device``, ``coral:ID`` per Edge TPU, ``apple:HOST`` on a Mac (Core ML),
and ``host:HOSTNAME`` always (this machine's CPU). The name comes from the reach, not from a backend plugin: two
plugins that reach the same phone (say two adb-based backends) see one device, hence one resource, so two
benchmarks never share it. Each device also carries a Ray node label ``deploykit.io/devicemodel.REACH-ID``
whose value is the device's model as discovery reads it (``Pixel_8``): a driver matches its device profiles
against it exactly as ``deploykit devices`` does on the host itself.
"""

from __future__ import annotations

import re
import socket

from ..devices import Reach
from ..targets import FoundDevice, Profile

HOST_REACH = "host"
LABEL_PREFIX = "deploykit.io/devicemodel."
READY_STATES = ("ready", "device")  # adb's "unauthorized"/"offline" phones are not advertised
_LABEL_BAD = re.compile(r"[^A-Za-z0-9_.-]")


def resource_name(reach: str, device_id: str) -> str:
    return f"{reach}:{device_id}"


def split_resource(name: str) -> tuple[str, str]:
    reach, _, device_id = name.partition(":")
    return reach, device_id


def _label_safe(text: str) -> str:
    """Ray label keys and values: at most 63 characters of ``[A-Za-z0-9_.-]``, alphanumeric at both ends."""
    return _LABEL_BAD.sub("_", text).strip("_.-")[:63].strip("_.-") or "unknown"


def label_key(resource: str) -> str:
    return LABEL_PREFIX + _label_safe(resource.replace(":", "-"))


def label_value(model: str) -> str:
    return _label_safe(model.replace(" ", "_"))


def host_devices() -> list[FoundDevice]:
    """Every device the backend plugins discover on this host now, plus this host itself."""
    from ..backends import base as backends

    found = [FoundDevice(HOST_REACH, socket.gethostname(), _cpu_model(), how="this host")]
    for plugin in backends.backends():
        if plugin.reach == HOST_REACH or getattr(plugin, "hosted", False):
            continue  # the host is advertised once; hosted devices (AI Hub) need no resource
        found += [d for d in plugin.discover() if d.state in READY_STATES]
    return list(dict.fromkeys(found))


def _cpu_model() -> str:
    from ..machine import host_info

    return host_info().get("cpu_model") or "cpu"


def node_resources(devices: list[FoundDevice]) -> tuple[dict[str, float], dict[str, str]]:
    """``(resources, labels)`` a Ray node starts with for these devices."""
    resources, labels = {}, {}
    for d in devices:
        name = resource_name(d.reach, d.id)
        resources[name] = 1.0
        labels[label_key(name)] = label_value(d.model)
    return resources, labels


def cluster_devices(nodes: list[dict]) -> dict[str, dict]:
    """The devices of a cluster, from ``ray.nodes()``: resource name → ``{node, model, cpus}`` (alive nodes)."""
    out = {}
    for n in nodes:
        if not n.get("Alive"):
            continue
        labels = n.get("Labels") or {}
        for name in n.get("Resources", {}):
            reach, device_id = split_resource(name)
            if not device_id or name.startswith("node:"):
                continue
            model = labels.get(label_key(name), "")
            out[name] = {
                "node": n["NodeID"],
                "address": n.get("NodeManagerAddress"),
                "model": model.replace("_", " "),
                "cpus": n["Resources"].get("CPU", 0.0),
                "reach": reach,
                "id": device_id,
            }
    return out


def cluster_reach(devices: dict[str, dict], local=None):
    """A ``reach(profile)`` for :func:`deploykit.sweep.plan_sweep` that looks in the cluster instead of on this
    host: a profile is attached when some node advertises a device of its reach whose model matches. Profiles
    of hosted backends (no local device) ask ``local`` (this host's own discovery)."""

    def reach(profile: Profile) -> Reach:
        from ..devices import backend_of, reachability

        if profile.targets and all(getattr(backend_of(t), "hosted", False) for t in profile.targets):
            return (local or reachability)(profile)
        ids = matching(devices, profile)
        if not ids:
            return Reach(
                False, f"no node of the cluster advertises a {profile.reach} device matching {profile.match!r}"
            )
        found = [FoundDevice(profile.reach, devices[r]["id"], devices[r]["model"], how="ray cluster") for r in ids]
        return Reach(True, f"ray cluster: {', '.join(ids)}", found)

    return reach


def matching(devices: dict[str, dict], profile: Profile) -> list[str]:
    """Resource names of the cluster's devices a profile matches (the host profile: only this very host)."""
    if profile.reach == HOST_REACH:
        mine = resource_name(HOST_REACH, socket.gethostname())
        return [mine] if mine in devices else []
    return sorted(
        r
        for r, d in devices.items()
        if d["reach"] == profile.reach and (not profile.match or profile.match.lower() in d["model"].lower())
    )
