"""The device farm (``deploykit.farm``): a simulated three-node Ray cluster on this machine whose worker nodes
advertise the adb stand-in's phones FAKE_A and FAKE_B, and the farm's boundaries (token, versions, macOS,
the ``ray start`` command) without a cluster.

Phones are the real adb backend against ``tests/adb_standin.py`` (recorded benchmark_model output); exports use
the test plugin's millisecond format (``tests/plugins/farm_phone.py``): what is tested is placement, exclusivity,
faults and the store, not conversion. Skipped only when the ``ray`` extra is not installed.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from deploykit.errors import DeploykitError
from deploykit.events import Listener
from deploykit.measurement import Measurement, Method
from deploykit.store import Store
from deploykit.sweep import SweepOptions, finished, plan_sweep, run_sweep
from deploykit.targets import FoundDevice

HERE = Path(__file__).parent
ROOT = HERE.parent
PROFILES = HERE / "plugins" / "farm"
MODELS = ["mnv1_025", "mnv1_050", "mnv2_050", "mnv3_small_075"]  # the zoo's smallest widths
FEW = MODELS[:2]  # the fault tests: 2 models x 2 phones
DEVICES = ["fake-a", "fake-b"]
METHOD = Method(warmup=1, repetitions=1, runs=5)


# ---------- boundaries: no cluster ----------


def test_resources_labels_and_the_cluster_read_back():
    from deploykit.devices import get_profile
    from deploykit.farm.resources import cluster_devices, cluster_reach, node_resources

    found = [FoundDevice("adb", "FAKE_A", "Fake A"), FoundDevice("adb", "10.0.0.7:5555", "Pixel 8"),
             FoundDevice("host", "lab-1", "AMD EPYC 7B13")]  # fmt: skip
    resources, labels = node_resources(found)
    assert resources == {"adb:FAKE_A": 1.0, "adb:10.0.0.7:5555": 1.0, "host:lab-1": 1.0}
    assert labels["deploykit.io/devicemodel.adb-10.0.0.7-5555"] == "Pixel_8"  # valid Ray label: no ':' or ' '
    nodes = [
        {"NodeID": "n1", "Alive": True, "Resources": {"CPU": 2.0, **resources, "node:10.0.0.2": 1.0}, "Labels": labels},
        {"NodeID": "n2", "Alive": False, "Resources": {"adb:FAKE_B": 1.0}, "Labels": {}},  # dead: not offered
    ]
    devices = cluster_devices(nodes)
    assert set(devices) == {"adb:FAKE_A", "adb:10.0.0.7:5555", "host:lab-1"} and devices["adb:FAKE_A"]["node"] == "n1"
    reach = cluster_reach(devices)
    assert reach(get_profile("pixel8")).reachable and [d.id for d in reach(get_profile("pixel8")).devices] == [
        "10.0.0.7:5555"
    ]
    assert not reach(get_profile("pixel7")).reachable


def test_versions_token_and_macos_are_checked_before_joining(tmp_path, monkeypatch):
    from deploykit.farm import node

    mine = node.local_versions()
    node.check_versions(mine, dict(mine))
    with pytest.raises(DeploykitError) as e:
        node.check_versions(mine, {**mine, "deploykit": "0.0.1", "python": "3.12.1"})
    assert "\n" not in str(e.value) and "deploykit" in str(e.value) and "python" in str(e.value)
    assert e.value.exit_code == 2

    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "ray" / "auth_token"))
    with pytest.raises(DeploykitError, match="no farm token"):  # a worker never invents a token
        node.join("10.0.0.2:6379", dry_run=True, versions_of_head=lambda *_: mine)
    env = node.ensure_token(create=True)  # the head creates one, private to its user
    token = tmp_path / "ray" / "auth_token"
    assert env == {"RAY_AUTH_MODE": "token"} and len(token.read_text().strip()) == 64
    assert token.stat().st_mode & 0o777 == 0o600
    with pytest.raises(DeploykitError, match="refused to join: ray"):
        node.join("10.0.0.2:6379", dry_run=True, versions_of_head=lambda *_: {**mine, "ray": "2.9.0"})
    cmd = node.join("10.0.0.2:6379", dry_run=True, versions_of_head=lambda *_: mine)
    assert "--address=10.0.0.2:6379" in cmd and "--head" not in cmd
    res = json.loads(next(a for a in cmd if a.startswith("--resources=")).split("=", 1)[1])
    assert any(r.startswith("host:") for r in res)
    assert f"deploykit.io/version={mine['deploykit']}" in next(a for a in cmd if a.startswith("--labels="))
    assert "--head" in node.up(dry_run=True)

    assert node.macos_refusal("Darwin", {}) and node.macos_refusal("Darwin", {node.MACOS_FLAG: "1"}) is None
    assert node.macos_refusal("Linux", {}) is None


def test_farm_join_without_a_token_is_one_line(tmp_path):
    env = {**os.environ, "HOME": str(tmp_path), "RAY_AUTH_TOKEN": "", "RAY_AUTH_TOKEN_PATH": str(tmp_path / "none")}
    r = subprocess.run([sys.executable, "-m", "deploykit", "farm", "join", "10.0.0.2:6379"], capture_output=True,
                       text=True, timeout=120, env=env)  # fmt: skip
    assert r.returncode == 2 and "no farm token" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_an_artifact_travels_as_bytes_and_installs_atomically(tmp_path):
    from deploykit.artifact import Manifest, file_sha256, read_manifest, write_manifest
    from deploykit.farm.executor import install, pack

    pkg = tmp_path / "a" / "m.mlpackage"  # a package folder travels as a tar archive
    (pkg / "Data").mkdir(parents=True)
    (pkg / "Data" / "weights.bin").write_bytes(b"\x01" * 1000)
    (pkg / "Manifest.json").write_text("{}")
    write_manifest(pkg, Manifest(model={"name": "m"}, format="coreml", precision="fp16", file=pkg.name, inputs=[],
                                 outputs=[], normalization={}, options={}, cache_key="k", sha256=file_sha256(pkg)))  # fmt: skip
    blob = pickle.loads(pickle.dumps(pack(pkg)))
    assert blob["kind"] == "archive"
    got = install(blob, tmp_path / "b")
    assert file_sha256(got) == file_sha256(pkg) and read_manifest(got).sha256 == file_sha256(pkg)
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["m.mlpackage", "m.mlpackage.manifest.json"]


def test_device_unavailable_is_stored_shown_and_retried(tmp_path):
    from deploykit.sweep import Job

    db = tmp_path / "r.db"
    job = Job("mnv1_025", "fake-a", "fake-a/fakephone-cpu/fp32", "measure")
    with Store(db) as s:
        m = Measurement("mnv1_025", 0, "statedict", "fp32", job.target, "fake-a", "fakephone-cpu",
                        status="device-unavailable", error="adb:FAKE_A left the cluster for more than 60 s")  # fmt: skip
        s.add(m)
        assert [r.status for r in s.query()] == ["device-unavailable"]
    assert finished([job], db) == set() and finished([job], db, retry_failed=True) == set()
    from deploykit.reports.html import write_report

    html = write_report(db, tmp_path / "r.html").read_text()
    assert "device-unavailable" in html


# ---------- a simulated cluster ----------


def _plain(x) -> bool:
    """Only builtins cross the wire."""
    if isinstance(x, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in x.items())
    if isinstance(x, list | tuple):
        return all(_plain(v) for v in x)
    return x is None or isinstance(x, str | int | float | bool | bytes)


@pytest.fixture(scope="module")
def farm():
    ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'deploykit[ray]')")
    from ray.cluster_utils import Cluster

    import tests.plugins.farm_phone  # noqa: F401  (the serial executor in this process needs the plugin too)
    from deploykit.backends import base as backends
    from deploykit.exporters import base as formats
    from deploykit.farm.resources import node_resources

    tmp = Path(tempfile.mkdtemp(prefix="rf-", dir="/tmp"))  # short: Ray's unix sockets live under it
    (tmp / "ray").mkdir()
    (tmp / "bin").mkdir()
    # -S: no site import, the stand-in needs only the standard library (it runs a dozen times per cell)
    (tmp / "bin" / "adb").write_text(f'#!/bin/sh\nexec {sys.executable} -S {HERE / "adb_standin.py"} "$@"\n')
    (tmp / "bin" / "adb").chmod(0o755)
    (tmp / "benchmark_model").write_bytes(b"\x7fELF stand-in")
    env = {
        "RAY_TMPDIR": str(tmp),
        "PATH": f"{tmp / 'bin'}:{os.environ['PATH']}",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "DEPLOYKIT_PLUGINS": "tests.plugins.farm_phone",
        "DEPLOYKIT_BENCHMARK_MODEL": str(tmp / "benchmark_model"),
        "STANDIN_SERIALS": "FAKE_A=Fake A,FAKE_B=Fake B",
        "STANDIN_STATE": str(tmp / "state"),
    }
    mp = pytest.MonkeyPatch()
    for k, v in env.items():  # raylets and their workers inherit this process's environment
        mp.setenv(k, v)
    small = {"object_store_memory": 80 * 2**20}

    def phone_node(serial: str, model: str):
        resources, labels = node_resources([FoundDevice("adb", serial, model)])
        return cluster.add_node(num_cpus=1, resources=resources, labels=labels, **small)

    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "include_dashboard": False, "temp_dir": str(tmp / "t"), **small},
    )
    nodes = {"FAKE_A": phone_node("FAKE_A", "Fake A"), "FAKE_B": phone_node("FAKE_B", "Fake B")}
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        yield {"ray": ray, "cluster": cluster, "nodes": nodes, "tmp": tmp, "add": phone_node}
    finally:
        ray.shutdown()
        cluster.shutdown()
        mp.undo()
        formats._REGISTRY.pop("statedict", None)  # leave the registries as other test modules expect them
        backends._REGISTRY.pop("fakephone", None)
        subprocess.run(["rm", "-rf", str(tmp)], check=False)


def _opts(farm, name: str, out: str = "art") -> SweepOptions:
    return SweepOptions(db=farm["tmp"] / f"{name}.db", out=farm["tmp"] / out, profiles=PROFILES, method=METHOD)


def _plan(models=MODELS):
    from deploykit.farm.executor import cluster_reach

    return plan_sweep(models, DEVICES, None, PROFILES, reach=cluster_reach())


def _rows(db: Path) -> dict:
    with Store(db) as s:
        return {(m.model, m.target, m.provenance): m for m in s.query(provenance="measured")}


def _never_overlap(rows) -> None:
    by_device: dict[str, list] = {}
    for m in rows:
        f = m.env["farm"]
        by_device.setdefault(f["device"], []).append((f["started"], f["ended"]))
    for spans in by_device.values():
        spans.sort()
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), spans


def test_a_farm_sweep_stores_what_the_serial_one_does_one_job_per_device_at_a_time(farm):
    """4 tiny models × 2 phones on a 3-node cluster: the same rows as the serial executor, each job on the node
    that holds its phone, and a phone's jobs never overlapping in time."""
    from deploykit.farm.executor import FarmOptions, run_sweep_ray

    jobs = _plan()
    assert len(jobs) == 8 and {j.mode for j in jobs} == {"measure"}
    t0 = time.perf_counter()
    serial = run_sweep(jobs, _opts(farm, "serial", "art-serial"))
    t1 = time.perf_counter()

    class Status(Listener):  # `deploykit farm status` while the sweep runs: the nodes and the jobs in flight
        seen = None

        def finished(self, m):
            if self.seen is None:
                from deploykit.farm.node import status

                self.seen = status(None)

    watch = Status()
    summary = run_sweep_ray(jobs, _opts(farm, "ray"), watch, FarmOptions(grace_s=30))
    print(f"serial {t1 - t0:.1f} s, ray {time.perf_counter() - t1:.1f} s")
    assert serial["ok"] == summary["ok"] == 8 and summary["failed_cells"] == [], (serial, summary)
    s, r = _rows(farm["tmp"] / "serial.db"), _rows(farm["tmp"] / "ray.db")
    assert s.keys() == r.keys()
    for key, m in r.items():
        assert (m.status, m.median_ms, m.stats.rep_means, m.format, m.precision, Path(m.artifact).name) == (
            s[key].status, s[key].median_ms, s[key].stats.rep_means, s[key].format, s[key].precision,
            Path(s[key].artifact).name,
        )  # fmt: skip
        assert m.env["device"]["serial"] == m.env["farm"]["device"]  # measured on the phone it reserved
        assert m.env["farm"]["node"] == farm["nodes"][m.env["farm"]["device"]].node_id
    _never_overlap(r.values())
    alive = [n for n in watch.seen["nodes"] if n["alive"]]
    assert len(alive) == 3 and sorted(d for n in alive for d in n["devices"]) == ["adb:FAKE_A", "adb:FAKE_B"]
    assert 0 < len(watch.seen["in_flight"]["jobs"]) < 8  # one row was done, the others in flight
    again = run_sweep_ray(jobs, _opts(farm, "ray"), None, FarmOptions())  # resumable: the same job keys
    assert again["skipped"] == 8 and again["ran"] == 0


def test_a_dropped_phone_is_retried_and_results_are_plain_data(farm):
    from deploykit.farm.executor import bench_task, options_to_dict

    (job,) = [j for j in _plan(["mnv1_025"]) if j.device == "fake-a"]
    (farm["tmp"] / "state.flaky").write_text("1")  # the next benchmark run finds no phone, once
    ref = farm["ray"].remote(num_cpus=0, resources={"adb:FAKE_A": 1})(bench_task)
    out = farm["ray"].get(ref.remote(job.to_dict(), options_to_dict(_opts(farm, "x")), "FAKE_A", {"name": None}, 2))
    assert _plain(out)
    m = out["measurement"]
    assert m["status"] == "ok" and m["env"]["farm"]["attempts"] == 2


def test_ctrl_c_cancels_the_jobs_in_flight_and_keeps_finished_rows(farm):
    from deploykit.farm.executor import FarmOptions, run_sweep_ray

    class Interrupt(Listener):
        def finished(self, m):
            raise KeyboardInterrupt

    jobs = _plan(FEW)
    with pytest.raises(KeyboardInterrupt):
        run_sweep_ray(jobs, _opts(farm, "int"), Interrupt(), FarmOptions())
    assert len(_rows(farm["tmp"] / "int.db")) == 1  # the row that finished is stored
    ray = farm["ray"]
    deadline = time.monotonic() + 30  # cancelled jobs give their phones back
    while ray.available_resources().get("adb:FAKE_A") != 1 or ray.available_resources().get("adb:FAKE_B") != 1:
        assert time.monotonic() < deadline, ray.available_resources()
        time.sleep(0.2)
    resumed = run_sweep_ray(jobs, _opts(farm, "int"), None, FarmOptions())
    assert resumed["skipped"] == 1 and resumed["ran"] == 3 and resumed["ok"] == 3


def test_a_node_lost_mid_sweep_loses_no_row_and_its_phone_becomes_device_unavailable(farm):
    """Kill FAKE_B's node after the first row: finished rows stay, FAKE_B's jobs end device-unavailable after
    the grace period (not pending forever), every cell has a row; the node rejoins and a re-run completes."""
    from deploykit.farm.executor import FarmOptions, run_sweep_ray

    cluster, ray = farm["cluster"], farm["ray"]

    class KillB(Listener):
        killed = False

        def finished(self, m):
            if not self.killed:
                self.killed = True
                threading.Thread(target=cluster.remove_node, args=(farm["nodes"]["FAKE_B"], False)).start()

    jobs = _plan(FEW)
    summary = run_sweep_ray(jobs, _opts(farm, "loss"), KillB(), FarmOptions(grace_s=3))
    rows = _rows(farm["tmp"] / "loss.db")
    assert len(rows) == 4 and {m.status for m in rows.values()} <= {"ok", "failed", "device-unavailable"}
    assert all(m.status == "ok" for k, m in rows.items() if k[1].startswith("fake-a/"))
    lost = [m for m in rows.values() if m.status == "device-unavailable"]
    assert lost and all(m.target.startswith("fake-b/") and "adb:FAKE_B" in m.error for m in lost)
    assert summary["device-unavailable"] == len(lost)
    _never_overlap(m for m in rows.values() if m.status == "ok")

    farm["nodes"]["FAKE_B"] = farm["add"]("FAKE_B", "Fake B")  # plugged back in: the node joins again
    cluster.wait_for_nodes()
    deadline = time.monotonic() + 30
    while "adb:FAKE_B" not in ray.cluster_resources():
        assert time.monotonic() < deadline
        time.sleep(0.2)
    rerun = run_sweep_ray(jobs, _opts(farm, "loss"), None, FarmOptions(grace_s=30))
    assert rerun["ran"] == len(lost) and rerun["ok"] == len(lost)
