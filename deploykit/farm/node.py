"""``deploykit farm up | join | status``: a head, worker nodes that advertise their devices, and what runs.

Security: the farm uses Ray's token authentication (``RAY_AUTH_MODE=token``, Ray ≥ 2.52). ``farm up`` creates a
random token in Ray's default place, ``~/.ray/auth_token`` (mode 600), unless ``$RAY_AUTH_TOKEN`` or the file
already holds one; every other host needs the same token before ``farm join``: copy the file
(``scp head:.ray/auth_token ~/.ray/``) or export ``RAY_AUTH_TOKEN``. Without it the head refuses the node.

Versions: every node labels itself with its deploykit, Ray and Python versions; ``farm join`` first connects
as a client (Ray itself refuses another Ray or Python version), reads the head's labels and refuses, in one
line, a deploykit/Ray/Python mismatch before starting anything: a node with another exporter would write
artifacts the others reject from their cache, or measure with other code.

macOS: Ray supports multi-node clusters on macOS only behind ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=1``; ``join``
refuses on a Mac without it and says so (Ray does not test such clusters; a Mac node is best on a wired, trusted
network, and is meant here for Core ML benchmarks, not as a head).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

from ..errors import DeploykitError
from .connection import DEFAULT_TIMEOUT_S, FarmUnreachable, ask, split_address
from .resources import host_devices, node_resources
from .token import ensure_token, private_local_token, token_path  # noqa: F401 (farm up/join, and callers)

DEFAULT_PORT = 6379
VERSION_LABELS = {"deploykit": "deploykit.io/version", "ray": "deploykit.io/ray", "python": "deploykit.io/python"}
MACOS_FLAG = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
START_TIMEOUT_S = 120.0  # `ray start`/`ray stop`: a node that has not started by then will not


def local_versions() -> dict[str, str]:
    from .. import __version__

    try:
        from importlib.metadata import version

        ray_version = version("ray")
    except Exception:
        ray_version = "absent"
    return {"deploykit": __version__, "ray": ray_version, "python": platform.python_version()}


def version_labels(versions: dict[str, str]) -> dict[str, str]:
    return {VERSION_LABELS[k]: v for k, v in versions.items()}


def check_versions(mine: dict[str, str], head: dict[str, str]) -> None:
    """Refuse (one line, exit 2) a node whose deploykit, Ray or Python differs from the head's."""
    differ = [
        f"{k} {mine.get(k)} here, {head.get(k)} on the head" for k in VERSION_LABELS if mine.get(k) != head.get(k)
    ]
    if differ:
        raise DeploykitError(
            "refused to join: " + "; ".join(differ),
            hint="install the head's versions on this host (the same deploykit release and `pip install 'deploykit[ray]'`)",
        )


def head_versions(nodes: list[dict]) -> dict[str, str]:
    """The versions the head node labelled itself with (``farm up``)."""
    for n in nodes:
        labels = n.get("Labels") or {}
        if n.get("Alive") and "node:__internal_head__" in n.get("Resources", {}):
            return {k: labels.get(label, "unknown") for k, label in VERSION_LABELS.items()}
    raise DeploykitError("the cluster has no head node started by `deploykit farm up`")


def _labels_arg(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def start_command(address: str | None, port: int = DEFAULT_PORT, devices=None) -> list[str]:
    """The ``ray start`` argument list for a head (``address`` None) or a worker joining ``address``."""
    resources, labels = node_resources(host_devices() if devices is None else devices)
    labels.update(version_labels(local_versions()))
    ray = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
    cmd = [ray, "start"]
    cmd += ["--head", f"--port={port}", "--include-dashboard=false"] if address is None else [f"--address={address}"]
    return [*cmd, f"--resources={json.dumps(resources, sort_keys=True)}", f"--labels={_labels_arg(labels)}",
            "--disable-usage-stats"]  # fmt: skip


def macos_refusal(system: str | None = None, env=None) -> str | None:
    env = os.environ if env is None else env
    if (system or platform.system()) == "Darwin" and env.get(MACOS_FLAG) != "1":
        return f"Ray runs multi-node clusters on macOS only with {MACOS_FLAG}=1 (an opt-in Ray does not test)"
    return None


def up(port: int = DEFAULT_PORT, dry_run: bool = False) -> list[str]:
    env = ensure_token(create=not dry_run)
    cmd = start_command(None, port)
    if not dry_run:
        _run(cmd, env)
    return cmd


def join(address: str, dry_run: bool = False, versions_of_head=None, timeout: float = DEFAULT_TIMEOUT_S) -> list[str]:
    """Check token, platform and versions, then start a worker node that advertises this host's devices.
    Joining again (after plugging a phone in) is how a node's devices are updated: ``ray stop`` first."""
    split_address(address)  # HEAD:PORT, or one line before anything else
    refusal = macos_refusal()
    if refusal:
        raise DeploykitError(f"refused to join: {refusal}", hint=f"export {MACOS_FLAG}=1 to opt in")
    env = ensure_token(create=False)
    check_versions(local_versions(), (versions_of_head or _versions_of_head)(address, env, timeout))
    cmd = start_command(address)
    if not dry_run:
        _run(["ray", "stop"], env, check=False)  # a node already started here is replaced (re-discovery)
        _run(cmd, env)
    return cmd


def _versions_of_head(address: str, env: dict, timeout: float = DEFAULT_TIMEOUT_S) -> dict[str, str]:
    """The head's version labels, asked in a child process bounded by ``timeout`` (Ray's own version check,
    Ray and Python, or a bad token: one line)."""
    return head_versions(ask("nodes", address, timeout, env))


def _run(cmd: list[str], env: dict, check: bool = True) -> None:
    try:
        p = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True, timeout=START_TIMEOUT_S)
    except subprocess.TimeoutExpired:  # the child is killed; a `ray start` this slow will not come up
        raise FarmUnreachable(f"`{' '.join(cmd[1:3])}` did not finish within {START_TIMEOUT_S:g} s") from None
    if check and p.returncode != 0:
        lines = [x for x in (p.stderr or p.stdout).splitlines() if x.strip()]
        raise DeploykitError(f"`ray start` failed: {lines[-1].strip() if lines else p.returncode}")


def status(address: str | None, timeout: float = DEFAULT_TIMEOUT_S) -> dict:
    """Nodes (alive or not), their devices and versions, and the jobs a driver has in flight: asked of the
    cluster this process is connected to, or else in a child process bounded by ``timeout``."""
    ray = sys.modules.get("ray")  # a driver already connected asks its own cluster (never start a Ray to ask)
    if ray is not None and ray.is_initialized():
        return status_here(ray)
    from .executor import _ray

    _ray()  # the extra's hint here, not a child's ImportError
    return ask("status", address, timeout)


def status_here(ray) -> dict:
    """:func:`status` of the cluster ``ray`` is connected to."""
    from ray.experimental.internal_kv import _internal_kv_get

    from .executor import INFLIGHT_KEY
    from .resources import cluster_devices

    nodes = ray.nodes()
    devices = cluster_devices(nodes)
    raw = _internal_kv_get(INFLIGHT_KEY)
    inflight = json.loads(raw) if raw else {"driver": None, "jobs": []}
    return {
        "nodes": [
            {
                "node": n["NodeID"],
                "address": n.get("NodeManagerAddress"),
                "alive": bool(n.get("Alive")),
                "cpus": n.get("Resources", {}).get("CPU", 0),
                "devices": sorted(r for r, d in devices.items() if d["node"] == n["NodeID"]),
                "versions": {k: (n.get("Labels") or {}).get(v) for k, v in VERSION_LABELS.items()},
            }
            for n in nodes
        ],
        "in_flight": inflight,
    }
