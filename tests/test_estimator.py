"""The roofline estimator: its arithmetic, op support, fitting, the shipped fitted profiles and the CLI."""

from __future__ import annotations

import json
import statistics
import subprocess
from dataclasses import replace

import numpy as np
import pytest

from deploykit import estimator as E
from deploykit.analysis import analyze_spec
from deploykit.devices import get_profile, load_profile, load_profiles
from deploykit.errors import DeploykitError
from tests.conftest import invoke


def _run(*args, cwd=None):
    return invoke(*args, cwd=cwd)  # in-process: the output and exit status are what is tested


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


def test_whole_graph_accelerators_fit_a_per_op_cost_first():
    """The Edge TPU and the Neural Engine run one compiled program that still pays per op: a fit moves
    dispatch_s first there (then the peak, then invoke_s), dispatch_s after the peak on CPUs and DSPs, invoke_s
    then dispatch_s on GPU delegates; more models free bandwidth and depthwise efficiency."""
    edgetpu = next(t for t in get_profile("pixel8").targets if t.backend == "litert-nnapi")
    ane = next(t for t in get_profile("iphone13").targets if t.backend == "coreml-ane")
    gpu = next(t for t in get_profile("pixel7").targets if t.backend == "litert-gpu")
    cpu = next(t for t in get_profile("pixel6").targets if t.backend == "litert-xnnpack")
    assert E.default_free(edgetpu, 2) == E.default_free(ane, 2) == ("dispatch_s", "peak_macs_per_s")
    assert E.default_free(cpu, 2) == ("peak_macs_per_s", "dispatch_s")
    # GPU delegates pay per inference and per op: with rows enough, both move
    assert E.default_free(gpu, 2) == ("peak_macs_per_s", "invoke_s")
    assert E.default_free(gpu, 11)[:3] == ("peak_macs_per_s", "invoke_s", "dispatch_s")
    # as many as the rows support, with a model's worth of slack: 3-5 rows two, 6-8 three, 9 or more all
    assert E.default_free(ane, 5) == ("dispatch_s", "peak_macs_per_s")
    assert E.default_free(cpu, 6) == ("peak_macs_per_s", "dispatch_s", "mem_bw_bytes_per_s")
    assert E.default_free(ane, 7) == ("dispatch_s", "peak_macs_per_s", "invoke_s")
    assert E.default_free(ane, 9) == ("dispatch_s", "peak_macs_per_s", "invoke_s", "mem_bw_bytes_per_s", "eff_dwconv")
    assert E.default_free(ane, 9, n_models=4) == ("dispatch_s", "peak_macs_per_s")
    for t in (edgetpu, ane):
        assert "invoke_s" in t.roofline["fit"]


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


def test_shipped_profiles_are_fitted_on_their_corpus_rows():
    """Every target with corpus rows (`estimate --fit --published`) was fitted on all of them, says so, and
    carries the interval of its cross-validated residuals; its own rows fall inside that interval (in sample,
    so at least the interval's 80%)."""
    from deploykit import corpus

    fitted = 0
    for device in ("pixel4", "pixel6", "pixel7", "pixel8", "iphone12", "iphone13", "s23"):
        for t in get_profile(device).targets:
            rows = corpus.rows_for(t)
            if len({r.key for r in rows}) < 3:
                continue
            fitted += 1
            roof = t.roofline
            assert f"on {len(rows)} " in roof["fit"] and rows[0].source in roof["fit"], t.id
            assert roof["interval"][0] < 1 < roof["interval"][1] and "leave-one-model-out" in roof["interval_basis"]
            assert roof["fitted_kinds"], t.id  # what an estimate checks its model's op kinds against
            r = E.roofline_for(t)
            if device not in ("iphone12", "s23"):  # counting every Table 6 model costs minutes on a cold cache
                continue
            inside, kinds = 0, set()
            for row in rows:
                layers = E.model_layers(row.model, row.resolution)[2]
                kinds |= {E.recorded_kind(x.kind) for x in layers}
                est = E.estimate_layers(layers, r)
                inside += est.low_ms <= row.latency_ms <= est.high_ms
            assert inside >= 0.8 * len(rows), (t.id, inside, len(rows))
            assert roof["fitted_kinds"] == sorted(kinds), t.id
            macs = [E.total_macs(E.model_layers(row.model, row.resolution)[2]) for row in rows]
            assert roof["fitted_macs"] == [min(macs), max(macs)], t.id
    assert fitted == 8  # Table 6's seven targets and the iPhone 12 Neural Engine


def test_an_estimate_with_attention_kinds_no_fitted_row_had_says_so_and_widens_its_interval():
    """A fit knows what an op kind costs only from rows that have it: a model with softmax on a target fitted on
    convolutions alone is an extrapolation, flagged, with at least the interval such extrapolations needed."""
    r = E.Roofline(1e12, 1e10, "fp16", interval=[0.95, 1.05], interval_basis="b", fitted_kinds=("conv", "pwconv"))
    conv = [E.Layer("c", "conv", 10**6, 100, 1000, 1000)]
    attn = conv + [E.Layer("s", "softmax", 0, 0, 1000, 1000), E.Layer("q", "attn_matmul", 10**5, 0, 1000, 1000)]
    plain, extra = E.estimate_layers(conv, r), E.estimate_layers(attn, r)
    assert plain.unseen_kinds == [] and plain.low_ms == pytest.approx(0.95 * plain.latency_ms)
    assert extra.unseen_kinds == ["attn_matmul", "softmax"] and "extrapolated" in extra.basis
    lo, hi = E.UNSEEN_KINDS_INTERVAL
    assert extra.low_ms == pytest.approx(lo * extra.latency_ms) and extra.high_ms == pytest.approx(
        hi * extra.latency_ms
    )
    assert extra.to_dict()["unseen_kinds"] == ["attn_matmul", "softmax"]
    # a wider interval of its own stays; fitted on attention rows, or not recorded: nothing to flag
    wide = E.estimate_layers(attn, replace(r, interval=[0.5, 2.0]))
    assert (wide.low_ms, wide.high_ms) == pytest.approx((0.5 * wide.latency_ms, 2.0 * wide.latency_ms))
    for seen in (replace(r, fitted_kinds=("conv", "softmax", "attn_matmul")), replace(r, fitted_kinds=None)):
        assert E.estimate_layers(attn, seen).unseen_kinds == []


def test_an_estimate_far_outside_the_macs_its_target_was_fitted_on_says_so_and_widens_its_interval():
    """A target fitted on models of 1-2 MMACs asked about one of 10: flagged (`extrapolated_size`, the basis says
    it), its interval widened by the constant per unit of log MACs ratio measured above the range; one of 0.2 MMACs
    by the one measured below it. Outside the range but within 2× of it: flagged, not widened. Inside the range, or
    with no range recorded, nothing is claimed."""
    r = E.Roofline(1e12, 1e10, "int8", interval=[0.9, 1.1], interval_basis="b", fitted_macs=(1e6, 2e6))

    def model(macs):
        return [E.Layer("c", "conv", macs, 100, 1000, 1000)]

    inside = E.estimate_layers(model(1.5e6), r)
    assert inside.extrapolated_size is None and inside.low_ms == pytest.approx(0.9 * inside.latency_ms)
    for macs, ratio in ((3.9e6, 1.95), (0.6e6, 0.6)):  # outside the range, within the margin either side
        est = E.estimate_layers(model(macs), r)
        ext = est.extrapolated_size
        assert ext["ratio"] == pytest.approx(ratio) and not ext["beyond_margin"] and ext["widening"] == 1.0
        assert est.low_ms == pytest.approx(0.9 * est.latency_ms) and "not widened" in est.basis
    big = E.estimate_layers(model(10e6), r)
    ext = big.extrapolated_size
    assert ext["ratio"] == pytest.approx(5.0) and ext["fitted_macs"] == [1e6, 2e6] and ext["macs"] == 10e6
    assert ext["beyond_margin"]
    w = np.exp(E.SIZE_WIDENING_PER_LOG["above"] * np.log(5.0))
    assert ext["widening"] == pytest.approx(w) and w > 1
    assert big.low_ms == pytest.approx(0.9 / w * big.latency_ms) and big.high_ms == pytest.approx(
        1.1 * w * big.latency_ms
    )
    assert "extrapolated in size" in big.basis and "5.0× the largest" in big.basis
    assert (
        big.to_dict()["extrapolated_size"] == ext
        and big.latency_ms == E.estimate_layers(model(10e6), replace(r, fitted_macs=None)).latency_ms
    )  # fmt: skip  (the number is the same; only what it claims changes)
    small = E.estimate_layers(model(0.2e6), r)
    assert small.extrapolated_size["ratio"] == pytest.approx(0.2)
    assert small.extrapolated_size["widening"] == pytest.approx(np.exp(E.SIZE_WIDENING_PER_LOG["below"] * np.log(5)))
    assert "of the smallest" in small.basis
    none = E.estimate_layers(model(10e6), replace(r, fitted_macs=None))
    assert none.extrapolated_size is None and none.to_dict()["extrapolated_size"] is None
    # with unseen op kinds too: both said, both widenings applied
    attn = model(10e6) + [E.Layer("s", "softmax", 0, 0, 1000, 1000)]
    both = E.estimate_layers(attn, replace(r, fitted_kinds=("conv",)))
    lo, hi = E.UNSEEN_KINDS_INTERVAL
    assert both.unseen_kinds == ["softmax"] and both.extrapolated_size
    assert both.high_ms == pytest.approx(max(1.1, hi) * w * both.latency_ms)
    with pytest.raises(DeploykitError, match="fitted_macs"):
        t = next(t for t in get_profile("pixel8").targets if t.roofline and t.roofline.get("fitted_macs"))
        E.roofline_for(replace(t, roofline={**t.roofline, "fitted_macs": [5, 1]}))


def test_a_large_model_on_the_galaxy_s24_lists_its_qnn_targets_and_says_which_npu_estimates_extrapolate():
    """Issue 30: MNv4-Conv-L at 384 (6.4 GMACs) on the S24. The QNN targets stand beside the LiteRT and ONNX Runtime
    ones; every NPU estimate says it extrapolates in size: the int8 targets, fitted on models of 0.2-0.8 GMACs
    (×7.7), with a widened interval; the fp32 ones, fitted up to RepViT-M2.3 (4.5 GMACs: ×1.4, within the 2× margin
    their own intervals have held), with theirs as fitted."""
    r = _run("estimate", "mnv4_conv_l", "-r", "384", "--device", "galaxy-s24", "--no-store", "--json")
    assert r.returncode == 0, r.stderr
    by = {x["target"]: x for x in json.loads(r.stdout)}
    npu = {t: x for t, x in by.items() if "-npu/" in t}
    assert {t.split("/")[1] for t in npu} == {"aihub-litert-npu", "aihub-onnx-npu", "aihub-qnn-npu"} and len(npu) == 6
    for t, x in npu.items():
        assert x["calibration"] == "fitted" and x["low_ms"] < x["latency_ms"] < x["high_ms"], t
        if t.endswith("/int8"):
            assert x["extrapolated_size"]["ratio"] == pytest.approx(7.7, abs=0.05), t
            assert "extrapolated in size" in x["basis"] and x["params"]["fitted_macs"][1] < 1e9
            assert x["extrapolated_size"]["widening"] > 1
        else:
            assert x["extrapolated_size"]["ratio"] == pytest.approx(1.4, abs=0.05), t
            assert x["extrapolated_size"]["widening"] == 1.0 and "not widened" in x["basis"], t
    table = _run("estimate", "mnv4_conv_l", "-r", "384", "--device", "galaxy-s24", "--no-store")
    assert table.stdout.count("extrapolated in size ×7.7") == 3 and "aihub-qnn-npu" in table.stdout
    assert table.stdout.count("extrapolated in size ×1.4") == 3


def test_lab_agreement_predicts_each_model_by_the_median_of_its_own_rows():
    """Three labs measure model a at 1.0, 1.1 and 3.0 ms, one measures b at 2.0 and c at 5.0: one number per model
    gets a's outlier 63% wrong whatever estimator gives it, and ranks it below b."""
    got = E.lab_agreement([("a", 224, 1.0), ("a", 224, 1.1), ("a", 224, 3.0), ("b", 224, 2.0), ("c", 224, 5.0)])
    assert got["median_ape"] == pytest.approx(0.0) and got["within_15pct"] == 4
    assert got["spearman"] == pytest.approx(E.spearman([1.0, 1.1, 3.0, 2.0, 5.0], [1.1, 1.1, 1.1, 2.0, 5.0]))
    assert got["spearman"] < 0.9


def test_macs_baseline_is_exact_on_its_two_rows():
    pred = E.macs_baseline([(100, 2.0), (300, 4.0)])
    assert pred(100) == pytest.approx(2.0) and pred(200) == pytest.approx(3.0)


def test_ridge_sweep_rises_with_the_ridge_point():
    sweep = E.sweep_ridge(E.layers_from_analysis(analyze_spec("mnv4_conv_s", 128)), "int8")
    assert sweep[0]["ridge"] == 0 and sweep[-1]["ridge"] == 500
    values = [p["latency_ms"] for p in sweep]
    assert all(b >= a for a, b in zip(values, values[1:])) and values[-1] > values[0]


def test_tflite_layers_match_the_analysis(tiny_tflite):
    """An exported file's own graph gives the same MACs as the PyTorch analysis of the model."""
    from deploykit.exporters.base import get as get_format

    path = tiny_tflite
    layers = get_format("tflite").graph_layers(path)
    assert sum(x.macs for x in layers) == analyze_spec("mnv1_025", 64).macs
    assert {x.kind for x in layers} >= {"stem", "dwconv", "pwconv", "matmul"}  # its one full conv is the stem
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


def test_leave_one_device_out_runs_within_each_vendor_family():
    """AI Hub's rows, each device predicted from its vendor siblings' pooled rows: the four Galaxy phones form one
    family, Qualcomm's own boards and laptops another (never mixed), datasheet-scaled where every device has a
    profile target of that name and precision. Bounds catch gross errors only (docs/estimator.md has the figures)."""
    out = E.family_transfer(load_profiles())
    fams = {r["family"]: set() for r in out}
    for r in out:
        fams[r["family"]].add(r["device"])
    assert fams["Samsung"] == {"galaxy-s22", "galaxy-s24", "galaxy-s25", "galaxy-s26"}
    assert {"snapdragon-x-elite", "snapdragon-x2-elite", "qcs8550-proxy", "sa8775p-adp"} <= fams["Qualcomm"]
    s24 = next(
        r for r in out if (r["device"], r["target"], r["precision"]) == ("galaxy-s24", "aihub-litert-npu", "fp32")
    )
    assert s24["datasheet_scaled"] and s24["train_rows"] == 15 and s24["rows"] == 5
    npu = [
        r["median_ape"] for r in out if r["target"] in ("aihub-litert-npu", "aihub-onnx-npu") and r.get("median_ape")
    ]
    assert 0 < statistics.median(npu) < 0.6


def test_one_models_rows_scale_a_siblings_shape_instead_of_fitting_one_of_their_own(tmp_path):
    """A new Samsung phone with one model measured on its NPU target: `--fit` takes the nearest calibrated
    Galaxy's fitted shape and scales it to that row (passing through it), so the other models keep the sibling's
    ratios; the interval is the family's one-model transfer's, and the output says whose shape it is."""
    from deploykit.measurement import Measurement
    from deploykit.store import Store

    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "galaxy-new.toml").write_text(
        'name = "galaxy-new"\ndisplay = "Samsung Galaxy New"\nreach = "aihub"\n'
        '[services]\naihub = "Samsung Galaxy New"\n'
        '[[targets]]\nbackend = "litert-qnn"\nprecision = "fp32"\nname = "aihub-litert-npu"\n'
        'peak_macs_per_s = 4.6e13\nmem_bw_bytes_per_s = 2.5e11\nsource = "test datasheet"\n'
    )
    db = tmp_path / "m.db"
    tid = "galaxy-new/aihub-litert-npu/fp32"
    with Store(db) as s:
        s.add(Measurement("mnv2_100", 224, "tflite", "fp32", tid, "galaxy-new", "litert-qnn", median_ms=0.9))
    out = tmp_path / "fitted"
    res = _run("estimate", "--fit", "--device", "galaxy-new", "--db", str(db), "--profiles", str(profiles),
               "--write", str(out), "--json")  # fmt: skip
    assert res.returncode == 0, res.stderr
    fit = json.loads(res.stdout)["fits"][0]
    assert fit["rows"] == 1 and fit["free"] == ["scale"] and fit["borrowed_from"].startswith("galaxy-s2")
    lo, hi = fit["interval"]
    assert 0.3 < lo < 1 < hi < 3
    new = next(t for t in load_profile(out / "galaxy-new.toml").targets if t.id == tid)
    assert new.roofline["calibration"] == "anchored"
    sib_id = fit["borrowed_from"]
    sibling = next(t for t in get_profile(sib_id.split("/")[0]).targets if t.id == sib_id)

    def ms(target, model):
        return E.estimate_layers(E.layers_from_analysis(analyze_spec(model)), E.roofline_for(target)).latency_ms

    assert ms(new, "mnv2_100") == pytest.approx(0.9, rel=1e-3)  # through its one row
    assert ms(new, "repvit_m2_3") / ms(new, "mnv2_100") == pytest.approx(
        ms(sibling, "repvit_m2_3") / ms(sibling, "mnv2_100"), rel=2e-3
    )  # the sibling's shape
    assert "'s fitted shape" in new.roofline["fit"] and "scaled by" in new.roofline["fit"]
    assert "one of its models" in new.roofline["interval_basis"]
    table = _run("estimate", "--fit", "--device", "galaxy-new", "--db", str(db), "--profiles", str(profiles))
    assert table.returncode == 0 and "fitted shape, scaled by" in table.stderr


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


def test_validate_refits_and_scores_by_cross_validation():
    """`estimate --validate` refits from the shipped corpus at call time (Table 6 in full: its old held-out
    split gave way to cross-validation) and scores leave-one-model-out with the MACs baseline beside it. Pinned
    near today's figures (docs/estimator.md): the CPUs and the DSP meet the issue's bar and beat the baseline."""
    r = _run("estimate", "--validate", "--device", "s23", "--json")
    assert r.returncode == 0, r.stderr
    got = {x["target"]: x for x in json.loads(r.stdout)["targets"]}
    cpu = got["s23/litert-xnnpack/int8"]["leave_one_model_out"]
    assert cpu["rows"] == 11 and cpu["median_ape"] <= 0.10 and cpu["spearman"] >= 0.95
    assert cpu["median_ape"] < cpu["baseline_median_ape"]
    assert 0.6 <= cpu["interval_coverage"] <= 1.0
    assert got["s23/litert-gpu/fp16"]["leave_one_model_out"]["median_ape"] <= 0.15
    assert got["s23/litert-xnnpack/int8"]["paper_table16"]["spearman_roofline"] == pytest.approx(0.962)
    assert got["s23/litert-xnnpack/int8"]["leave_largest_out"] == {}  # a CPU: leave-largest-out is for NPU targets
    # AI Hub's QNN runtime targets beside LiteRT's and ONNX Runtime's, and (NPU targets) the largest model left out:
    # predicted by a fit on the smaller ones, inside its interval without and with the size widening
    s24 = json.loads(_run("estimate", "validate", "--device", "galaxy-s24", "--json").stdout)
    got = {x["target"]: x for x in s24["targets"]}
    for precision, models in (("fp32", 5), ("int8", 3)):
        qnn = got[f"galaxy-s24/aihub-qnn-npu/{precision}"]
        assert qnn["models"] == models and 0 < qnn["leave_one_model_out"]["median_ape"] < 0.3
        lo = qnn["leave_largest_out"]
        assert lo["model"] == ("repvit_m2_3@224" if precision == "fp32" else "mnv4_conv_m@224") and lo["extrapolated"]
        (x,) = lo["residuals"]
        assert x["widened_low_ms"] < x["low_ms"] < x["predicted_ms"] < x["high_ms"] < x["widened_high_ms"]
        assert lo["fitted_macs"][1] < lo["macs"] and lo["ratio"] > E.SIZE_MARGIN
    sizes = s24["leave_largest_out"]
    assert sizes["targets"] == 6 and sizes["margin"] == E.SIZE_MARGIN and sizes["all"]["rows"] == 6
    assert set(sizes["beyond_margin_fitted_interval"]) == {"rows", "coverage", "coverage_widened"}
    assert sizes["beyond_margin"]["coverage_widened"] >= sizes["beyond_margin"]["coverage"]
    # recomputed, not stored: a different corpus gives different figures
    pixel4 = next(t for t in get_profile("pixel4").targets if t.backend != "litert-xnnpack" and t.roofline)
    rows = E.training_rows(pixel4, None, published=True)
    res = E.validate_target(pixel4, rows)["leave_one_model_out"]
    assert res["median_ape"] <= 0.15 and res["spearman"] >= 0.9 and res["median_ape"] < res["baseline_median_ape"]


def test_vectorised_latency_is_the_layer_loop():
    ls = E.model_layers("mnv4_hybrid_m", 256)[2]
    for device in ("pixel6", "pixel8", "s23", "coral-usb"):
        for t in E.select_targets(get_profile(device)):
            r = replace(E.roofline_for(t), unsupported=())
            assert E.LayerArrays(ls).latency_ms(r) == pytest.approx(E.estimate_layers(ls, r).latency_ms, rel=1e-9)


def _synthetic(n_models=8, seed=0):
    """Layer lists of n small made-up models (no zoo, no torch)."""
    import random

    from deploykit.graph import Layer

    rng = random.Random(seed)
    models = {}
    for i in range(n_models):
        c = rng.choice([16, 32, 64, 96])
        ls = []
        for j in range(rng.randint(4, 12)):
            hw = rng.choice([7, 14, 28, 56]) ** 2
            ls.append(Layer(f"pw{j}", "pwconv", hw * c * c, c * c, hw * c, hw * c))
            ls.append(Layer(f"dw{j}", "dwconv", hw * c * 9, c * 9, hw * c, hw * c))
            ls.append(Layer(f"act{j}", "act", 0, 0, hw * c, hw * c))
        models[(f"m{i}", 224)] = ls
    return models


def test_cross_validation_and_intervals_on_rows_a_roofline_made(monkeypatch):
    """Exact rows are predicted exactly from the others (the fit is warm-started from one parameter fewer, so
    it does not stop in a kink of max(compute, memory)). Rows generated by a known roofline (×1.1 noise on one): leave-one-model-out recovers them, the interval
    contains the rows' ratios, and an interval never claims less than ±5%."""
    models = _synthetic()
    monkeypatch.setattr(E.layers, "model_layers", lambda m, r=None: (m, r, models[(m, r)]))
    t = next(x for x in get_profile("pixel6").targets if x.backend == "litert-xnnpack")
    truth = replace(E.roofline_for(t), peak_macs_per_s=2e11, mem_bw_bytes_per_s=1e10, dispatch_s=3e-6)
    rows = []
    for i, (key, ls) in enumerate(models.items()):
        ms = E.estimate_layers(ls, truth).latency_ms * (1.1 if i == 3 else 1.0)
        rows.append((*key, ms, "lab-a" if i % 2 else "lab-b"))
    res = E.cross_validate(t, rows)
    assert {x.split for x in res} == {"model", "source"}
    lomo = [x for x in res if x.split == "model"]
    assert len(lomo) == 8
    worst = max(lomo, key=lambda x: abs(x.log_ratio))
    assert worst.model == "m3" and float(np.median([abs(x.log_ratio) for x in lomo])) < 0.03
    lo, hi = E.interval_from(lomo)
    assert lo <= 0.95 and hi >= 1.05 and hi >= max(x.measured_ms / x.predicted_ms for x in lomo) * 0.99
    assert E.interval_from(lomo[:2]) is None
    nt, rep = E.calibrate(t, rows)
    assert rep.interval and "leave-one-source-out" in nt.roofline["interval_basis"]
    macs = [E.total_macs(ls) for ls in models.values()]
    assert nt.roofline["fitted_macs"] == [min(macs), max(macs)]  # what an estimate's size is checked against
    est = E.estimate_layers(models[("m0", 224)], E.roofline_for(nt))
    assert est.low_ms < est.latency_ms < est.high_ms and "8 rows" in est.basis


def test_conformal_interval_order_statistics():
    def res(vals):
        return [E.Residual("m", 224, "s", float(np.exp(v)), 1.0, 1.0, "model") for v in vals]

    ten = [-0.3, -0.2, -0.1, 0.0, 0.0, 0.1, 0.1, 0.2, 0.3, 0.4]
    lo, hi = E.interval_from(res(ten))  # n=10: k = floor(11·0.1) = 1, the extremes
    assert np.log(lo) == pytest.approx(-0.3) and np.log(hi) == pytest.approx(0.4)
    lo, hi = E.interval_from(res([0.1, 0.2, 0.3]))  # too few for k ≥ 1: extremes stretched by range/n
    assert np.log(hi) == pytest.approx(0.3 + 0.2 / 3) and np.log(lo) == pytest.approx(np.log(0.95))


def test_estimate_json_carries_an_interval_and_its_basis(tmp_path):
    """Issue 15's first example: RepViT on the iPhone 12 Neural Engine was 2.4-2.9× too slow; fitted on the
    RepViT authors' table it now says ~1 ms, with the interval and what it rests on."""
    r = _run("estimate", "repvit_m0_9", "repvit_m2_3", "--device", "iphone12", "--target", "coreml-ane",
             "--no-store", "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    by = {x["model"]: x for x in json.loads(r.stdout)}
    for model, published in (("repvit_m0_9", 0.9), ("repvit_m2_3", 2.3)):
        x = by[model]
        assert x["low_ms"] < x["latency_ms"] < x["high_ms"] and x["coverage"] == 0.8
        assert x["low_ms"] <= published <= x["high_ms"]
        assert "repvit-readme" in x["basis"]
    # a target never fitted says so, with the wide default
    r = _run("estimate", "repvit_m0_9", "--device", "iphone12", "--target", "coreml-cpu", "--no-store", "--json")
    (x,) = json.loads(r.stdout)
    assert x["high_ms"] == pytest.approx(4 * x["low_ms"]) and "not fitted" in x["basis"]


def test_the_estimate_table_says_per_row_whether_its_target_is_fitted_borrowed_or_datasheet_only():
    """A table whose every row said "ok" above unlabelled basis lines hid which estimates were x0.5-2 guesses."""
    r = _run("estimate", "mnv1_025", "-r", "64", "--device", "pixel8", "--no-store")
    assert r.returncode == 0, r.stderr
    status = {line.split("│")[2].strip(): line.split("│")[7].strip() for line in r.stdout.splitlines()
              if line.startswith("│")}  # fmt: skip
    # MobileNetV1-0.25 at 64 px (3.6 MMACs) is 1/20.6 of the smallest model the fitted and borrowed figures saw
    tiny = "extrapolated in size ×1/20.6"
    assert status == {"pixel8/edgetpu/int8": f"ok, {tiny}", "pixel8/litert-xnnpack/int8": f"ok, borrowed, {tiny}",
                      "pixel8/litert-gpu/fp16": f"ok, borrowed, {tiny}",
                      "pixel8/executorch-xnnpack/int8": "ok, datasheet only"}  # fmt: skip
    basis = [line for line in r.stderr.splitlines() if line.startswith("interval basis of ")]
    assert [line.split(":")[0].split()[-1] for line in basis] == list(status)  # one per target, in the table's order
    assert "borrowed from pixel6" in basis[1] and "not fitted" in basis[3]
    j = _run("estimate", "mnv1_025", "-r", "64", "--device", "pixel8", "--no-store", "--json")
    assert [x["calibration"] for x in json.loads(j.stdout)] == ["fitted", "borrowed", "borrowed", "datasheet"]


def test_the_shipped_iphone13_profile_flags_mobilevit_as_an_extrapolation():
    """Its nine Table 6 rows are convolutional: MobileViT's attention, LayerNorm and unfold/fold are costs no row
    showed it (the held-out rows find it 39-47% too fast there), and `estimate` says so."""
    r = _run("estimate", "mobilevit_xxs", "--device", "iphone13", "--target", "coreml-ane", "--no-store", "--json")
    assert r.returncode == 0, r.stderr
    (x,) = json.loads(r.stdout)
    assert x["unseen_kinds"] == ["attn_matmul", "layer_norm", "layout", "softmax"] and "extrapolated" in x["basis"]


def test_zoo_layers_are_cached_by_source(tmp_path, monkeypatch):
    """The second estimate of a model reads its layers from the cache, without counting (no torch run)."""
    import deploykit.analysis as A

    monkeypatch.setenv("DEPLOYKIT_CACHE", str(tmp_path))
    first = E.zoo_layers("mnv1_025", 128)
    monkeypatch.setattr(A, "analyze_spec", lambda *a, **k: pytest.fail("counted again"))
    assert E.zoo_layers("mnv1_025", 128) == first
    assert list(tmp_path.glob("layers-*/mnv1_025@128.json"))
    monkeypatch.setattr("deploykit.catalog.source_hash", lambda: "changed")
    with pytest.raises(pytest.fail.Exception):
        E.zoo_layers("mnv1_025", 128)


@pytest.mark.parametrize("device", ["coral-usb", "coral-devboard"])
def test_coral_profiles_reproduce_coral_benchmarks(device):
    """Coral's datasheet roofline alone said 0.5 ms for MobileNet v1/v2; Coral's own table says 2.4 / 2.6 ms.
    The profiles' per-inference cost (derived from that table, see their comments) must close the gap."""
    r = E.roofline_for(get_profile(device).targets[0])
    for model, ms in (("mnv1_100", 2.4), ("mnv2_100", 2.6)):
        est = E.estimate_layers(E.layers_from_analysis(analyze_spec(model)), r)
        assert est.latency_ms == pytest.approx(ms, rel=0.05), model
        assert est.latency_ms - r.invoke_s * 1e3 < 0.3 * ms  # the datasheet part stays what it was


def test_a_target_without_rows_borrows_its_sibling_scaled_and_says_so():
    """Same name and precision on a sibling device: peak and bandwidth scaled by the datasheet peak ratio, the
    transfer's (leave-one-device-out) interval, and a fit note naming the sibling."""
    sib = next(t for t in get_profile("s23").targets if t.backend == "litert-gpu")
    sib = replace(sib, roofline={**sib.roofline, "datasheet_peak_macs_per_s": 1e12})
    mine = replace(sib, device="other", peak_macs_per_s=2e12, roofline=None)
    residuals = [E.Residual("m", 224, "s", ms, 1.0, 1.0, "device") for ms in (0.7, 0.8, 0.9, 1.0, 1.1, 1.3, 1.5)]
    nt, rep = E.borrow(mine, sib, residuals)
    assert rep.scale == pytest.approx(2.0)
    assert nt.peak_macs_per_s == pytest.approx(2 * sib.peak_macs_per_s, rel=1e-3)
    assert nt.mem_bw_bytes_per_s == pytest.approx(2 * sib.mem_bw_bytes_per_s, rel=1e-3)
    assert "borrowed from s23/litert-gpu/fp16" in nt.roofline["fit"] and "paper_target" not in nt.roofline
    assert nt.roofline["calibration"] == "borrowed" != sib.roofline["calibration"]
    lo, hi = nt.roofline["interval"]
    assert lo <= 0.7 and hi >= 1.5 and "leave-one-device-out" in nt.roofline["interval_basis"]
    # the datasheet peak survives a fit that moves the profile's, so a later borrow still scales by datasheets
    assert E.datasheet_peak(nt) == 2e12


def test_a_targets_calibration_is_the_field_its_fit_wrote_and_a_profile_without_one_reads_its_fit_note():
    """`--fit`, borrow and anchor write `calibration` into [targets.roofline]; every shipped fitted target carries
    the one its fit note describes. An estimate reads the field, not the note's wording (an anchored target is
    "borrowed" in an estimate's word); a profile written before the field falls back to the note."""
    shipped = [t for p in load_profiles().values() for t in p.targets if (t.roofline or {}).get("fit")]
    assert shipped and all(t.roofline["calibration"] == E.Calibration.of_note(t.roofline["fit"]) for t in shipped)
    assert {t.roofline["calibration"] for t in shipped} == {"fitted", "borrowed", "anchored"}
    fitted = next(t for t in get_profile("pixel8").targets if t.roofline.get("calibration") == "fitted")
    layers = E.layers_from_analysis(analyze_spec("mnv1_025", 128))

    def says(roofline):
        return E.estimate_layers(layers, E.roofline_for(replace(fitted, roofline=roofline))).to_dict()["calibration"]

    assert says(fitted.roofline) == "fitted"
    assert says({**fitted.roofline, "calibration": "anchored"}) == "borrowed"  # the field, whatever the note says
    old = {k: v for k, v in fitted.roofline.items() if k != "calibration"}
    assert says(old) == "fitted" and says({**old, "fit": f"x{E.ANCHORED_NOTE} y"}) == "borrowed"
    assert says({k: v for k, v in old.items() if k != "fit"}) == "datasheet"
    with pytest.raises(DeploykitError, match="calibration 'guessed'"):
        says({**fitted.roofline, "calibration": "guessed"})


def test_the_shipped_iphone14pro_and_15pro_profiles_are_the_iphone13_fit_borrowed_and_scored_on_apples_rows():
    """A source measuring a device deploykit lacked (Apple's coremltools guide: iPhone 14 Pro, 15 Pro) added its
    profile: the Neural Engine target is the iPhone 13's fit scaled by datasheet peaks (regenerated here, so the
    shipped file cannot drift from `--fit --published`), and its held-out rows are scored on it, not fitted."""
    from deploykit.devices import load_profiles

    profiles = load_profiles()
    for device, n in (("iphone14pro", 2), ("iphone15pro", 1)):
        prof = profiles[device]
        t = next(t for t in prof.targets if t.backend == "coreml-ane")
        again, rep = E.transfer(t, prof, profiles)
        assert rep.borrowed_from == "iphone13/coreml-ane/fp16" and t.roofline["fit"].startswith("borrowed from")
        # the interval comes from least-squares fits of sibling rows: a newer SciPy/NumPy moves it by about 1%
        # (0.577 -> 0.569 for the iPhone 14 Pro's low factor between two fresh venvs); drift beyond that is a change
        assert again.peak_macs_per_s == t.peak_macs_per_s
        assert again.roofline["interval"] == pytest.approx(t.roofline["interval"], rel=0.02)
        held = E.heldout_target(t)
        assert held["rows"] == n and held["sources"] == ["coremltools-docs"]
        assert E.training_rows(t, published=True) == []  # Apple's rows never reach a fit


def test_a_phones_cpu_and_gpu_targets_borrow_too_with_the_interval_of_cross_vendor_transfers():
    """Borrowing is not only for AI Hub's named targets: the Pixel 4's GPU target (no rows) takes the Pixel 7
    GPU's fit (the one calibrated Google GPU). A family of one sibling leaves no leave-one-device-out residuals,
    so the interval comes from the same target kind on devices of any vendor (Pixel 7 ↔ Galaxy S23 GPUs), and the
    basis says so; without such a pool it says ×0.5-2 is assumed."""
    profiles = load_profiles()
    pixel4 = profiles["pixel4"]
    gpu = next(t for t in pixel4.targets if t.backend == "litert-gpu")
    raw = replace(gpu, peak_macs_per_s=E.datasheet_peak(gpu), roofline=None)
    assert not E.training_rows(raw, None, published=True)
    nt, rep = E.transfer(raw, pixel4, profiles)
    assert rep.borrowed_from == "pixel7/litert-gpu/fp16"
    assert "same target on devices of any vendor" in nt.roofline["interval_basis"]
    residuals, where = E.transfer_residuals(raw, pixel4, profiles)
    assert len(residuals) == 22 and where.startswith("same target")  # 11 rows each of the Pixel 7 and the S23
    lo, hi = nt.roofline["interval"]
    assert 0.4 < lo < 1 < hi < 2.5 and (lo, hi) != E.UNCALIBRATED
    # the shipped profile is this transfer (regenerated by `estimate --fit --published --write`)
    shipped = next(t for t in pixel4.targets if t.backend == "litert-gpu")
    assert shipped.roofline["fit"] == nt.roofline["fit"] and shipped.roofline["interval"] == pytest.approx([lo, hi])
    # a vendor-only family of one with no other vendor's sibling: no residuals, the wide default, said so
    no_pool = {n: p for n, p in profiles.items() if n != "s23"}
    nt2, _ = E.transfer(raw, pixel4, no_pool)
    assert tuple(nt2.roofline["interval"]) == E.UNCALIBRATED and "×0.5-2 assumed" in nt2.roofline["interval_basis"]


def test_refits_and_cross_validation_start_from_the_datasheet_not_the_shipped_fit():
    """The shipped profile's fitted figures (fitted on every row) never reach a cross-validation, which would
    otherwise leak the left-out row into its own prediction: a target whose fitted figures are wildly different
    but whose datasheet figures are the same cross-validates and refits to the same numbers. A refit leaves no
    stale fitted field behind (an invoke_s the new fit does not move is dropped, not kept)."""
    ane = next(t for t in get_profile("iphone12").targets if t.backend == "coreml-ane")
    assert ane.roofline["datasheet_peak_macs_per_s"] == 5.5e12 and ane.roofline["datasheet_mem_bw_bytes_per_s"]
    rows = E.training_rows(ane, None, published=True)
    stale = {"dispatch_s": 1e-3, "invoke_s": 0.05, "efficiency": {"dwconv": 0.01}}
    wild = replace(ane, peak_macs_per_s=1e16, mem_bw_bytes_per_s=1e9, roofline={**ane.roofline, **stale})
    assert E.estimate_layers(E.model_layers("mnv2_100", 224)[2], E.roofline_for(wild)).latency_ms > 50
    same = [x.predicted_ms for x in E.cross_validate(ane, rows)]
    assert [x.predicted_ms for x in E.cross_validate(wild, rows)] == pytest.approx(same, rel=1e-6)
    fitted, rep = E.calibrate(wild, rows)
    assert "invoke_s" not in rep.free and "invoke_s" not in fitted.roofline
    assert fitted.peak_macs_per_s == pytest.approx(ane.peak_macs_per_s, rel=1e-3)  # what the shipped fit says
    assert fitted.roofline["datasheet_peak_macs_per_s"] == 5.5e12  # and the datasheet stays beside it


def test_npu_fits_keep_their_peak_physical():
    """On the Galaxy NPUs, whose small models all run in about the same time, the fitted peak once ran to its
    bound (1e17 MAC/s, meaning nothing). With the per-op cost freed first it stays within a decade of the
    vendor's figure on every shipped NPU target, and the fit explains its rows."""
    fitted = 0
    for device in ("galaxy-s22", "galaxy-s24", "galaxy-s25", "galaxy-s26", "iphone13", "pixel8", "snapdragon-x-elite"):
        for t in get_profile(device).targets:
            if t.processor != "npu" or "fit" not in (t.roofline or {}):
                continue
            fitted += 1
            assert 0.1 <= t.peak_macs_per_s / E.datasheet_peak(t) <= 10, t.id
    assert fitted >= 13


def test_fit_write_keeps_every_target_and_writes_reach_only_where_it_differs(tmp_path):
    """`estimate --fit --target X --write DIR` writes the whole profile back, the targets it did not fit as they
    were (a profile of one target would lose the rest), and a per-target reach only where a target has its own."""
    r = _run("estimate", "--fit", "--published", "--device", "s23", "--target", "s23_cpu", "--write", str(tmp_path))
    assert r.returncode == 0, r.stderr
    orig, again = get_profile("s23"), load_profile(tmp_path / "s23.toml")
    assert [t.id for t in again.targets] == [t.id for t in orig.targets]
    assert [t.reach for t in again.targets] == [t.reach for t in orig.targets]
    text = (tmp_path / "s23.toml").read_text()
    assert 'reach = "adb"' not in text.split("[[targets]]", 1)[1] and 'reach = "aihub"' in text


def test_a_ridge_sweep_for_a_device_uses_each_targets_own_peak_and_precision(tmp_path):
    """`estimate --sweep --device D` ignored the device (always 1 T MAC/s, int8 bytes); now one sweep per target."""
    from deploykit.devices import get_profile
    from tests.conftest import EXE

    def sweep(*args):
        r = subprocess.run(
            [EXE, "estimate", "mnv1_025", "-r", "64", "--sweep", "--json", *args], capture_output=True, text=True
        )
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    [generic] = sweep()
    assert "target" not in generic  # unchanged without a device
    rows = sweep("--device", "pixel8")
    targets = E.select_targets(get_profile("pixel8"))
    assert [r["target"] for r in rows] == [t.id for t in targets]
    for row, t in zip(rows, targets, strict=True):
        assert row["peak_macs_per_s"] == E.roofline_for(t).peak_macs_per_s and row["precision"] == t.precision
        assert row["sweep"][0]["latency_ms"] != generic["sweep"][0]["latency_ms"]  # compute-only at its own peak
    [gpu] = sweep("--device", "pixel8", "--target", "litert-gpu")
    assert gpu["target"] == "pixel8/litert-gpu/fp16"


# ---------- per-layer rows (`estimate fit --layers`) ----------


def _layer_table(model: str, res: int, layers, truth, fuse: dict[int, int] | None = None) -> dict:
    """A per-layer table in the shape deploykit/profiling/join.py stores, each op timed by ``truth``; ``fuse``:
    layer index → the layer whose op ran it (its time counted there, 0 ms of its own)."""
    fuse = fuse or {}
    times = E.LayerArrays(layers).times_s(truth) * 1e3
    rows = []
    for i, x in enumerate(layers):
        if i in fuse:
            rows.append({"index": i, "layer": x.name, "kind": x.kind, "macs": x.macs, "measured_ms": 0.0,
                         "match": "fused", "fused_into": layers[fuse[i]].name})  # fmt: skip
        else:
            ms = times[i] + sum(times[j] for j, k in fuse.items() if k == i)
            rows.append({"index": i, "layer": x.name, "kind": x.kind, "macs": x.macs, "measured_ms": float(ms),
                         "match": "order", "fused_into": None})  # fmt: skip
    return {"format": 1, "model": model, "resolution": res, "layers": len(rows), "rows": rows}


def _kinds_truth(t):
    """A roofline that runs depthwise at 5% and pointwise at 60% of its peak: not the class's 25% and 100%."""
    return replace(E.datasheet_roofline(t), peak_macs_per_s=2e11, mem_bw_bytes_per_s=2e10, dispatch_s=3e-6,
                   efficiency={"dwconv": 0.05, "pwconv": 0.6})  # fmt: skip


def test_per_layer_rows_teach_each_op_kinds_efficiency_and_never_the_left_out_model(monkeypatch):
    """Per-layer times a known roofline made give back its efficiency per op kind (relative to the fastest kind)
    and its bandwidth; a layer fused into another's op is priced with it. With that shape (efficiencies and ridge),
    leave-one-model-out on whole-model rows recovers them exactly, where a two-parameter fit from the class's
    depthwise efficiency (5× off) and the datasheet's ridge misses by over 1%; and no fold's shape ever sees the
    per-layer rows of the model it predicts."""
    models = _synthetic(6)
    monkeypatch.setattr(E.layers, "model_layers", lambda m, r=None: (m, r, models[(m, r)]))
    t = next(x for x in get_profile("pixel6").targets if x.backend == "litert-xnnpack")
    truth = _kinds_truth(t)
    tables = [E.table_rows(m, r, _layer_table(m, r, ls, truth, {2: 0} if m == "m0" else None))
              for (m, r), ls in models.items()]  # fmt: skip
    assert tables[0].groups[0] == (
        [0, 2],
        pytest.approx(float(E.LayerArrays(models[("m0", 224)]).times_s(truth)[[0, 2]].sum() * 1e3)),
    )
    assert all(2 not in idx for idx, _ in tables[0].groups[1:])  # the fused act is no op of its own
    fitted = E.fit_layer_efficiency(E.datasheet_roofline(t), tables)
    assert fitted.efficiency["pwconv"] == 1.0 and fitted.efficiency["dwconv"] == pytest.approx(0.05 / 0.6, rel=0.1)
    assert fitted.mem_bw_bytes_per_s == pytest.approx(2e10, rel=0.1) and fitted.rms_log_error < 0.02
    # rows of another model, or of another count of the analysis, are not this model's table
    assert E.table_rows("m1", 224, _layer_table("m0", 224, models[("m0", 224)], truth)) is None

    rows = [(m, r, E.estimate_layers(ls, truth).latency_ms, "measured") for (m, r), ls in models.items()]
    seen = []
    real = E.intervals.with_layer_fit
    monkeypatch.setattr(
        E.intervals, "with_layer_fit", lambda base, tbs: seen.append({tb.model for tb in tbs}) or real(base, tbs)
    )
    with_ = E.cross_validate(t, rows, tables)
    without = E.cross_validate(t, rows)
    assert [x.model for x in with_] == [m for m, *_ in rows] and seen == [
        {m for m, *_ in rows} - {x.model} for x in with_
    ]
    err = lambda res: float(np.median([abs(x.log_ratio) for x in res]))  # noqa: E731
    assert err(with_) < 0.002 and err(without) > 0.01
    nt, rep = E.calibrate(t, rows, tables)
    assert rep.layer_rows == sum(len(tb.groups) for tb in tables) and len(rep.layer_models) == 6
    # six models free the bandwidth too; on a shape from per-layer rows only the scale moves: peak, per-op cost
    assert E.default_free(t, 6)[2] == "mem_bw_bytes_per_s" and rep.free == ["peak_macs_per_s", "dispatch_s"]
    assert nt.roofline["efficiency"]["dwconv"] == pytest.approx(0.05 / 0.6, rel=0.1)
    assert "ridge from 6 per-layer rows" not in nt.roofline["fit"] and "of 6 profiled model(s)" in nt.roofline["fit"]


def test_estimate_fit_layers_reads_the_tables_profile_stored(monkeypatch, tmp_path):
    """`estimate fit --layers` takes a target's per-layer tables from the rows `deploykit profile` stored (the
    latest per model); without the flag the fit is the whole-model one, and a target without tables says so."""
    from deploykit.measurement import Measurement
    from deploykit.store import Store

    models = _synthetic(4, seed=1)
    monkeypatch.setattr(E.layers, "model_layers", lambda m, r=None: (m, r, models[(m, r)]))
    t, et = (next(x for x in get_profile("host").targets if x.id == f"host/{b}/fp32")
             for b in ("onnxruntime", "executorch-xnnpack"))  # fmt: skip
    truth = _kinds_truth(t)
    stale = replace(truth, efficiency={})  # an older profile's table: every kind at peak
    db = tmp_path / "r.db"
    with Store(db) as s:
        for (m, r), ls in models.items():
            ms = E.estimate_layers(ls, truth).latency_ms
            for table in (_layer_table(m, r, ls, stale), _layer_table(m, r, ls, truth)):
                s.add(Measurement.for_target(t, m, r, median_ms=ms, details={"layers_measured": table}))
            s.add(Measurement.for_target(et, m, r, median_ms=ms))  # whole-model rows only
    args = ("estimate", "fit", "--device", "host", "--db", str(db))
    r = _run(*args, "--target", t.id, "--layers", "--json")
    assert r.returncode == 0, r.stderr
    (fit,) = json.loads(r.stdout)["fits"]
    assert fit["layer_rows"] == sum(len(ls) for ls in models.values())
    assert fit["layer_models"] == [f"m{i}@224" for i in range(4)]
    assert fit["efficiency"]["dwconv"] == pytest.approx(0.05 / 0.6, rel=0.1)
    (plain,) = json.loads(_run(*args, "--target", t.id, "--json").stdout)["fits"]
    assert plain["layer_rows"] == 0 and plain["efficiency"] == {"dwconv": 0.25}
    other = _run(*args, "--target", et.id, "--layers")
    assert other.returncode == 0 and f"{et.id}: no per-layer tables in {db}" in other.stderr
