"""The previous release's `--json`, recorded, against today's: a restructuring (the CLI and the estimator became
packages) changes no command's machine-readable output. Fields that describe this machine (what is attached,
where the profiles lie) are left out of the comparison, and so are fields added since (listed: an addition is
compatible, a change or a removal is not); everything else must match exactly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import invoke as cli

RECORDED = Path(__file__).parent / "fixtures" / "previous_release"
MACHINE_FIELDS = {"reachable", "how", "attached", "available_here", "why_not", "host", "profile"}
ADDED_SINCE = {"label"}  # a stored row's run label (`bench --label`, `deploykit compare`)
# an estimate's size extrapolation and the fitted MACs range it is judged by; AI Hub's QNN runtime targets
ADDED_FIELDS = {"extrapolated_size", "fitted_macs"}
ADDED_TARGETS = {"aihub-qnn-npu"}
# A value changed on purpose since, with the reason: ONNX Runtime on the host took the XNNPACK targets' bandwidth
# prior, so `deploykit profile` has a roofline to set its ops against
CHANGED_SINCE = {("host/onnxruntime/fp32", "mem_bw_bytes_per_s"): (None, 10_000_000_000.0)}
# The host profile's figures are derived from the machine that prints them (cores, clock, SIMD: AVX-512 doubles
# the peak): they describe that machine, not the release
HOST_DERIVED = {"threads", "peak_macs_per_s", "source"}


def _host_figures_out(devices: list[dict]) -> list[dict]:
    """`devices --json` with the host's derived figures left out and the deliberate changes above undone."""
    for d in devices:
        if d["name"] == "host":
            d["targets"] = [{k: v for k, v in t.items() if k not in HOST_DERIVED} for t in d["targets"]]
        for t in d["targets"]:
            for (target, key), (before, now) in CHANGED_SINCE.items():
                if t["id"] == target and t.get(key) == now:
                    t[key] = before
    return devices


def _without_machine(value):
    if isinstance(value, dict):
        return {k: _without_machine(v) for k, v in value.items() if k not in MACHINE_FIELDS}
    if isinstance(value, list):
        return [_without_machine(v) for v in value]
    return value


def _without_added(value):
    """Today's output less what was added since the recording (fields, and whole targets of a profile)."""
    if isinstance(value, dict):
        return {k: _without_added(v) for k, v in value.items() if k not in ADDED_FIELDS}
    if isinstance(value, list):
        return [_without_added(v) for v in value if not _added_target(v)]
    return value


def _added_target(value) -> bool:
    """A target (``device/name/precision``) whose name was added since the recording."""
    parts = str(value.get("id", "")).split("/") if isinstance(value, dict) else []
    return len(parts) == 3 and parts[1] in ADDED_TARGETS


@pytest.mark.parametrize(
    "name, args",
    [
        ("models", ["models", "--json"]),
        ("devices", ["devices", "--json"]),
        ("estimate", ["estimate", "mnv4_conv_s", "--device", "pixel8", "--json", "--no-store"]),
    ],
)
def test_json_output_is_the_previous_releases(name, args):
    r = cli(*args)
    assert r.returncode == 0, r.stderr
    recorded = json.loads((RECORDED / f"{name}.json").read_text())
    today = _without_added(json.loads(r.stdout))
    if name == "devices":
        today, recorded = _host_figures_out(today), _host_figures_out(recorded)
    assert _without_machine(today) == _without_machine(recorded)


def test_results_json_of_an_older_database_is_the_previous_releases(tmp_path):
    db = tmp_path / "r.db"
    shutil.copy(Path(__file__).parent / "fixtures" / "results-v2.db", db)
    r = cli("results", "--db", str(db), "--json")
    assert r.returncode == 0, r.stderr
    today = [{k: v for k, v in row.items() if k not in ADDED_SINCE} for row in json.loads(r.stdout)]
    assert today == json.loads((RECORDED / "results.json").read_text())
