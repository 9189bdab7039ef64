"""The Apple paths, tested at their boundary: no Mac here, so ``platform.system()`` and coremltools are faked
(a stand-in module with the calls deploykit makes: ``MLModel(path, compute_units=…).predict``, ``ComputeUnit``).
What this proves is deploykit's side (reachability, targets per compute unit, the harness, the stored rows);
that Core ML itself runs is checked by .github/workflows/macos.yml on a macOS runner, never here."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import types

import numpy as np
import pytest

from deploykit.errors import DeploykitError
from deploykit.store import Store
from tests.conftest import EXE


@pytest.fixture()
def fake_mac(monkeypatch):
    calls = []

    class MLModel:
        def __init__(self, path, compute_units=None):
            calls.append((str(path), compute_units))

        def predict(self, inputs):
            (x,) = inputs.values()
            assert x.shape == (1, 3, 64, 64) and x.dtype == np.float32
            return {"logits": np.ones((1, 10), np.float32)}

    ct = types.ModuleType("coremltools")
    ct.__version__ = "9.0-fake"
    ct.models = types.SimpleNamespace(MLModel=MLModel)
    ct.ComputeUnit = types.SimpleNamespace(
        CPU_ONLY="CPU_ONLY", CPU_AND_GPU="CPU_AND_GPU", CPU_AND_NE="CPU_AND_NE", ALL="ALL"
    )
    monkeypatch.setitem(sys.modules, "coremltools", ct)
    monkeypatch.setattr(platform, "system", lambda: "Darwin")
    from deploykit.backends import coreml

    monkeypatch.setattr(coreml, "mac_model", lambda: "Mac14,2")
    return calls


@pytest.fixture()
def mlpackage(tmp_path):
    from deploykit.artifact import Manifest, TensorSpec, write_manifest

    pkg = tmp_path / "m.mlpackage"
    pkg.mkdir()
    (pkg / "Manifest.json").write_text("{}")
    io = [TensorSpec("input", [1, 3, 64, 64], "float32")], [TensorSpec("logits", [1, 10], "float32", "NC")]
    write_manifest(
        pkg, Manifest({"name": "mnv1_025", "resolution": 64}, "coreml", "fp16", pkg.name, *io, {}, {}, "", sha256="ab")
    )
    return pkg


def test_a_mac_is_reachable_with_a_target_per_compute_unit(fake_mac, mlpackage, tmp_path):
    from deploykit.bench import BenchRequest, run_bench
    from deploykit.devices import get_profile, reachability
    from deploykit.measurement import Method

    mac = get_profile("mac")
    reach = reachability(mac)
    assert reach.reachable and not reach.unavailable
    assert {t.backend for t in mac.targets} == {"coreml-cpu", "coreml-gpu", "coreml-ane", "coreml-all"}
    req = BenchRequest(
        "mac", [], artifact=mlpackage, method=Method(warmup=1, repetitions=2, runs=5), db=tmp_path / "r.db"
    )
    done = run_bench(req)
    assert [m.status for m in done] == ["ok"] * 4, [m.error for m in done]
    assert sorted(u for _, u in fake_mac) == ["ALL", "CPU_AND_GPU", "CPU_AND_NE", "CPU_ONLY"]
    ane = next(m for m in done if m.backend == "coreml-ane")
    assert (
        ane.env["compute_units"] == "CPU_AND_NE" and ane.stats.n == 10 and ane.env["runtime"] == "coremltools 9.0-fake"
    )
    assert "compute_plan" in ane.delegate  # the fake has no MLComputePlan: said, not faked


def test_iphones_stay_estimate_only_and_say_how_to_measure():
    from deploykit.devices import get_profile, reachability

    r = reachability(get_profile("iphone13"))
    assert not r.reachable and "Xcode" in r.how and "results import" in r.how


def test_off_macos_core_ml_says_so(mlpackage):
    if platform.system() == "Darwin":
        pytest.skip("this is a Mac")
    from deploykit.exporters.base import get

    with pytest.raises(DeploykitError, match="only on macOS"):
        get("coreml").open_session(mlpackage, None)


def test_results_import_of_xcode_numbers(tmp_path):
    db = tmp_path / "r.db"
    csv = tmp_path / "xcode.csv"
    csv.write_text(
        "device,model,compute_unit,latency_ms,tool,date\n"
        "iphone12,repvit_m0_9,Neural Engine,0.92,Xcode 16 Core ML performance report,2026-11-20\n"
        "iphone12,mobilenetv4_conv_small,CPU_ONLY,2.5,Xcode 16 Core ML performance report,2026-11-20\n"
    )
    r = subprocess.run([EXE, "results", "import", str(csv), "--db", str(db), "--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [(m["model"], m["target"]) for m in rows] == [
        ("repvit_m0_9", "iphone12/coreml-ane/fp16"),
        ("mnv4_conv_s", "iphone12/coreml-cpu/fp16"),  # a timm name resolves to the zoo name
    ]
    with Store(db) as s:
        stored = s.query()
    assert {m.provenance for m in stored} == {"measured"} and stored[0].env["tool"].startswith("Xcode")
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "device,model,compute_unit,latency_ms\niphone12,repvit_m0_9,CPU_ONLY,1.0\niphone12,repvit_m0_9,ANE,-3\n"
    )
    r = subprocess.run([EXE, "results", "import", str(bad), "--db", str(db)], capture_output=True, text=True)
    assert r.returncode == 2 and "bad.csv row 3" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    with Store(db) as s:
        assert s.count() == 2  # all or nothing


@pytest.mark.skipif(platform.system() != "Darwin", reason="Core ML predicts only on macOS (runs in the macOS workflow)")
def test_real_core_ml_numerics_and_benchmark_on_this_mac(tmp_path):
    """On a real Mac (the macOS workflow): a Core ML export is verified numerically against PyTorch, and the
    mac profile measures it on every compute unit. Never run on this project's Linux machines."""
    from deploykit.bench import BenchRequest, run_bench
    from deploykit.exporters.pipeline import ExportRequest, export
    from deploykit.measurement import Method

    r = export(ExportRequest("mnv1_025", "coreml", "fp16", out=tmp_path, resolution=64, verify_samples=2))
    assert r.manifest.fidelity["verified"] and r.manifest.status == "verified", r.manifest.fidelity
    done = run_bench(
        BenchRequest("mac", [], artifact=r.path, method=Method(warmup=5, repetitions=2, runs=20), db=tmp_path / "r.db")
    )
    assert len(done) == 4 and all(m.status == "ok" and m.median_ms > 0 for m in done), [m.error for m in done]
