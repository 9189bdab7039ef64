"""`deploykit eval`: top-1/top-5 of an exported file on an ImageFolder dataset, stored, and never mistaken for the
model's accuracy when the file has seeded random weights."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from deploykit.store import Store
from tests.conftest import invoke


def test_eval_measures_top1_on_an_image_folder(tmp_path, tiny_tflite):
    """Labels are the PyTorch model's own predictions, so the fp32 .tflite must agree on all but the one image
    the test files under a wrong class."""
    import torch
    from PIL import Image

    from deploykit.exporters.calibration import load_image, normalize
    from deploykit.exporters.pipeline import ExportRequest, build

    path = tiny_tflite  # mnv1_025 at 64 px, seeded weights: the same model build() gives here
    model = build(ExportRequest("mnv1_025", "tflite", "fp32", resolution=64)).model.eval()
    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    files = []
    for i in range(6):
        img = Image.fromarray(rng.integers(0, 255, (80, 96, 3), dtype=np.uint8))
        p = tmp_path / f"img{i}.png"
        img.save(p)
        files.append(p)
    from deploykit.artifact import read_manifest

    norm = read_manifest(path).normalization
    for i, p in enumerate(files):
        with torch.no_grad():
            label = int(model(normalize(load_image(p, 64)[None], norm["mean"], norm["std"])).argmax())
        if i == 0:
            label = (label + 1) % 1000  # one deliberately wrong label
        (data / str(label)).mkdir(parents=True, exist_ok=True)
        shutil.copy(p, data / str(label) / p.name)
    db = tmp_path / "acc.db"
    r = invoke("eval", str(path), "--data", str(data), "--db", str(db), "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["images"] == 6 and res["top1"] == pytest.approx(100 * 5 / 6)
    with Store(db) as s:
        assert s.accuracy()[0]["top1"] == pytest.approx(100 * 5 / 6)
    # seeded random weights: the accuracy is stored and said, but never replaces the published figure
    assert res["weights_real"] is False and "seeded random weights" in r.stderr
    assert res["top1_ci95"][0] < 100 * 5 / 6 < res["top1_ci95"][1]
    from deploykit.reports.html import collect

    info = collect(db)["models"]["mnv1_025"]
    assert info["accuracy_provenance"] == "published" and info["top1"] == 50.6
    assert "seeded random weights" in info["unused_accuracy"]
    empty = tmp_path / "empty"
    empty.mkdir()
    bad = invoke("eval", str(path), "--data", str(empty))
    assert bad.returncode == 2 and "no class sub-folders" in bad.stderr
