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


def _cli(home: Path, *args: str, **popen) -> subprocess.Popen:
    """``deploykit ARGS`` under a temporary HOME and Ray temp folder (no token, no cluster of this machine's)."""
    env = {**os.environ, "HOME": str(home), "RAY_TMPDIR": str(home / "rt"), "PYTHONPATH": str(ROOT)}
    for k in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_ADDRESS", "RAY_AUTH_MODE"):
        env.pop(k, None)
    (home / "rt").mkdir(exist_ok=True)
    return subprocess.Popen([sys.executable, "-m", "deploykit", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, **popen)  # fmt: skip


def _closed_port() -> int:
    import socket

    with socket.socket() as s:  # bound, then closed: nothing listens there now
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def black_hole():
    """A local listener that accepts connections and never says a word (a head that hangs)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield f"127.0.0.1:{s.getsockname()[1]}"


def _one_line(r: subprocess.Popen, code: int, timeout: float = 60) -> str:
    try:
        out, err = r.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        r.kill()  # a hung command fails the test, and is not left running
        raise
    assert r.returncode == code, (r.returncode, err)
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: "), err
    assert "Traceback" not in err and "StackTrace" not in err and "rpc_client" not in err
    return err


@pytest.mark.parametrize("address", [None, "closed"])
def test_farm_status_without_a_farm_is_one_line_and_exit_1(tmp_path, address):
    """No cluster at all, or nothing listening at --address: one line, exit 1, at once (Ray retried for minutes,
    repeating its connection warnings)."""
    pytest.importorskip("ray", reason="the ray extra is not installed")
    args = ["--address", f"127.0.0.1:{_closed_port()}"] if address else []
    t0 = time.monotonic()
    err = _one_line(_cli(tmp_path, "farm", "status", *args), 1)
    assert "no farm at" in err or "cannot use the farm" in err
    assert time.monotonic() - t0 < 60  # gross bound: the default timeout is 10 s


def test_farm_status_against_a_silent_head_ends_at_its_timeout(tmp_path, black_hole):
    pytest.importorskip("ray", reason="the ray extra is not installed")
    t0 = time.monotonic()
    err = _one_line(_cli(tmp_path, "farm", "status", "--address", black_hole, "--timeout", "3"), 1)
    assert f"no farm at {black_hole}: no answer within 3 s" in err
    assert time.monotonic() - t0 < 45


@pytest.mark.parametrize("sig, code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_ctrl_c_and_sigterm_end_farm_status_at_once(tmp_path, black_hole, sig, code):
    """Ray's core kept SIGINT and SIGTERM from ending a hung ``ray.init``: the wait is deploykit's now."""
    import signal

    pytest.importorskip("ray", reason="the ray extra is not installed")
    r = _cli(tmp_path, "farm", "status", "--address", black_hole, "--timeout", "300")
    time.sleep(5)  # started, connected to the black hole, waiting
    assert r.poll() is None
    t0 = time.monotonic()
    r.send_signal(getattr(signal, sig))
    err = _one_line(r, code, timeout=30)
    assert time.monotonic() - t0 < 20 and "while waiting for the farm" in err


def test_a_crashing_ray_client_is_reduced_to_one_line(tmp_path):
    """Ray's core aborts with dozens of lines of C++ stack on fd 2 (a token mode without a token did): the
    child's output is caught and said in one line."""
    fake = tmp_path / "fake" / "ray"  # a ray whose init crashes as Ray's core does
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        "import os\n"
        "def is_initialized():\n"
        "    return False\n"
        "def init(**kw):\n"
        "    os.write(2, b'[2026-01-01 00:00:00,000 C 1 1] loader.cc:115: Bug. Check failed: has_token Token missing.\\n')\n"
        "    os.write(2, b'*** StackTrace Information ***\\n' + b'/lib/_raylet.so(+0x1) frame\\n' * 57)\n"
        "    os.abort()\n"
    )
    env = {**os.environ, "HOME": str(tmp_path), "PYTHONPATH": f"{tmp_path / 'fake'}:{ROOT}"}
    r = subprocess.run([sys.executable, "-m", "deploykit", "farm", "status"], capture_output=True, text=True,
                       env=env, timeout=60)  # fmt: skip
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "died of SIGABRT: Token missing." in r.stderr and "frame" not in r.stderr


def test_a_plan_on_the_ray_executor_starts_nothing(tmp_path):
    """``sweep --executor ray --plan`` started a local Ray (and left Ray's token readable by everyone)."""
    pytest.importorskip("ray", reason="the ray extra is not installed")
    r = _cli(tmp_path, "sweep", "--executor", "ray", "--plan", "--models", "mnv1_025", "--devices", "host,pixel8",
             "--db", str(tmp_path / "r.db"))  # fmt: skip
    out, err = r.communicate(timeout=120)
    assert r.returncode == 0, err
    jobs = json.loads(out)
    assert {j["device"] for j in jobs} == {"host", "pixel8"}
    assert any(j["device"] == "host" and j["mode"] == "measure" for j in jobs)  # this host: a local Ray's node
    assert not (tmp_path / ".ray").exists() and list((tmp_path / "rt").iterdir()) == []  # no token, no session


@pytest.mark.cluster
def test_a_local_ray_leaves_its_token_private(tmp_path):
    """A local Ray (``sweep --executor ray`` without --address) makes Ray create ``~/.ray/auth_token``; Ray
    writes it with the umask's mode (644): deploykit creates it first, 600. An existing one of ours is made 600."""
    pytest.importorskip("ray", reason="the ray extra is not installed")
    code = (
        "from deploykit.farm.executor import FarmOptions, connect\n"
        "import ray, os, sys\n"
        "assert connect(FarmOptions(temp_dir=sys.argv[1]))\n"
        "print(oct(os.stat(os.path.expanduser('~/.ray/auth_token')).st_mode & 0o777))\n"
        "ray.shutdown()\n"
    )
    env = {**os.environ, "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    for k in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_ADDRESS", "RAY_AUTH_MODE"):
        env.pop(k, None)
    short = tempfile.mkdtemp(prefix="rt-", dir="/tmp")  # Ray's unix socket paths must stay short
    try:
        r = subprocess.run([sys.executable, "-c", code, short], capture_output=True, text=True, env=env, timeout=180)
    finally:
        subprocess.run(["rm", "-rf", short], check=False)
    assert r.returncode == 0 and r.stdout.strip().splitlines()[-1] == "0o600", (r.stdout, r.stderr[-2000:])

    from deploykit.farm import node

    token = tmp_path / "t" / "auth_token"
    token.parent.mkdir()
    token.write_text("abc\n")
    token.chmod(0o644)  # what Ray wrote before
    os.environ["RAY_AUTH_TOKEN_PATH"] = str(token)
    try:
        node.ensure_token(create=False)
    finally:
        del os.environ["RAY_AUTH_TOKEN_PATH"]
    assert token.stat().st_mode & 0o777 == 0o600 and token.read_text() == "abc\n"


def test_farm_options_are_checked_before_connecting(tmp_path):
    for args, needle in (
        (["farm", "status", "--address", "127.0.0.1"], "give HEAD:PORT"),
        (["farm", "status", "--timeout", "0"], "--timeout 0"),
        (["farm", "status", "--timeout", "nan"], "--timeout nan"),
        (["farm", "join", "127.0.0.1:6379", "--timeout", "1e9"], "at most 600"),
        (["farm", "up", "--port", "70000", "--dry-run"], "--port 70000"),
        (["sweep", "--connect-timeout", "5"], "goes with --executor ray"),
        (["sweep", "--executor", "ray", "--connect-timeout", "-1", "--plan"], "--connect-timeout -1"),
    ):
        assert needle in _one_line(_cli(tmp_path, *args), 2), args


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


@pytest.mark.cluster
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
    # What this proves is that the farm stores what the serial executor does, each job measured on the phone it
    # reserved: no row lost or doubled, the same figures wherever both measured. A cell that fails in one run
    # only (a loaded machine can time a fake benchmark out) is a failed row with its reason, not a lost one.
    s, r = _rows(farm["tmp"] / "serial.db"), _rows(farm["tmp"] / "ray.db")
    assert s.keys() == r.keys() and len(r) == 8, (serial, summary)
    assert all(m.status == "ok" or (m.status == "failed" and m.error) for m in [*s.values(), *r.values()])
    both_ok = [key for key, m in r.items() if m.status == "ok" and s[key].status == "ok"]
    assert {r[key].device for key in both_ok} == {"fake-a", "fake-b"}, (serial, summary)  # both phones worked
    for key in both_ok:
        m = r[key]
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
    assert again.skipped == 8 and again.ran == 0  # failed rows are results too: not re-run unasked


@pytest.mark.cluster
def test_a_dropped_phone_is_retried_and_results_are_plain_data(farm):
    from deploykit.farm.executor import bench_task, options_to_dict

    (job,) = [j for j in _plan(["mnv1_025"]) if j.device == "fake-a"]
    (farm["tmp"] / "state.flaky").write_text("1")  # the next benchmark run finds no phone, once
    ref = farm["ray"].remote(num_cpus=0, resources={"adb:FAKE_A": 1})(bench_task)
    out = farm["ray"].get(ref.remote(job.to_dict(), options_to_dict(_opts(farm, "x")), "FAKE_A", {"name": None}, 2))
    assert _plain(out)
    m = out["measurement"]
    assert m["status"] == "ok" and m["env"]["farm"]["attempts"] == 2


@pytest.mark.cluster
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
    assert resumed.skipped == 1 and resumed.ran == 3 and resumed.count("ok") == 3


@pytest.mark.cluster
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
    # FAKE_A's node never left: its cells are measured (or fail with a reason, as a loaded 2-core machine can time a
    # fake benchmark out: seen once in a full-suite run), never device-unavailable
    on_a = [m for k, m in rows.items() if k[1].startswith("fake-a/")]
    assert on_a and all(m.status == "ok" or (m.status == "failed" and m.error) for m in on_a), [m.error for m in on_a]
    assert any(m.status == "ok" for m in on_a)
    lost = [m for m in rows.values() if m.status == "device-unavailable"]
    assert lost and all(m.target.startswith("fake-b/") and "adb:FAKE_B" in m.error for m in lost)
    assert summary.count("device-unavailable") == len(lost)
    _never_overlap(m for m in rows.values() if m.status == "ok")

    farm["nodes"]["FAKE_B"] = farm["add"]("FAKE_B", "Fake B")  # plugged back in: the node joins again
    cluster.wait_for_nodes()
    deadline = time.monotonic() + 30
    while "adb:FAKE_B" not in ray.cluster_resources():
        assert time.monotonic() < deadline
        time.sleep(0.2)
    rerun = run_sweep_ray(jobs, _opts(farm, "loss"), None, FarmOptions(grace_s=30))
    assert rerun.ran == len(lost) and rerun.count("ok") == len(lost)
