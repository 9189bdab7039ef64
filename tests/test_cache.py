"""The artifact cache (exporters/cache.py): a verified export is reused by another output folder without being
converted or verified again; its key follows weights, versions and calibration; --no-cache bypasses it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deploykit.artifact import file_sha256, read_manifest
from deploykit.exporters import cache as artifact_cache
from deploykit.exporters import pipeline
from deploykit.exporters.pipeline import ExportRequest, export
from tests.test_cli import run


def _export(out: Path, **kw):
    return export(ExportRequest("mnv1_025", "onnx", "fp32", out=out, resolution=64, verify_samples=2, **kw))


def _no_conversion(monkeypatch):
    """From here on, converting or verifying fails the test: a reused file must need neither."""

    def refuse(*_a, **_k):
        raise AssertionError("converted or verified again")

    monkeypatch.setattr(pipeline, "_convert_and_verify", refuse)
    monkeypatch.setattr(pipeline, "_verify", refuse)


def test_another_out_folder_reuses_the_verified_file(tmp_path, monkeypatch):
    first = _export(tmp_path / "a")
    assert not first.reused and first.reused_from is None and first.manifest.status == "verified"
    _no_conversion(monkeypatch)
    again = _export(tmp_path / "b")
    assert again.reused and again.reused_from == "cache"
    assert again.path == tmp_path / "b" / first.path.name and file_sha256(again.path) == first.manifest.sha256
    assert read_manifest(again.path).fidelity == first.manifest.fidelity  # its verification travels with it
    assert _export(tmp_path / "b").reused_from == "out"  # now the folder's own copy


def test_an_int8_onnx_file_is_reused_with_its_verification(tmp_path, monkeypatch):
    """int8 ONNX (QDQ) is cached like every export: its key includes the calibration, its manifest the check."""
    request = dict(resolution=64, calibration_samples=4, verify_samples=2)
    first = export(ExportRequest("mnv1_025", "onnx", "int8", out=tmp_path / "a", **request))
    assert not first.reused and first.manifest.fidelity["reference"] == "onnx-qdq-simulated"
    _no_conversion(monkeypatch)
    again = export(ExportRequest("mnv1_025", "onnx", "int8", out=tmp_path / "b", **request))
    assert again.reused_from == "cache" and file_sha256(again.path) == first.manifest.sha256
    assert read_manifest(again.path).options["quantization"] == first.manifest.options["quantization"]
    assert read_manifest(again.path).fidelity == first.manifest.fidelity


def test_no_cache_neither_reads_nor_writes(tmp_path):
    assert not _export(tmp_path / "a", use_cache=False).reused
    assert not any(artifact_cache.cache_root().iterdir())  # nothing kept
    _export(tmp_path / "b")
    assert not _export(tmp_path / "c", use_cache=False).reused  # a cached file exists, and is not used


def test_force_converts_again_and_refreshes_the_entry(tmp_path):
    _export(tmp_path / "a")
    assert not _export(tmp_path / "b", force=True).reused


def test_new_converter_versions_miss(tmp_path, monkeypatch):
    _export(tmp_path / "a")
    real = pipeline.tool_versions
    monkeypatch.setattr(pipeline, "tool_versions", lambda tools: {**real(tools), "onnx": "99.0"})
    assert not _export(tmp_path / "b").reused


def test_key_follows_weights_versions_and_calibration_content(tmp_path, monkeypatch):
    req = pipeline.validate(ExportRequest("mnv1_025", "tflite", "int8", out=tmp_path, resolution=64))
    built = pipeline.build(req)
    key = pipeline.export_key(req, built, "weights-a")
    assert key == pipeline.export_key(req, built, "weights-a")
    assert key != pipeline.export_key(req, built, "weights-b")
    from PIL import Image

    images = tmp_path / "calib"
    images.mkdir()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(images / "a.png")
    req.calibration = images
    with_images = pipeline.export_key(req, built, "weights-a")
    assert with_images != key
    Image.new("RGB", (8, 8), (99, 20, 30)).save(images / "a.png")  # same folder, other pixels
    assert pipeline.export_key(req, built, "weights-a") != with_images
    monkeypatch.setattr(pipeline, "tool_versions", lambda tools: {"ai-edge-litert": "0.0"})
    assert pipeline.export_key(req, built, "weights-a") != pipeline.export_key(req, built, "weights-b")


def test_a_changed_cache_file_is_a_miss_and_dropped(tmp_path):
    first = _export(tmp_path / "a")
    entry = artifact_cache.cache_root() / first.manifest.cache_key
    cached = entry / first.path.name
    cached.unlink()  # a hard link: rewrite the entry's own copy, not the output folder's
    cached.write_bytes(b"not the exported file")
    again = _export(tmp_path / "b")
    assert not again.reused and again.manifest.status == "verified"
    assert file_sha256(entry / first.path.name) == again.manifest.sha256  # the fresh export replaced it


def test_deploykit_cache_is_honoured(tmp_path, monkeypatch):
    monkeypatch.delenv("DEPLOYKIT_ARTIFACT_CACHE")
    monkeypatch.setenv("DEPLOYKIT_CACHE", str(tmp_path / "dk"))
    assert artifact_cache.cache_root() == tmp_path / "dk" / "artifacts"
    first = _export(tmp_path / "a")
    assert (tmp_path / "dk" / "artifacts" / first.manifest.cache_key / first.path.name).is_file()


def test_cli_says_reused_from_cache(tmp_path):
    args = ("export", "mnv1_025", "--to", "onnx", "-r", "64", "--verify-samples", "2")
    first = run(*args, "--out", str(tmp_path / "a"), "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["reused_from"] is None
    again = run(*args, "--out", str(tmp_path / "b"))
    assert again.returncode == 0 and "reused from cache" in again.stdout, again.stdout + again.stderr
    bypass = run(*args, "--out", str(tmp_path / "c"), "--no-cache", "--json")
    assert json.loads(bypass.stdout)["reused"] is False


@pytest.mark.parametrize("command", ["bench", "sweep"])
def test_no_cache_is_an_option_of(command):
    assert "--no-cache" in run(command, "--help").stdout
