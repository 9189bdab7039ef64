"""Files deploykit did not write, as registry packages ship them (tests/fixtures/thirdparty/README.md): each is
measured as what it is, or refused in one line. And files deploykit did write, labelled by what they are."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from deploykit.store import Store
from tests.conftest import EXE

HERE = Path(__file__).parent / "fixtures" / "thirdparty"
SHA256 = {
    "face_detection_short_range.tflite": "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
    "face_landmark_with_attention_custom_op.tflite": "e06a804e0144f9929eda782122916b35d60c697c3c9344013ca2bbe76a6ce2b4",
    "ppocr_cls_dynamic_hw.onnx": "e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c",
    "qlinearconv.onnx": "6ea0eb350703bf7430e036c0d9aebeb935ad90b94fc569b54a4f4425ad2e38a9",
    "silero_vad_16k_op15.onnx": "7ed98ddbad84ccac4cd0aeb3099049280713df825c610a8ed34543318f1b2c49",
}
FAST = ["--runs", "20", "--repetitions", "2", "--warmup", "2"]


def bench(tmp_path, *args):
    db = tmp_path / "r.db"
    r = subprocess.run(
        [EXE, "bench", "--device", "host", "--db", str(db), *FAST, *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    return r, db


def rows(db) -> list:
    with Store(db) as s:
        return s.query()


def test_the_files_are_the_ones_the_packages_ship():
    for name, digest in SHA256.items():
        assert hashlib.sha256((HERE / name).read_bytes()).hexdigest() == digest, name


def test_dynamic_height_and_width_are_never_guessed(tmp_path):
    r, db = bench(tmp_path, "--artifact", str(HERE / "ppocr_cls_dynamic_hw.onnx"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "dynamic dimensions" in r.stderr and "--input-shape x=1,3,N,N" in r.stderr and not db.exists()
    r, db = bench(tmp_path, "--artifact", str(HERE / "ppocr_cls_dynamic_hw.onnx"), "--input-shape", "x=1,3,48,192")
    assert r.returncode == 0, r.stderr
    (m,) = rows(db)
    assert m.status == "ok" and m.env["input_shapes"] == {"x": [1, 3, 48, 192]} and m.resolution == 0
    assert m.model == "ppocr_cls_dynamic_hw" and m.precision == "fp32"


def test_every_input_is_fed_with_its_dtype_and_shape(tmp_path):
    """silero VAD: input [batch, sequence] f32, state [2, batch, 128] f32, sr [] int64; 'batch' is shared."""
    r, db = bench(tmp_path, "--artifact", str(HERE / "silero_vad_16k_op15.onnx"), "--input-shape", "input=1,512")
    assert r.returncode == 0, r.stderr
    (m,) = rows(db)
    assert m.status == "ok" and m.env["input_shapes"] == {"input": [1, 512], "state": [2, 1, 128], "sr": []}
    assert m.resolution == 0  # not an image model: its input shapes say what was measured


def test_a_quantized_onnx_file_is_measured_as_int8(tmp_path):
    r, db = bench(tmp_path, "--artifact", str(HERE / "qlinearconv.onnx"))
    assert r.returncode == 0, r.stderr
    (m,) = rows(db)
    assert (m.target, m.precision, m.status) == ("host/onnxruntime/int8", "int8", "ok")
    r, _ = bench(tmp_path, "--artifact", str(HERE / "qlinearconv.onnx"), "--precision", "fp32")
    assert r.returncode == 2 and "is a int8 onnx file; --precision fp32 contradicts it" in r.stderr


def test_fp16_weights_are_labelled_fp16(tmp_path):
    r, db = bench(tmp_path, "--artifact", str(HERE / "face_detection_short_range.tflite"))
    assert r.returncode == 0, r.stderr
    (m,) = rows(db)
    assert (m.target, m.precision) == ("host/litert-xnnpack/fp16", "fp16")
    assert any("no host target lists fp16 tflite files" in w for w in m.warnings)


def test_a_custom_op_file_is_one_line_and_exit_1(tmp_path):
    r, db = bench(tmp_path, "--artifact", str(HERE / "face_landmark_with_attention_custom_op.tflite"))
    assert r.returncode == 1 and "Traceback" not in r.stdout + r.stderr
    failed = [line for line in r.stdout.splitlines() if line.startswith("failed: ")]
    assert len(failed) == 1 and "unresolved custom op: Landmarks2TransformMatrix" in failed[0]
    (m,) = rows(db)
    assert m.status == "failed" and m.model == "face_landmark_with_attention_custom_op"


def test_a_non_tensor_output_model_from_onnxruntime(tmp_path):
    import onnxruntime

    iris = Path(onnxruntime.__file__).parent / "datasets" / "logreg_iris.onnx"
    r, db = bench(tmp_path, "--artifact", str(iris))
    assert r.returncode == 0, r.stderr
    (m,) = rows(db)
    assert m.status == "ok" and m.env["input_shapes"] == {"float_input": [3, 2]} and m.resolution == 0


@pytest.mark.parametrize(
    "content, needle",
    [(b"\x00" * 64, "not a readable .tflite file"), (b"TFL3 but not really", "not a readable .tflite file")],
)
def test_a_file_deploykit_cannot_read_is_exit_1(tmp_path, content, needle):
    bad = tmp_path / "broken.tflite"
    bad.write_bytes(content)
    r, db = bench(tmp_path, "--artifact", str(bad))
    assert r.returncode == 1 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def own_files(tmp_path_factory):
    from deploykit.exporters.pipeline import ExportRequest, export

    out = tmp_path_factory.mktemp("own")
    kw = dict(out=out, resolution=64, calibration_samples=4, verify_samples=2)
    return {p: export(ExportRequest("mnv1_025", "tflite", p, **kw)).path for p in ("fp32", "int8")}


def test_a_file_runs_on_the_targets_of_its_own_precision(tmp_path, own_files):
    """Before: an fp32 file was measured on both host LiteRT targets and stored as fp32 and as int8."""
    for precision, path in own_files.items():
        r, db = bench(tmp_path, "--artifact", str(path), "--backend", "litert-xnnpack")
        assert r.returncode == 0, r.stderr
        assert [(m.target, m.precision) for m in rows(db)] == [(f"host/litert-xnnpack/{precision}", precision)]
        os.remove(db)
    r, _ = bench(tmp_path, "--artifact", str(own_files["fp32"]), "--precision", "int8")
    assert r.returncode == 2 and "contradicts it" in r.stderr


def test_a_failed_fidelity_file_is_measured_with_a_warning(tmp_path, own_files):
    from deploykit.artifact import read_manifest, write_manifest

    path = tmp_path / "f.tflite"
    path.write_bytes(own_files["fp32"].read_bytes())
    manifest = read_manifest(own_files["fp32"])
    manifest.status, manifest.file = "failed-fidelity", path.name
    write_manifest(path, manifest)
    r, db = bench(tmp_path, "--artifact", str(path), "--backend", "litert-xnnpack", "--json")
    assert r.returncode == 0, r.stderr
    (m,) = json.loads(r.stdout)
    assert any("failed its fidelity check" in w for w in m["warnings"])
    assert "failed its fidelity check" in r.stderr


def test_estimate_reads_an_onnx_files_own_graph(tmp_path, own_files):
    """Before: an .onnx without a manifest was refused by `estimate`. Now its graph is read (shape inference),
    with the same MACs as the PyTorch analysis; a file with dynamic inputs is told to fix its shape."""
    from deploykit.analysis import analyze_spec
    from deploykit.exporters.pipeline import ExportRequest, export

    src = export(ExportRequest("mnv1_025", "onnx", "fp32", out=tmp_path / "a", resolution=64, verify_samples=1)).path
    bare = tmp_path / "bare.onnx"
    bare.write_bytes(src.read_bytes())  # no manifest beside it
    r = subprocess.run([EXE, "estimate", str(bare), "--device", "pixel8", "--no-store", "--json", "--layers"],
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert rows and all(x["status"] == "ok" for x in rows if x["target"] != "pixel8/edgetpu/int8")
    macs = sum(layer["macs"] for layer in rows[0]["layers"])
    assert macs == analyze_spec("mnv1_025", 64).macs
    dyn = subprocess.run([EXE, "estimate", str(HERE / "ppocr_cls_dynamic_hw.onnx"), "--device", "pixel8", "--no-store"],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert dyn.returncode == 2 and "dynamic input dimensions" in dyn.stderr
