"""`deploykit profile`: per-op times read from each runtime's profiler (recorded files in tests/fixtures/op_profiles,
see its README, and live runs of tiny files on this host, a phone stand-in and an AI Hub stand-in), joined to the
zoo model's layers, stored with a timed row and shown by `results --layers`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deploykit.analysis import analyze_spec
from deploykit.profiling import aihub_detail, etdump, ort_trace, tflite_csv
from deploykit.profiling.join import join
from deploykit.profiling.records import OpProfile, OpTime, ProfileError
from deploykit.store import Store
from tests.conftest import cli, invoke, one_line

FIX = Path(__file__).parent / "fixtures" / "op_profiles"
CSV = FIX / "mnv1_025_benchmark_model.csv"


@pytest.fixture(scope="module")
def mnv1():
    return analyze_spec("mnv1_025", 96)


# ---------- readers of recorded output ----------


def test_benchmark_model_csv_joins_by_the_module_paths_in_tflite_names(mnv1):
    p = tflite_csv.read_csv(CSV.read_text())
    assert p.runs == 50 and len(p.ops) == 34 and p.run_ms == pytest.approx(p.op_ms, rel=1e-3)
    assert p.ops[1].op_type == "CONV_2D" and p.ops[1].index == 1 and "stem.conv" in p.ops[1].modules[-1]
    j = join(p, mnv1)
    assert j.matched_share == 1.0 and not j.unmatched_ops
    assert {r.match for r in j.rows} == {"name", "order"}  # the classifier's FC names no module: placed by order
    stem = j.rows[0]
    # the explicit PAD the converter put before the strided conv is that conv's cost, listed with it
    assert stem.layer == "stem.conv" and stem.op_types == ["CONV_2D", "PAD"] and stem.fused == ["stem.bn", "stem.act"]
    assert stem.measured_ms == pytest.approx(0.050 + 0.004 + 1e-4, abs=1e-6)


def test_csv_rows_are_read_by_their_numbers_not_split_on_commas():
    """XNNPACK's op names and a multi-output node's name hold ", "; avg_ms is per call (times called per run);
    a TFLite kernel beside a delegate is a CPU fallback; the log prefix and the old column set are read too."""
    log = "\n".join([
        "INFO: Operator-wise Profiling Info for Regular Benchmark Runs:",
        "INFO: ============================== Run Order ==============================",
        "INFO: node type, first, avg_ms, %, cdf%, mem KB, times called, name",
        "INFO: QUANTIZE, 0.094, 0.093, 0.4%, 0.4%, 0, 1, [tfl.quantize]:0",
        "INFO: Convolution (NHWC, QC8) IGEMM, 3.73, 3.64, 16.5%, 16.9%, 0, 1, Delegate/Convolution (NHWC, QC8) IGEMM:0",
        "INFO: Convolution (NHWC, QC8) DWConv, 0.428, 0.051, 4.3%, 21.2%, 0, 13, Delegate/Convolution (NHWC, QC8) DWConv:1",
        "INFO: TFLite_Detection_PostProcess, 3.894, 3.653, 23.8%, 45%, 0, 1, [out:3, out:2, out:1, out:0]:266",
        "", "INFO: Timings (microseconds): count=50 first=1 curr=2 min=1 max=3 avg=15300 std=4",
    ])  # fmt: skip
    p = tflite_csv.read_csv(log)
    q, conv, dw, post = p.ops
    assert (conv.op_type, conv.kind, conv.ran_on, conv.fallback) == (
        "Convolution (NHWC, QC8) IGEMM",
        "conv",
        "XNNPACK",
        False,
    )
    assert dw.kind == "dwconv" and dw.calls == 13 and dw.ms == pytest.approx(0.051 * 13)
    assert post.name == "[out:3, out:2, out:1, out:0]:266" and post.index == 266 and post.fallback and q.fallback
    assert p.runs == 50 and p.run_ms == pytest.approx(15.3)


@pytest.mark.parametrize(
    "text, said",
    [
        ("count=50 first=1\n", "no 'Operator-wise Profiling Info"),
        (CSV.read_text()[:3000], "truncated"),
        (CSV.read_text().replace(", 0, 1, [", ", zero, 1, [", 1), "not a Run Order row"),
    ],
)
def test_broken_benchmark_model_output_is_one_line(text, said):
    with pytest.raises(ProfileError, match=said):
        tflite_csv.read_csv(text)


def test_onnxruntime_trace_recorded_joins_by_order_and_shape(mnv1):
    """A trace alone (no optimized graph beside it) names no modules: every kernel is placed by order, kind and
    output shape; the NCHWc Reorder nodes and the Reshape ran no layer and are listed."""
    p = ort_trace.read_trace((FIX / "mnv1_025_ort_trace.json").read_text(), skip=1)
    assert (
        p.runs == 2 and p.source.startswith("ONNX Runtime") and all(o.ran_on == "CPUExecutionProvider" for o in p.ops)
    )
    j = join(p, mnv1)
    assert j.matched_share == 1.0 and {r.match for r in j.rows} == {"order"}
    assert sorted(o.op_type for o in j.unmatched_ops) == ["ReorderOutput", "ReorderOutput", "Reshape"]
    assert p.op_ms <= p.run_op_ms <= p.run_ms  # medians per op, per inference's ops, per inference


def test_onnxruntime_optimized_graph_names_modules_and_what_a_conv_folded_in():
    """Module paths come from the optimized graph's parameter names; a convolution that took the residual Sum
    ran the add after it (MobileNetV4's blocks), which then shows as fused into it."""
    assert ort_trace.module_of("stages.2.0.pw_exp.conv.weight_bias") == "stages.2.0.pw_exp.conv"
    assert ort_trace.module_of("head.fc.weight") == "head.fc" and ort_trace.module_of("val_500") is None
    a = analyze_spec("mnv4_conv_s", 64)
    convs = [x for x in a.deployed if x.op != "add"]
    ops = []
    for x in convs:
        fuses = ["add"] if x.name.endswith("pw_proj.conv") and _has_residual(a, x.name) else []
        ops.append(OpTime(x.name + "_nchwc", "Conv", x.op, 0.01, modules=[x.name], fuses=fuses))
    ops.insert(3, OpTime("ReorderInput", "ReorderInput", "layout", 0.002))
    j = join(OpProfile("test", ops=ops), a)
    assert j.matched_share == 1.0 and [o.name for o in j.unmatched_ops] == ["ReorderInput"]
    adds = [r for r in j.rows if r.kind == "add"]
    assert adds and all(
        r.match == "fused" and r.measured_ms == 0.0 and r.fused_into.endswith("pw_proj.conv") for r in adds
    )
    assert all(r.match == "name" for r in j.rows if r.kind != "add")


def test_onnxruntime_int8_ops_are_classed_from_the_optimized_graph(tmp_path):
    """An int8 (QDQ) file runs as QLinearConv and QGemm: the trace lists a QLinearConv's pre-packed weight without a
    shape, so every convolution read as `conv` and the order join paired pointwise layers with depthwise ops (52%
    matched on mnv1_025); its fourth input (the weight) read as a residual summed in; QGemm was `other`."""
    import onnx
    from onnx import TensorProto, helper

    weight = helper.make_tensor("stages.0.0.conv_dw.weight_quantized", TensorProto.INT8, [8, 1, 3, 3], [0] * 72)
    scalars = [helper.make_tensor(n, TensorProto.FLOAT, [], [1.0]) for n in ("xs", "ws", "ys")]
    zeros = [helper.make_tensor(n, TensorProto.INT8, [], [0]) for n in ("xz", "wz", "yz")]
    conv = helper.make_node("QLinearConv", ["x", "xs", "xz", weight.name, "ws", "wz", "ys", "yz"], ["y"],
                            name="node_Conv_445_token_4", group=8, kernel_shape=[3, 3], pads=[1, 1, 1, 1])  # fmt: skip
    graph = helper.make_graph([conv], "g", [helper.make_tensor_value_info("x", TensorProto.INT8, [1, 8, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.INT8, [1, 8, 8, 8])],
                              initializer=[weight, *scalars, *zeros])  # fmt: skip
    path = tmp_path / "optimized.onnx"
    onnx.save(helper.make_model(graph), str(path))
    facts = ort_trace.graph_facts(path)["node_Conv_445_token_4"]
    assert facts == {"modules": ["stages.0.0.conv_dw"], "fuses": [], "conv_kind": "dwconv"}
    shapes = [{"int8": [1, 8, 8, 8]}, {}, {}, {"float": [8]}]  # as the trace lists them: the weight has no shape
    op = ort_trace._op("node_Conv_445_token_4", {"op_name": "QLinearConv", "input_type_shape": shapes}, facts)
    assert op.kind == "dwconv" and op.modules == ["stages.0.0.conv_dw"] and op.fuses == []
    assert ort_trace._op("node_linear", {"op_name": "QGemm"}, {}).kind == "matmul"


def _has_residual(a, name: str) -> bool:
    block = name.rsplit(".", 2)[0]
    return any(x.name == block and x.op == "add" for x in a.deployed)


def test_etdump_recorded_joins_by_order(mnv1):
    p = etdump.read_etdump((FIX / "mnv1_025_fp32.etdp").read_bytes(), skip=1)
    assert p.runs == 2 and all(o.ran_on == "XNNPACK" and not o.fallback for o in p.ops)
    j = join(p, mnv1)
    assert j.matched_share == 1.0
    assert sorted(o.name for o in j.unmatched_ops) == [
        "Static Reshape (NC)",
        "Transpose (ND, X32)",
        "Transpose (ND, X32)",
    ]
    assert p.op_ms <= p.run_ms * 1.05  # the ops inside the delegate sum to about Method::execute


def test_aihub_execution_detail_joins_by_name_and_marks_the_fallback(mnv1):
    p = aihub_detail.read_profile((FIX / "mnv1_025_aihub_profile.json").read_text(), "NPU")
    assert p.runs == 5 and p.ops[-1].ran_on == "CPU" and p.ops[-1].fallback and not p.ops[0].fallback
    j = join(p, mnv1)
    assert j.matched_share == 1.0 and j.rows[-1].layer == "head.fc" and j.rows[-1].fallback
    untimed = aihub_detail.read_profile({"execution_detail": [{"name": "x", "type": "Conv2d", "compute_unit": "NPU"}]})
    assert untimed.ops[0].ms is None and "no per-layer times" in untimed.notes[0]


def test_unmatched_layers_and_ops_are_listed_and_findings_land_on_their_layer(mnv1):
    """A runtime op of no kind any layer has stays in the unmatched list; a layer no op ran is listed unmatched;
    a `check` finding naming an op's file index is shown on that op's layer."""
    p = tflite_csv.read_csv(CSV.read_text())
    p.ops = [o for o in p.ops if o.op_type != "DEPTHWISE_CONV_2D" or o.index != 2]  # one dw conv's row lost
    p.ops.append(OpTime("[custom]:99", "CUSTOM", "other", 0.5, index=99))
    finding = {"op": 3, "name": "CONV_2D", "reason": "not on the GPU", "severity": "error"}
    j = join(p, mnv1, findings=[finding, {"op": 77, "name": "X", "reason": "?", "severity": "warning"}])
    assert [r.layer for r in j.rows if r.match is None] == ["stages.0.0.conv_dw"]
    assert [o.name for o in j.unmatched_ops] == ["[custom]:99"]
    assert j.rows[2].layer == "stages.0.0.conv_pw" and j.rows[2].findings == [finding]
    assert [f["op"] for f in j.findings_unplaced] == [77]
    d = j.to_dict(p)
    assert d["unmatched_layers"] == ["stages.0.0.conv_dw"] and d["unmatched_op_ms"] == pytest.approx(0.5)


# ---------- the command ----------


def _rec(*extra) -> list[str]:
    return ["profile", "mnv1_025", "--device", "pixel8", "--target", "litert-xnnpack", "-r", "96", *extra]


def test_profile_from_a_recording_prints_the_table_with_predictions():
    r = invoke(*_rec("--from", str(CSV), "--json"))
    assert r.returncode == 0, r.stderr
    (p,) = json.loads(r.stdout)
    t = p["layers_measured"]
    assert p["status"] == "ok" and p["target"] == "pixel8/litert-xnnpack/int8" and p["measurement"] is None
    assert t["matched_share"] == 1.0 and t["layers"] == 29 and t["runs"] == 50
    row = t["rows"][3]
    assert row["layer"] == "stages.1.0.conv_dw" and row["predicted_ms"] > 0 and row["bound"] in ("compute", "memory")
    assert row["intensity"] > 0 and row["ran_on"] == "TFLite kernels" and row["measured_ms"] > 0
    shown = invoke(*_rec("--from", str(CSV)))
    assert "matched 29/29 layers (100%" in shown.stdout and "each op's time summed" in shown.stdout


@pytest.mark.parametrize(
    "name, content",
    [
        ("garbage.txt", b"hello, this is no profile\n"),
        ("cut.csv", CSV.read_bytes()[:2500]),
        ("cut.json", (FIX / "mnv1_025_ort_trace.json").read_bytes()[:900]),
        ("cut.etdp", (FIX / "mnv1_025_fp32.etdp").read_bytes()[:300]),
    ],
)
def test_a_truncated_or_garbage_recording_is_one_line_exit_1(tmp_path, name, content):
    f = tmp_path / name
    f.write_bytes(content)
    r = invoke(*_rec("--from", str(f)))
    assert name in one_line(r, 1)


def test_a_folder_given_for_a_model_or_a_recording_says_so(tmp_path):
    assert "is a folder: give a model file" in one_line(invoke("profile", str(tmp_path), "--device", "host"))
    r = invoke("profile", "mnv1_025", "--device", "pixel8", "--target", "pixel8/litert-xnnpack/int8", "--from",
               str(tmp_path))  # fmt: skip
    assert "is a folder: give the recorded profile file" in one_line(r)


def test_a_recording_needs_to_know_its_target():
    r = invoke("profile", "mnv1_025", "--device", "pixel8", "--from", str(CSV))
    assert "give --target" in one_line(r, 2)


def test_a_target_without_a_profiler_says_why_without_exporting(tmp_path):
    """Only targets without a profiler asked for: one line saying why, exit 1, nothing exported and no database
    created (it exited 0 with an empty database)."""
    r = invoke("profile", "mnv1_025", "--device", "host", "--target", "litert-xnnpack", "--out", str(tmp_path / "a"),
               "--db", str(tmp_path / "r.db"), "--json")  # fmt: skip
    line = one_line(r, 1)
    assert "no target of host asked for gives per-op times" in line and "no op profiler" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.fixture()
def standin(tmp_path):
    import os
    import sys

    bindir = tmp_path / "bin"
    bindir.mkdir()
    here = Path(__file__).parent
    (bindir / "adb").write_text(f'#!/bin/sh\nexec {sys.executable} {here / "adb_standin.py"} "$@"\n')
    (bindir / "adb").chmod(0o755)
    binary = tmp_path / "benchmark_model"
    binary.write_bytes(b"\x7fELF stand-in")
    return {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}", "DEPLOYKIT_BENCHMARK_MODEL": str(binary),
            "STANDIN_LOG": str(tmp_path / "calls.jsonl"), "STANDIN_STATE": str(tmp_path / "state")}  # fmt: skip


def test_a_phone_profile_runs_benchmark_model_with_op_profiling_and_is_stored(standin, tiny_int8_tflite, tmp_path):
    db = tmp_path / "r.db"
    r = cli("profile", str(tiny_int8_tflite), "--device", "pixel8", "--target", "litert-xnnpack", "--runs", "20",
            "--repetitions", "2", "--db", str(db), "--json", env=standin)  # fmt: skip
    assert r.returncode == 0, r.stderr
    (p,) = json.loads(r.stdout)
    assert p["status"] == "ok" and p["layers_measured"]["matched_share"] == 1.0
    assert p["layers_measured"]["timed_median_ms"] == pytest.approx(55.0432)  # the timed run's, not the profile's
    calls = [json.loads(x) for x in (tmp_path / "calls.jsonl").read_text().splitlines()]
    profiled = [c for c in calls if "--enable_op_profiling=true" in c]
    assert len(profiled) == 1 and "--op_profiling_output_mode=csv" in profiled[0]
    with Store(db) as s:
        (m,) = s.query()
    assert m.details["layers_measured"]["rows"][0]["layer"] == "stem.conv"
    shown = invoke("results", "--db", str(db), "--layers")
    assert shown.returncode == 0 and "stem.conv" in shown.stdout and "matched 29/29 layers" in shown.stdout
    as_json = json.loads(invoke("results", "--db", str(db), "--json").stdout)
    assert as_json[0]["details"]["layers_measured"]["layers"] == 29


def test_results_layers_without_profiles_says_so(tmp_path):
    from deploykit.measurement import Measurement

    with Store(tmp_path / "r.db") as s:
        s.add(Measurement("m", 224, "onnx", "fp32", "host/onnxruntime/fp32", "host", "onnxruntime", median_ms=1.0))
    assert "no row" in one_line(invoke("results", "--db", str(tmp_path / "r.db"), "--layers"), 2)


def test_aihub_profile_reads_execution_detail_from_the_same_job(tiny_tflite, tmp_path):
    """The timed row and the per-layer table come from one profile job: the ledger finds it the second time."""
    import os

    from tests.test_aihub import FAKE

    ini = tmp_path / "client.ini"
    ini.write_text("[api]\napi_token = tok-123\n")
    state = tmp_path / "hub"
    state.mkdir()
    detail = json.loads((FIX / "mnv1_025_aihub_profile.json").read_text())["execution_detail"]
    (state / "scenario.json").write_text(json.dumps({"execution_detail": detail}))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(FAKE), os.environ.get("PYTHONPATH", "")]),
           "QAIHUB_CLIENT_INI": str(ini), "FAKE_QAIHUB_STATE": str(state), "DEPLOYKIT_CACHE": str(tmp_path / "c"),
           "DEPLOYKIT_AIHUB_POLL_S": "0.02"}  # fmt: skip
    r = cli("profile", str(tiny_tflite), "--device", "galaxy-s24", "--target", "aihub-litert-npu",
            "--db", str(tmp_path / "r.db"), "--json", env=env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    (p,) = json.loads(r.stdout)
    t = p["layers_measured"]
    assert t["matched_share"] == 1.0 and t["rows"][-1]["ran_on"] == "CPU" and t["rows"][-1]["fallback"]
    assert json.loads((state / "state.json").read_text())["submissions"] == 1


@pytest.mark.parametrize(
    "fmt, target", [("onnx", "host/onnxruntime/fp32"), ("executorch", "host/executorch-xnnpack/fp32")]
)
def test_host_profile_of_a_tiny_file(tmp_path, fmt, target):
    """The live host path on a small file: a timed run and a profiled run in the harness's child process, every
    layer matched, op times within reach of the timed median, the roofline's prediction beside each layer, and
    the row stored with its table."""
    from deploykit.exporters.pipeline import ExportRequest, export

    f = export(ExportRequest("mnv1_025", fmt, "fp32", out=tmp_path, resolution=64, verify_samples=1)).path
    r = invoke("profile", str(f), "--device", "host", "--runs", "20", "--repetitions", "2", "--warmup", "3",
               "--db", str(tmp_path / "r.db"), "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    (p,) = json.loads(r.stdout)
    t = p["layers_measured"]
    assert p["status"] == "ok" and p["target"] == target and t["matched_share"] == 1.0 and t["layers"] == 29
    # a loose bound: at 64 px an inference is ~0.1 ms, the Python call around it a large share, the machine shared
    assert 0.1 < t["run_op_sum_ms"] / t["timed_median_ms"] < 3.0 and t["op_sum_ms"] <= 1.2 * t["run_op_sum_ms"]
    assert all(row["predicted_ms"] is not None for row in t["rows"])
    with Store(tmp_path / "r.db") as s:
        (m,) = s.query()
    assert m.target == target and m.details["layers_measured"]["timed_median_ms"] == m.median_ms


@pytest.mark.slow
def test_full_size_host_smoke(tmp_path):
    """The issue's acceptance command on one target, full size: every deployed layer of mnv4_conv_s joined."""
    r = invoke("profile", "mnv4_conv_s", "--device", "host", "--target", "host/executorch-xnnpack/fp32",
               "--out", str(tmp_path / "a"), "--db", str(tmp_path / "r.db"), "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    (p,) = json.loads(r.stdout)
    t = p["layers_measured"]
    assert t["layers"] == 58 and t["matched_share"] >= 0.9 and t["predicted_total_ms"] > 0
    assert all(o["kind"] in ("layout", "view") for o in t["unmatched_ops"])
