"""The corpus of published latencies: every row cited and matched to a zoo model, and the AI Hub extraction."""

from __future__ import annotations

import importlib.util
import statistics
import zipfile
from pathlib import Path

import pytest
import yaml

from deploykit import corpus
from deploykit.devices import get_profile
from deploykit.zoo import get_spec

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("extract_aihub_perf", ROOT / "scripts" / "extract_aihub_perf.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_row_is_a_cited_zoo_model():
    rows = corpus.rows()
    by_source: dict[str, int] = {}
    for r in rows:
        spec = get_spec(r.model)  # raises on a name the zoo lacks
        spec.check_resolution(r.resolution)
        by_source[r.source] = by_source.get(r.source, 0) + 1
        assert r.ref and r.method and r.runtime and r.compute_unit, r
        if r.source == "aihub":
            assert "job j" in r.ref and "perf.yaml" in r.ref, r.ref
    # MobileNetV4 Table 6 in full (73 cells of zoo models), RepViT's five, Coral's two models on two devices,
    # and AI Hub's perf.yaml rows (qai-hub-models 0.65.0: MobileNet-v2/v3-L/v3-S/v4-M, RepViT-M2.3)
    assert by_source["mnv4-paper"] == 73 and by_source["repvit-readme"] == 5 and by_source["coral-benchmarks"] == 4
    assert by_source["aihub"] >= 330
    # AI Hub lists a proxied board's figures under the same job ids as the device it copies: each job once
    jobs = [r.ref.rsplit("job ", 1)[1] for r in rows if r.source == "aihub"]
    assert len(jobs) == len(set(jobs))
    # independent labs, held out of every fit: iFormer's iPhone 13 table (11 zoo models), StarNet's, SwiftFormer's
    # and the MobileViT papers' iPhone rows, SoftServe's Coral Dev Board, TFLite's Pixel 4 GPU row, EfficientFormer
    held = {r.source for r in rows if r.split == "heldout"}
    assert {"iformer-paper", "starnet-paper", "swiftformer-paper", "softserve-coral-eval", "coremltools-docs"} <= held
    assert by_source["iformer-paper"] == 11 and held.isdisjoint({r.source for r in rows if r.split == "fit"})
    assert len({(r.model, r.resolution, r.device, r.target, r.precision, r.source) for r in rows}) == len(rows)


def test_rows_match_the_targets_they_measure():
    s23 = {(t.name or t.backend) + "/" + t.precision: t for t in get_profile("s23").targets}
    cpu = corpus.rows_for(s23["litert-xnnpack/int8"])
    assert len(cpu) == 11 and {r.target for r in cpu} == {"s23_cpu"}
    assert corpus.rows_for(s23["aihub-litert-cpu/int8"]) == []  # same backend and precision, another target
    s24 = {(t.name or t.backend) + "/" + t.precision: t for t in get_profile("galaxy-s24").targets}
    npu = corpus.rows_for(s24["aihub-litert-npu/fp32"])
    assert {r.model for r in npu} == {"mnv2_100", "mnv3_large_100", "mnv3_small_100", "mnv4_conv_m", "repvit_m2_3"}
    ane12 = next(t for t in get_profile("iphone12").targets if t.backend == "coreml-ane")
    assert sorted(r.latency_ms for r in corpus.rows_for(ane12)) == [0.9, 1.0, 1.1, 1.5, 2.3]
    # a device the corpus measures gets a profile: the X Elite laptop's ONNX Runtime NPU rows fit its targets
    xe = {(t.name or t.backend) + "/" + t.precision: t for t in get_profile("snapdragon-x-elite").targets}
    assert len(corpus.rows_for(xe["aihub-onnx-npu/fp32"])) == 5 and len(corpus.rows_for(xe["aihub-onnx-npu/int8"])) == 3
    assert "on 5 aihub row(s)" in xe["aihub-onnx-npu/fp32"].roofline["fit"]
    cpu12 = next(t for t in get_profile("iphone12").targets if t.backend == "coreml-cpu")
    assert corpus.rows_for(cpu12) == []  # no published CPU rows: nothing borrowed silently


def test_every_device_the_corpus_measures_on_a_deploykit_runtime_has_a_fitted_profile():
    """A source that measures a device deploykit lacks adds its profile: every device with AI Hub rows on LiteRT
    (QNN delegate), ONNX Runtime (QNN execution provider) or AI Hub's own QNN runtime in fp32 or int8 has one, and
    each such target is fitted on its rows (a target with one model's rows on a calibrated sibling's shape scaled
    to them). AI Hub's w8a16 rows have no deploykit precision: no target, nothing fitted."""
    from deploykit.devices import load_profiles

    profiles = load_profiles()
    wanted = {
        (r.device, r.target, r.precision)
        for r in corpus.rows()
        if r.source == "aihub"
        and r.target in ("aihub-litert-npu", "aihub-onnx-npu", "aihub-qnn-npu")
        and r.precision in ("fp32", "int8")
    }
    assert len({d for d, *_ in wanted}) >= 15  # AI Hub proxies (copies of another device's jobs) are not rows
    qnn = {(d, p) for d, name, p in wanted if name == "aihub-qnn-npu"}
    assert len(qnn) == 27 and len({d for d, _ in qnn}) == 15  # 102 fp32/int8 rows of AI Hub's QNN runtime
    assert not any(t.precision.startswith("w8a16") for p in profiles.values() for t in p.targets)
    for device, name, precision in sorted(wanted):
        assert device in profiles, device
        t = next((t for t in profiles[device].targets if (t.name, t.precision) == (name, precision)), None)
        assert t is not None, (device, name, precision)
        n = len(corpus.rows_for(t))
        fit = (t.roofline or {}).get("fit", "")
        assert n >= 1 and (f"on {n} aihub row(s)" in fit or f"to {n} aihub row(s)" in fit), (t.id, fit)
        assert t.roofline.get("interval"), t.id


def _fake_wheel(tmp_path: Path) -> Path:
    perf = {
        "precisions": {
            "float": {
                "components": {
                    "MobileNet-v2": {
                        "performance_metrics": {
                            "Samsung Galaxy S24": {
                                "tflite": {"inference_time_milliseconds": 0.5, "job_id": "jabc", "job_status": "Passed",
                                           "layer_counts": {"npu": 70, "total": 72}, "primary_compute_unit": "NPU",
                                           "tool_versions": {"qairt": "2.5"}},
                                "onnx": {"inference_time_milliseconds": 9.9, "job_id": "jfail",
                                         "job_status": "Failed"},
                            },
                            "Dragonwing Q-9 (Proxy)": {
                                "qnn_dlc": {"inference_time_milliseconds": 0.7, "job_id": "jdef",
                                            "job_status": "Passed", "primary_compute_unit": "NPU"},
                            },
                            "Board Copying The S24": {
                                "tflite": {"inference_time_milliseconds": 0.5, "job_id": "jabc", "job_status": "Passed",
                                           "primary_compute_unit": "NPU"},
                            },
                        }
                    }
                }
            }
        }
    }  # fmt: skip
    wheel = tmp_path / "qai_hub_models-9.9.9-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for mid in _script().MODELS:
            z.writestr(f"qai_hub_models/models/{mid}/perf.yaml", yaml.safe_dump(perf if mid == "mobilenet_v2" else
                       {"precisions": {}}))  # fmt: skip
            z.writestr(f"qai_hub_models/models/{mid}/manifest.yaml", "technical_details: {}\n")
        z.writestr("qai_hub_models/devices_and_chipsets.yaml", yaml.safe_dump({"devices": {
            "Board Copying The S24": {"chipset": "b", "reference_chipset": "qualcomm-snapdragon-8gen3"},
            "Samsung Galaxy S24": {"chipset": "qualcomm-snapdragon-8gen3"}}}))  # fmt: skip
    return wheel


def test_extraction_reads_perf_yaml_from_the_wheel(tmp_path, monkeypatch):
    mod = _script()
    wheel = _fake_wheel(tmp_path)
    version, perf, manifest = mod.read_wheel(wheel)
    proxies = mod.proxied_devices(wheel)
    assert proxies == {"Board Copying The S24": "qualcomm-snapdragon-8gen3"}
    assert len(mod.rows_of("mobilenet_v2", perf["mobilenet_v2"], version)) == 3  # the proxy's copy among them
    rows = mod.rows_of("mobilenet_v2", perf["mobilenet_v2"], version, proxies)
    assert sorted((r["device"], r["target"], r["precision"], r["latency_ms"]) for r in rows) == [
        ("aihub-dragonwing-q-9-proxy", "aihub-qnn-npu", "fp32", 0.7),
        ("galaxy-s24", "aihub-litert-npu", "fp32", 0.5),
    ]  # the failed job is left out
    s24 = next(r for r in rows if r["device"] == "galaxy-s24")
    assert "job jabc" in s24["ref"] and "qai-hub-models 9.9.9" in s24["ref"]
    assert "70/72 layers on npu" in s24["method"]
    # --write replaces AI Hub's rows and keeps every other source's
    copy = tmp_path / "corpus.csv"
    copy.write_text((ROOT / "deploykit" / "reference" / "published_latencies.csv").read_text())
    monkeypatch.setattr(mod, "CORPUS", copy)
    mod.write_corpus(rows)
    text = copy.read_text()
    assert text.startswith("#") and text.count("aihub,qai-hub-models") == 2
    assert text.count(",mnv4-paper,") == 73 and "jdef" in text


def test_a_model_is_matched_only_once_its_parameters_and_macs_are_checked(monkeypatch):
    """A manifest count or upstream MACs more than 1% off the zoo's is a mismatch; a model whose upstream source
    was not given is unchecked; both are left out."""
    import types

    import deploykit.analysis as A

    mod = _script()
    # the zoo's counts are stubbed at what analysis gives MobileNetV3-Small (2.54 M deployed, 56.5 M MACs): the
    # decision is under test here, the counting in test_analysis.py
    zoo = types.SimpleNamespace(params=2_542_856, macs=56_510_400)
    monkeypatch.setattr(A, "analyze_spec", lambda *a, **k: zoo)
    upstream_macs = {"macs": 56_510_400}
    monkeypatch.setattr(A, "analyze", lambda model, res: types.SimpleNamespace(macs=upstream_macs["macs"]))
    manifest = {"technical_details": {"Number of parameters": "2.54M"}}
    status, note = mod.check_definition("mobilenet_v3_small", manifest, None)
    assert status == "unchecked" and "not checked" in note
    monkeypatch.setattr(mod, "upstream_model", lambda *a: object())
    status, note = mod.check_definition("mobilenet_v3_small", manifest, None)
    assert status == "ok", note
    upstream_macs["macs"] = 60_000_000  # 6% more than the zoo's
    status, note = mod.check_definition("mobilenet_v3_small", manifest, None)
    assert status == "mismatch" and "MACs 60.0M vs zoo 56.5M" in note
    status, note = mod.check_definition("mobilenet_v3_small", {"technical_details": {"Number of parameters": "3.0M"}},
                                        None)  # fmt: skip
    assert status == "mismatch" and "params 2.54M vs manifest 3.0M" in note


def test_torchvision_definitions_are_built_from_the_wheel_without_installing_it(tmp_path):
    """MobileNet-v3's upstream is torchvision's own file, read from the downloaded wheel with its package imports
    (ops.misc, utils, the weights API) resolved there; nothing named torchvision stays imported afterwards."""
    import sys

    mod = _script()
    wheel = tmp_path / "torchvision-0.0.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for rel in set(mod._TV_FILES) - {"ops/misc.py", "models/mobilenetv3.py"}:
            z.writestr(f"torchvision/{rel}", "")
        z.writestr(
            "torchvision/ops/misc.py",
            "import torch\nfrom ..utils import _log_api_usage_once, _make_ntuple\n"
            "def conv(c):\n    _log_api_usage_once(None)\n    return torch.nn.Conv2d(3, c, _make_ntuple(3, 2))\n",
        )
        z.writestr("torchvision/models/mobilenetv3.py", "from ..ops.misc import conv\n"
                   "from ..transforms._presets import ImageClassification\n"
                   "def mobilenet_v3_small(weights=None):\n    assert weights is None\n    return conv(8)\n")  # fmt: skip
    net = mod.torchvision_model(wheel, "mobilenet_v3_small")
    assert net.out_channels == 8 and net.kernel_size == (3, 3) and not net.training
    assert not any(m == "torchvision" or m.startswith("torchvision.") for m in sys.modules)


@pytest.mark.parametrize("bad", ["0", "-1"])
def test_a_bad_corpus_row_is_refused(monkeypatch, bad):
    from deploykit.errors import DeploykitError

    text = (ROOT / "deploykit" / "reference" / "published_latencies.csv").read_text()
    lines = [x for x in text.splitlines() if x and not x.startswith("#")]
    header, first = lines[0], lines[1].split(",")
    first[7] = bad
    fake = header + "\n" + ",".join(first) + "\n"

    class Res:
        def joinpath(self, _):
            return self

        def read_text(self):
            return fake

    monkeypatch.setattr(corpus.resources, "files", lambda _: Res())
    corpus.rows.cache_clear()
    try:
        with pytest.raises(DeploykitError, match="positive latency"):
            corpus.rows()
    finally:
        corpus.rows.cache_clear()


def test_heldout_rows_never_reach_a_fit_and_are_scored_on_the_shipped_profile(monkeypatch):
    """Rows with split=heldout (other labs' measurements) are kept out of every fit: the training rows and the
    fitted parameters are the same with or without them, even with a wild one added, while the held-out
    figures (`estimate --validate`) score the shipped profile, not refitted, on exactly those rows."""
    from dataclasses import replace

    from deploykit import estimator as E

    ane12 = next(t for t in get_profile("iphone12").targets if t.backend == "coreml-ane")
    real = corpus.rows()
    held = corpus.rows_for(ane12, "heldout")
    assert held and {r.source for r in held}.isdisjoint({r.source for r in real if r.split == "fit"})
    rows = E.training_rows(ane12, None, published=True)
    before = E.fit_target(ane12, rows)
    wild = replace(held[0], model="mnv2_050", latency_ms=50.0, source="wild")  # 100x slower than anything fitted
    monkeypatch.setattr(corpus, "rows", lambda: (*real, wild))
    assert E.training_rows(ane12, None, published=True) == rows
    assert E.fit_target(ane12, rows).roofline == before.roofline
    with_wild = E.fit_target(ane12, [*rows, (wild.model, wild.resolution, wild.latency_ms, wild.source)])
    assert with_wild.roofline != before.roofline  # had it reached the fit, the fit would have moved

    got = E.heldout_target(ane12)
    assert got["rows"] == len(held) + 1 and "wild" in got["sources"]
    assert got["fitted_on"] == ane12.roofline["fit"] and "repvit-readme" in got["fitted_on"]
    est = E.estimate_layers(E.model_layers(held[0].model, held[0].resolution)[2], E.roofline_for(ane12))
    first = got["residuals"][0]
    assert first["predicted_ms"] == pytest.approx(est.latency_ms) and first["low_ms"] == pytest.approx(est.low_ms)
    apes = [abs(x["predicted_ms"] / x["measured_ms"] - 1) for x in got["residuals"]]
    assert got["median_ape"] == pytest.approx(statistics.median(apes))
    assert 0.0 <= got["interval_coverage"] <= 1.0
    assert E.validate_target(ane12, rows)["heldout"]["rows"] == len(held) + 1
    monkeypatch.undo()
    assert E.heldout_target(ane12)["rows"] == len(held)
