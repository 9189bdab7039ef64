"""The roofline estimator: its arithmetic, op support, fitting, the shipped fitted profiles and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace

import pytest

from deploykit import estimator as E
from deploykit.analysis import analyze_spec
from deploykit.devices import get_profile, load_profile


def _run(*args, cwd=None):
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "deploykit", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )


def test_layer_time_is_max_of_compute_and_memory_plus_dispatch():
    r = E.Roofline(peak_macs_per_s=1e9, mem_bw_bytes_per_s=1e8, precision="int8", dispatch_s=1e-6)
    layers = [
        E.Layer("dense", "conv", macs=10_000_000, weight_elems=1000, in_elems=1000, out_elems=1000),  # compute
        E.Layer("dw", "dwconv", macs=100_000, weight_elems=0, in_elems=500_000, out_elems=500_000),  # memory
    ]
    est = E.estimate_layers(layers, r)
    dense, dw = est.layers
    assert dense.bound == "compute" and dense.time_s == pytest.approx(10e6 / 1e9 + 1e-6)
    assert dw.bound == "memory" and dw.time_s == pytest.approx(1e6 / 1e8 + 1e-6)
    assert est.latency_ms == pytest.approx((dense.time_s + dw.time_s) * 1e3)
    # fp32 moves 4× the bytes; depthwise efficiency slows only compute; on-chip tensors cost no DRAM traffic
    assert E.estimate_layers(layers, replace(r, precision="fp32")).layers[1].memory_s == pytest.approx(4 * dw.memory_s)
    slow_dw = replace(r, efficiency={"dwconv": 0.01})
    assert E.estimate_layers(layers, slow_dw).layers[1].compute_s == pytest.approx(100 * dw.compute_s)
    onchip = E.estimate_layers(layers, replace(r, onchip_bytes=600_000))
    assert onchip.layers[1].bytes == 0 and onchip.layers[0].bytes == 1000  # weights still stream
    # the per-inference cost is paid once, not per layer
    invoked = E.estimate_layers(layers, replace(r, invoke_s=3e-4))
    assert invoked.latency_ms == pytest.approx(est.latency_ms + 0.3)
    assert [x.time_s for x in invoked.layers] == [x.time_s for x in est.layers]


def test_whole_graph_accelerators_fit_a_per_inference_cost():
    """The Edge TPU and the Neural Engine run one compiled program: a fit moves invoke_s there, dispatch_s
    (per op) on CPUs, GPU delegates and DSPs; five rows also free bandwidth and depthwise efficiency."""
    edgetpu = next(t for t in get_profile("pixel8").targets if t.backend == "litert-nnapi")
    ane = next(t for t in get_profile("iphone13").targets if t.backend == "coreml-ane")
    gpu = next(t for t in get_profile("pixel7").targets if t.backend == "litert-gpu")
    cpu = next(t for t in get_profile("pixel6").targets if t.backend == "litert-xnnpack")
    assert E.default_free(edgetpu, 2) == E.default_free(ane, 2) == ("peak_macs_per_s", "invoke_s")
    assert E.default_free(gpu, 2) == E.default_free(cpu, 2) == ("peak_macs_per_s", "dispatch_s")
    assert E.default_free(ane, 5) == ("peak_macs_per_s", "invoke_s", "mem_bw_bytes_per_s", "eff_dwconv")
    for t in (edgetpu, ane):
        assert E.roofline_for(t).invoke_s > 0 and "invoke_s" in t.roofline["fit"]


def test_accelerators_fuse_activations_and_dsp_refuses_attention():
    r = E.Roofline(1e12, 1e10, "int8", fuse_elementwise=True)
    layers = [E.Layer("c", "conv", 1000, 10, 10, 10), E.Layer("a", "act", 0, 0, 10, 10)]
    est = E.estimate_layers(layers, r)
    assert est.layers[1].bound == "fused" and est.layers[1].time_s == 0
    hexagon = next(t for t in get_profile("pixel4").targets if t.name == "hexagon")
    hybrid = E.estimate_layers(E.layers_from_analysis(analyze_spec("mnv4_hybrid_m")), E.roofline_for(hexagon))
    assert hybrid.status == "unsupported" and hybrid.latency_ms is None
    assert {"softmax", "attn_matmul"} <= set(hybrid.unsupported_ops)
    conv = E.estimate_layers(E.layers_from_analysis(analyze_spec("mnv4_conv_s")), E.roofline_for(hexagon))
    assert conv.status == "ok" and conv.latency_ms > 0


def test_analysis_layers_keep_every_mac():
    a = analyze_spec("mnv4_hybrid_m")
    layers = E.layers_from_analysis(a)
    assert sum(x.macs for x in layers) == a.macs
    assert any(x.kind == "attn_matmul" for x in layers) and any(x.kind == "matmul" for x in layers)


def test_fit_recovers_parameters_it_generated():
    truth = E.Roofline(2e11, 5e9, "int8", dispatch_s=3e-6, efficiency={"dwconv": 0.2})
    models = ["mnv1_050", "mnv2_100", "mnv3_small_100", "mnv4_conv_s", "repvit_m0_9", "mnv3_large_075"]
    samples = [
        (ls, E.estimate_layers(ls, truth).latency_ms)
        for ls in (E.layers_from_analysis(analyze_spec(m, 128)) for m in models)
    ]
    start = E.Roofline(5e10, 1e10, "int8", dispatch_s=1e-5, efficiency={"dwconv": 0.5})
    res = E.fit(
        start, samples, free=("peak_macs_per_s", "dispatch_s", "mem_bw_bytes_per_s", "eff_dwconv"), tie_ridge=False
    )
    assert res.rms_log_error < 1e-3
    got = res.roofline
    assert got.peak_macs_per_s == pytest.approx(2e11, rel=0.02)
    assert got.mem_bw_bytes_per_s == pytest.approx(5e9, rel=0.02)
    assert got.dispatch_s == pytest.approx(3e-6, rel=0.05)


def test_shipped_profiles_reproduce_their_calibration_rows():
    """Each paper target's profile was fitted (`estimate --fit --published`) on exactly the published
    calibration rows; it must reproduce them, and must say what it was fitted on."""
    rows = E.published_latencies()
    assert {r["target"] for r in rows} == {
        "pixel6_cpu",
        "pixel8_edgetpu",
        "iphone13_ane",
        "pixel4_hexagon",
        "pixel7_gpu",
        "s23_cpu",
        "s23_gpu",
    }
    found, with_ridge = 0, 0
    for device in ("pixel4", "pixel6", "pixel7", "pixel8", "iphone13", "s23"):
        for t in get_profile(device).targets:
            paper = (t.roofline or {}).get("paper_target")
            if not paper:
                continue
            found += 1
            assert "published" in t.roofline["fit"]
            r = E.roofline_for(t)
            for row in (x for x in rows if x["target"] == paper):
                est = E.estimate_layers(E.layers_from_analysis(analyze_spec(row["model"], row["resolution"])), r)
                assert est.latency_ms == pytest.approx(row["ms"], rel=0.10), (paper, row)
            published_ridge = E.published_ridge(paper)
            if published_ridge:
                with_ridge += 1
                assert r.ridge == pytest.approx(published_ridge, rel=0.01), paper
    assert found == 7 and with_ridge == len(E.published_ridge_points()) == 4


def test_macs_baseline_is_exact_on_its_two_rows():
    pred = E.macs_baseline([(100, 2.0), (300, 4.0)])
    assert pred(100) == pytest.approx(2.0) and pred(200) == pytest.approx(3.0)


def test_ridge_sweep_rises_with_the_ridge_point():
    sweep = E.sweep_ridge(E.layers_from_analysis(analyze_spec("mnv4_conv_s", 128)), "int8")
    assert sweep[0]["ridge"] == 0 and sweep[-1]["ridge"] == 500
    values = [p["latency_ms"] for p in sweep]
    assert all(b >= a for a, b in zip(values, values[1:])) and values[-1] > values[0]


def test_tflite_layers_match_the_analysis(tmp_path):
    """An exported file's own graph gives the same MACs as the PyTorch analysis of the model."""
    from deploykit.exporters.base import get as get_format
    from deploykit.exporters.pipeline import ExportRequest, export

    path = export(ExportRequest("mnv1_025", "tflite", "fp32", out=tmp_path, resolution=64, verify_samples=1)).path
    layers = get_format("tflite").graph_layers(path)
    assert sum(x.macs for x in layers) == analyze_spec("mnv1_025", 64).macs
    assert {x.kind for x in layers} >= {"conv", "dwconv", "pwconv", "matmul"}
    name, res, _ = E.model_layers(str(path))
    assert (name, res) == ("mnv1_025", 64)


def test_profile_writer_round_trips(tmp_path):
    from deploykit.profile_writer import write_profile

    p = get_profile("pixel6")
    path = write_profile(p, tmp_path / "pixel6.toml", header="test")
    again = load_profile(path)
    assert [t.id for t in again.targets] == [t.id for t in p.targets]
    assert [t.roofline for t in again.targets] == [t.roofline for t in p.targets]
    assert [t.peak_macs_per_s for t in again.targets] == [t.peak_macs_per_s for t in p.targets]


def test_cli_estimate_stores_estimated_rows(tmp_path):
    db = tmp_path / "r.db"
    r = _run("estimate", "mnv4_conv_s", "mnv4_hybrid_m", "--device", "pixel4", "--db", str(db), "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    by = {(x["model"], x["target"]): x for x in rows}
    assert by[("mnv4_hybrid_m", "pixel4/hexagon/int8")]["status"] == "unsupported"
    assert by[("mnv4_conv_s", "pixel4/hexagon/int8")]["latency_ms"] == pytest.approx(2.4, rel=0.1)
    from deploykit.store import Store

    with Store(db) as s:
        stored = s.query()
    assert stored and {x.provenance for x in stored} == {"estimated"}
    assert {x.status for x in stored} == {"ok", "unsupported"}
    layers = _run("estimate", "mnv4_conv_s", "--device", "pixel8", "--layers", "--no-store")
    assert layers.returncode == 0 and "memory" in layers.stdout and "estimated" in layers.stdout


def test_cli_fit_from_measured_rows_writes_a_profile(tmp_path):
    from deploykit.measurement import Measurement
    from deploykit.store import Store

    # A phone that is exactly 2× slower than the shipped pixel6 CPU figures on three models.
    t = next(x for x in get_profile("pixel6").targets if x.backend == "litert-xnnpack")
    r = E.roofline_for(t)
    db = tmp_path / "m.db"
    with Store(db) as s:
        for m in ("mnv4_conv_s", "mnv2_100", "mnv1_100"):
            ms = 2 * E.estimate_layers(E.layers_from_analysis(analyze_spec(m)), r).latency_ms
            s.add(Measurement(m, 224, "tflite", "int8", t.id, "pixel6", t.backend, median_ms=ms))
    out = tmp_path / "fitted"
    res = _run("estimate", "--fit", "--device", "pixel6", "--db", str(db), "--write", str(out), "--json")
    assert res.returncode == 0, res.stderr
    fit = json.loads(res.stdout)["fits"][0]
    assert fit["rows"] == 3 and fit["rms_log_error"] < 0.05
    refit = load_profile(out / "pixel6.toml")
    t2 = next(x for x in refit.targets if x.backend == "litert-xnnpack")
    est = E.estimate_layers(E.layers_from_analysis(analyze_spec("mnv4_conv_s")), E.roofline_for(t2)).latency_ms
    base = E.estimate_layers(E.layers_from_analysis(analyze_spec("mnv4_conv_s")), r).latency_ms
    assert est == pytest.approx(2 * base, rel=0.05)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["estimate", "mnv4_conv_s", "--device", "pixle8"], "unknown device"),
        (["estimate", "--device", "pixel8"], "name at least one model"),
        (["estimate", "nosuchnet", "--device", "pixel8"], "unknown model"),
        (["estimate", "mnv4_conv_s", "--device", "pixel8", "--target", "dsp"], "no target"),
        (["estimate", "--fit", "--device", "pixel8", "--db", "/nonexistent/x.db"], "no results database"),
        (["estimate", "mnv4_conv_s"], "--device is required"),
    ],
)
def test_cli_estimate_bad_input(args, needle):
    r = _run(*args, "--no-store") if "--fit" not in args else _run(*args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert needle in r.stderr and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_held_out_table6_scores_do_not_regress():
    """The paper's held-out Table 6 rows (never fitted; scripts/data/mnv4_table6_heldout.csv) scored against the
    shipped profiles. Pinned at what the estimator reaches today (docs/estimator.md, "Held-out check"): the
    CPUs and the DSP meet the issue's bar, every target's attention "Failed" is unsupported here, and overall
    the roofline beats latency = a + k·MACs fitted on the same two rows."""
    import importlib.util
    from pathlib import Path
    from statistics import median

    path = Path(__file__).parents[1] / "scripts" / "estimator_heldout.py"
    spec = importlib.util.spec_from_file_location("estimator_heldout", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    res = {r["target"]: r for r in mod.score(details=False)}
    for name in ("pixel6_cpu", "s23_cpu", "pixel4_hexagon"):
        assert res[name]["median_ape"] <= 0.15 and res[name]["spearman"] >= 0.9, res[name]
        assert res[name]["median_ape"] < res[name]["baseline_median_ape"], name
    for name in ("pixel8_edgetpu", "iphone13_ane"):
        assert res[name]["median_ape"] <= 0.15 and res[name]["median_ape"] <= res[name]["baseline_median_ape"], name
    assert res["pixel4_hexagon"]["failed"] == "2/2"
    every = [a for r in res.values() for a in r["ape"]]
    baseline = [a for r in res.values() for a in r["baseline_ape"]]
    assert median(every) < 0.12 and median(every) < median(baseline)


@pytest.mark.parametrize("device", ["coral-usb", "coral-devboard"])
def test_coral_profiles_reproduce_coral_benchmarks(device):
    """Coral's datasheet roofline alone said 0.5 ms for MobileNet v1/v2; Coral's own table says 2.4 / 2.6 ms.
    The profiles' per-inference cost (derived from that table, see their comments) must close the gap."""
    r = E.roofline_for(get_profile(device).targets[0])
    for model, ms in (("mnv1_100", 2.4), ("mnv2_100", 2.6)):
        est = E.estimate_layers(E.layers_from_analysis(analyze_spec(model)), r)
        assert est.latency_ms == pytest.approx(ms, rel=0.05), model
        assert est.latency_ms - r.invoke_s * 1e3 < 0.3 * ms  # the datasheet part stays what it was
