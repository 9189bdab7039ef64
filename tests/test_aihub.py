"""Qualcomm AI Hub as a backend, driven through a stand-in of its client (tests/fake_qai_hub: the client's
documented types, the service simulated in a state folder). No test reaches the network or the live service."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deploykit.store import Store
from tests.conftest import EXE

HERE = Path(__file__).parent
FAKE = HERE / "fake_qai_hub"


@pytest.fixture()
def hub(tmp_path):
    """An environment where `qai_hub` is the stand-in, with a configured token and its own ledger."""
    ini = tmp_path / "client.ini"
    ini.write_text(
        "[api]\napi_token = tok-123\napi_url = https://app.aihub.qualcomm.com\nweb_url = https://app.aihub.qualcomm.com\n"
    )
    state = tmp_path / "hub"
    state.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(FAKE), os.environ.get("PYTHONPATH", "")]),
        "QAIHUB_CLIENT_INI": str(ini),
        "FAKE_QAIHUB_STATE": str(state),
        "DEPLOYKIT_CACHE": str(tmp_path / "cache"),
        "DEPLOYKIT_AIHUB_POLL_S": "0.02",
    }
    return Hub(env, tmp_path, state, ini)


class Hub:
    def __init__(self, env, tmp, state, ini):
        self.env, self.tmp, self.state, self.ini = env, tmp, state, ini

    def scenario(self, **kw):
        (self.state / "scenario.json").write_text(json.dumps(kw))

    def service(self) -> dict:
        p = self.state / "state.json"
        return json.loads(p.read_text()) if p.exists() else {"submissions": 0, "uploads": 0, "jobs": {}}

    def cli(self, *args, timeout=600):
        return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=timeout, env=self.env)


def bench_file(path: Path, db: Path, backend: str = "aihub-litert-cpu") -> list[str]:
    return ["bench", "--device", "galaxy-s24", "--artifact", str(path), "--backend", backend, "--db", str(db)]


def rows(db: Path):
    with Store(db) as s:
        return s.query()


def test_devices_says_how_to_configure_without_a_token(hub):
    hub.ini.unlink()
    r = hub.cli("devices", "--json")
    assert r.returncode == 0, r.stderr
    s24 = next(d for d in json.loads(r.stdout) if d["name"] == "galaxy-s24")
    assert not s24["reachable"] and "qai-hub configure" in s24["how"] and s24["services"]["aihub"]
    r = hub.cli("bench", "--device", "galaxy-s24", "--model", "mnv1_025")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "qai-hub configure" in r.stderr


def test_devices_with_a_token_reads_no_client_and_no_network(hub):
    """The token is checked in the client's own file: `devices` imports no qai_hub and calls nothing."""
    code = (
        "import sys, json; from deploykit.devices import get_profile, reachability;"
        "r = {n: reachability(get_profile(n)) for n in ('galaxy-s24', 's23')};"
        "p = get_profile('s23'); reaches = {t.id: t.reach for t in p.targets};"
        "print(json.dumps({n: [x.reachable, sorted({reaches.get(i, '?') for i in x.unavailable})] for n, x in r.items()}),"
        " 'qai_hub' in sys.modules)"
    )
    hub.scenario(unreachable=True)  # any call to the service would fail
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=hub.env, timeout=120)
    said, imported = p.stdout.rsplit(" ", 1)
    reach = json.loads(said)
    assert imported.strip() == "False"
    assert reach["galaxy-s24"] == [True, []]
    # the S23: one profile, both kinds of targets; its AI Hub targets reachable, its adb ones not (no phone here)
    assert reach["s23"] == [True, ["adb"]]


def test_bench_full_size_acceptance_and_rerun_pays_nothing(hub):
    """`deploykit bench --device galaxy-s24 --model mnv4_conv_s`: measured rows with the job ids; run again with a
    fresh database, the ledger collects the same jobs and nothing is submitted or uploaded twice."""
    args = ["bench", "--device", "galaxy-s24", "--model", "mnv4_conv_s", "--backend", "aihub-litert-npu"]
    args += ["--precision", "fp32", "--out", str(hub.tmp / "art"), "--db", str(hub.tmp / "r.db"), "--json"]
    r = hub.cli(*args)
    assert r.returncode == 0, r.stderr
    (m,) = rows(hub.tmp / "r.db")
    assert m.provenance == "measured" and m.status == "ok" and m.target == "galaxy-s24/aihub-litert-npu/fp32"
    assert m.env["service"] == "Qualcomm AI Hub" and m.env["device"]["model"] == "Samsung Galaxy S24"
    assert m.env["aihub_job_id"] in hub.service()["jobs"] and m.env["options"] == "--compute_unit npu"
    assert m.env["peak_memory_bytes"] == 12_345_678 and m.env["hub_version"]
    assert m.delegate["compute_units"] == {"NPU": 9, "CPU": 1} and m.delegate["fallback_layers"] == [
        "layer_9 (Softmax)"
    ]
    assert m.stats.repetitions == 5 and m.stats.n == 100 and 0.2 < m.median_ms < 5
    # the report draws the row, and puts AI Hub's real fallbacks beside `check`'s static findings
    r = hub.cli("report", "--db", str(hub.tmp / "r.db"), "--out", str(hub.tmp / "r.html"))
    page = (hub.tmp / "r.html").read_text()
    assert r.returncode == 0 and "galaxy-s24/aihub-litert-npu/fp32: 1 of 10 layers off NPU (layer_9 (Softmax))" in page
    assert "Qualcomm AI Hub: Samsung Galaxy S24" in page  # the machine that measured is the service's phone
    before = hub.service()
    r = hub.cli(*args[:-3], "--db", str(hub.tmp / "again.db"))
    assert r.returncode == 0, r.stderr
    (again,) = rows(hub.tmp / "again.db")
    after = hub.service()
    assert (after["submissions"], after["uploads"]) == (before["submissions"], before["uploads"]) == (1, 1)
    assert again.env["aihub_job_id"] == m.env["aihub_job_id"]


def test_the_int8_onnx_export_is_what_the_onnx_npu_int8_target_uploads(hub, tiny_int8_onnx):
    """AI Hub's ONNX int8 target (ONNX Runtime's QNN execution provider, compute unit npu) takes deploykit's QDQ
    file as it is: uploaded once, profiled on the NPU, the row named for the int8 target."""
    db = hub.tmp / "q.db"
    r = hub.cli(*bench_file(tiny_int8_onnx, db, "aihub-onnx-npu"))
    assert r.returncode == 0, r.stderr
    (m,) = rows(db)
    assert (m.target, m.precision, m.status) == ("galaxy-s24/aihub-onnx-npu/int8", "int8", "ok")
    assert m.env["options"] == "--compute_unit npu" and m.env["runtime"] == "ONNX Runtime (QNN execution provider)"
    (uploaded,) = hub.service()["models"].values()
    assert uploaded["name"] == tiny_int8_onnx.name and uploaded["size"] == tiny_int8_onnx.stat().st_size


def test_a_profile_gives_load_first_inference_and_memory(hub, tiny_tflite):
    """The profile's load and memory keys (the 0.56 client's names: first_load_time µs, *_peak_memory bytes,
    <stage>_memory_*_range; compile unmeasured for a .tflite, None) become the row's cost."""
    db = hub.tmp / "c.db"
    r = hub.cli(*bench_file(tiny_tflite, db))
    assert r.returncode == 0, r.stderr
    (m,) = rows(db)
    cost = m.cost()
    assert cost["load_ms"] == 80.0 and "first_load_time" in m.env["load_covers"]
    assert cost["first_ms"] == pytest.approx(m.stats.max) and cost["first_ms"] > 3 * m.median_ms
    assert cost["memory_bytes"] == 12_345_678 and cost["size_bytes"] == tiny_tflite.stat().st_size
    mem = m.env["memory"]
    assert mem["load_bytes"] == 40_000_000 and mem["warm_load_peak_bytes"] == 30_000_000
    assert mem["first_load_peak_range_bytes"] == [38_000_000, 40_000_000]
    assert not any(k.startswith("compile") for k in mem)  # not measured: not made up
    assert m.env["aihub_warm_load_ms"] == 21.0 and "aihub_compile_ms" not in m.env


def test_failed_job_is_a_failed_row_with_the_service_message(hub, tiny_tflite):
    hub.scenario(fail_devices=["Samsung Galaxy S24"])
    db = hub.tmp / "f.db"
    r = hub.cli(*bench_file(tiny_tflite, db))
    assert r.returncode == 1
    (m,) = rows(db)
    assert (
        m.status == "failed"
        and "QNN delegate rejected op RESHAPE" in m.error
        and "failed on Samsung Galaxy S24" in m.error
    )
    # a retry submits afresh (the failed job is forgotten), it does not collect the failure again
    hub.scenario()
    r = hub.cli(*bench_file(tiny_tflite, db))
    assert r.returncode == 0, r.stderr
    assert hub.service()["submissions"] == 2 and hub.service()["uploads"] == 1  # the model was uploaded once


@pytest.mark.parametrize(
    "scenario, code, said",
    [
        ({"revoked": ["tok-123"]}, 2, "rejected the API token"),
        ({"unreachable": True}, 1, "cannot be reached"),
        ({"quota": True}, 1, "refused more jobs"),
    ],
)
def test_account_and_service_errors_stop_the_run_in_one_line_storing_nothing(hub, tiny_tflite, scenario, code, said):
    hub.scenario(**scenario)
    db = hub.tmp / "e.db"
    r = hub.cli("bench", "--device", "galaxy-s24", "--artifact", str(tiny_tflite), "--db", str(db))
    assert r.returncode == code, r.stderr
    assert said in r.stderr and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert not db.exists() or rows(db) == []
    if code == 2:
        assert "qai-hub configure" in r.stderr


def test_timeout_keeps_the_job_and_a_rerun_collects_it(hub, tiny_tflite):
    hub.scenario(never_finish=True)
    db = hub.tmp / "t.db"
    args = [
        "bench",
        "--device",
        "galaxy-s24",
        "--artifact",
        str(tiny_tflite),
        "--backend",
        "aihub-litert-gpu",
        "--db",
        str(db),
    ]
    r = hub.cli(*args, "--precision", "fp32", "--timeout", "0.3")
    assert r.returncode == 1
    (m,) = rows(db)
    assert m.status == "failed" and "still MEASURING_PERFORMANCE" in m.error and "run again to collect it" in m.error
    hub.scenario()
    r = hub.cli(*args, "--precision", "fp32")
    assert r.returncode == 0, r.stderr
    assert hub.service()["submissions"] == 1 and rows(db)[-1].status == "ok"


def test_sweep_runs_hosted_jobs_at_once_and_resumes_without_paying_twice(hub):
    """A sweep on an AI Hub phone: jobs run concurrently (bounded), the interrupted sweep's submitted jobs are
    collected by the re-run, never resubmitted."""
    hub.scenario(never_finish=True)
    db = hub.tmp / "s.db"
    args = ["sweep", "--models", "mnv1_025,mnv1_050", "--devices", "galaxy-s24,s23", "--formats", "onnx"]
    args += ["--db", str(db), "--out", str(hub.tmp / "art"), "--json"]
    p = subprocess.Popen([EXE, *args], env=hub.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 400
    while time.time() < deadline and hub.service()["submissions"] < 4:
        time.sleep(0.2)
    time.sleep(0.5)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    first = hub.service()
    assert first["submissions"] >= 4 and first["max_in_flight"] >= 2  # several waited on at once
    hub.scenario()
    r = hub.cli(*args)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    measured = [m for m in rows(db) if m.provenance == "measured"]
    # 2 models x (the S24's ONNX cpu fp32, npu fp32 and int8 (QDQ), QNN fp32 and int8; the S23's ONNX cpu fp32 and
    # npu fp32); a QNN cell is two jobs (compile, profile): 10 + 2 x 4 submissions
    assert summary["failed"] == 0 and len(measured) == 14
    assert first["submissions"] == 4 and hub.service()["submissions"] == 18  # the 4 in flight were collected
    assert len({m.env["aihub_job_id"] for m in measured}) == 14
    r = hub.cli(*args)  # all done: nothing runs, nothing is submitted
    assert json.loads(r.stdout)["ran"] == 0 and hub.service()["submissions"] == 18


def test_sweep_plan_measures_hosted_targets_and_estimates_the_unattached_phone(hub):
    r = hub.cli("sweep", "--models", "mnv1_025", "--devices", "s23", "--plan")
    assert r.returncode == 0, r.stderr
    modes = {j["target"]: j["mode"] for j in json.loads(r.stdout)}
    assert modes["s23/aihub-litert-npu/int8"] == "measure" and modes["s23/litert-gpu/fp16"] == "estimate"
    # AI Hub's ONNX NPU targets, fp32 and int8: deploykit exports both (int8 as QDQ), so both are measured
    r = hub.cli("sweep", "--models", "mnv1_025", "--devices", "galaxy-s24", "--formats", "onnx", "--plan")
    s24 = {j["target"]: j["mode"] for j in json.loads(r.stdout)}
    assert s24["galaxy-s24/aihub-onnx-npu/fp32"] == "measure" and s24["galaxy-s24/aihub-onnx-npu/int8"] == "measure"
    hub.ini.unlink()
    modes = {
        j["target"]: j["mode"]
        for j in json.loads(hub.cli("sweep", "--models", "mnv1_025", "--devices", "s23", "--plan").stdout)
    }
    assert set(modes.values()) == {"estimate"} and "s23/aihub-litert-npu/int8" in modes  # estimated like the rest


def test_qnn_targets_compile_then_profile_and_a_rerun_pays_nothing(hub):
    """Qualcomm's own runtime: the ONNX file is compiled on AI Hub (a compile job, --target_runtime qnn_dlc) and the
    compiled model profiled; the row names both jobs; run again, the ledger collects both and nothing is submitted."""
    args = ["bench", "--device", "galaxy-s24", "--model", "mnv1_025", "--backend", "aihub-qnn-npu", "--precision",
            "fp32", "--out", str(hub.tmp / "art"), "--db", str(hub.tmp / "r.db"), "--json"]  # fmt: skip
    r = hub.cli(*args)
    assert r.returncode == 0, r.stderr
    (m,) = rows(hub.tmp / "r.db")
    assert m.status == "ok" and m.target == "galaxy-s24/aihub-qnn-npu/fp32" and m.format == "onnx"
    jobs = hub.service()["jobs"]
    compile_job, profile_job = jobs[m.env["aihub_compile_job_id"]], jobs[m.env["aihub_job_id"]]
    assert compile_job["kind"] == "compile" and compile_job["options"] == "--target_runtime qnn_dlc"
    assert profile_job["model_id"].startswith("t") and profile_job["options"] == "--compute_unit npu"
    assert m.env["runtime"] == "Qualcomm AI Runtime (QNN, compiled by AI Hub)"
    before = hub.service()
    again = hub.cli(*args[:-3], "--db", str(hub.tmp / "again.db"))
    assert again.returncode == 0, again.stderr
    after = hub.service()
    assert (after["submissions"], after["uploads"]) == (before["submissions"], before["uploads"])
    (m2,) = rows(hub.tmp / "again.db")
    assert (m2.env["aihub_job_id"], m2.env["aihub_compile_job_id"]) == (
        m.env["aihub_job_id"],
        m.env["aihub_compile_job_id"],
    )


def test_a_failed_compile_is_a_failed_row_in_ai_hubs_words_and_is_retried(hub):
    hub.scenario(fail_compile_devices=["Samsung Galaxy S24"])
    args = ["bench", "--device", "galaxy-s24", "--model", "mnv1_025", "--backend", "aihub-qnn-npu", "--precision",
            "fp32", "--out", str(hub.tmp / "art"), "--db", str(hub.tmp / "r.db")]  # fmt: skip
    r = hub.cli(*args)
    assert r.returncode == 1
    (m,) = rows(hub.tmp / "r.db")
    assert m.status == "failed" and "compile job" in m.error and "does not support op GridSample" in m.error
    assert hub.service()["compiles"] == 1 and not any("fakec" not in j for j in hub.service()["jobs"])
    hub.scenario()
    assert hub.cli(*args).returncode == 0
    assert hub.service()["compiles"] == 2  # the failed compile was forgotten: compiled afresh, then profiled


def test_compile_and_memory_ranges_where_the_profile_has_them():
    """An .onnx profiled on the NPU compiles on the device: its compile time and memory are kept beside the load;
    a value the service did not measure (None, the client's MISSING_METRIC_VALUE) is left out, never zero."""
    from types import SimpleNamespace

    from deploykit.backends import aihub
    from deploykit.devices import get_profile

    target = next(t for t in get_profile("galaxy-s24").targets if t.backend == "onnxruntime-qnn")
    summary = {
        "estimated_inference_time": 900, "estimated_inference_peak_memory": 50_000_000, "first_load_time": 2_500_000,
        "first_load_peak_memory": 300_000_000, "warm_load_time": None, "warm_load_peak_memory": None,
        "compile_time": 1_800_000, "compile_peak_memory": 250_000_000, "compile_memory_peak_range": (240_000_000, 250_000_000),
        "inference_memory_peak_range": None, "all_inference_times": [1900, 950, 900, 880],
    }  # fmt: skip
    job = SimpleNamespace(job_id="j1", url=None, hub_version="x")
    env = aihub._env(job, target, "--compute_unit npu", {"execution_summary": summary})
    assert env["aihub_compile_ms"] == 1800.0 and "aihub_warm_load_ms" not in env
    mem = env["memory"]
    assert mem["bytes"] == 50_000_000 and mem["load_bytes"] == 300_000_000 and mem["compile_peak_bytes"] == 250_000_000
    assert mem["compile_peak_range_bytes"] == [240_000_000, 250_000_000] and "warm_load_peak_bytes" not in mem
    stats = aihub._stats({"execution_summary": summary}, SimpleNamespace(repetitions=2))
    assert (stats.init_ms, stats.first_ms) == (2500.0, 1.9)
