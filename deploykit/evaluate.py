"""``deploykit eval``: top-1/top-5 of an exported artifact on an ImageFolder-style dataset.

Layout: ``DIR/<class>/<image>``. Class indices follow torchvision's ImageFolder: sub-folder names sorted, the
i-th is class i — unless every sub-folder name is an integer, which is then the class index itself (so a
handful of ImageNet classes can be evaluated without all 1000 folders). Images get the model's preprocessing
(resize the short side to resolution/0.875, centre crop, the manifest's mean/std) and run on the artifact's
host runtime: the format plugin's session (ONNX Runtime, LiteRT; Core ML on macOS only), opened once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from .artifact import read_manifest
from .errors import DeploykitError
from .measurement import wilson


def dataset(directory: str | Path) -> tuple[list[tuple[Path, int]], list[str]]:
    from deploykit.exporters.calibration import IMAGE_SUFFIXES

    d = Path(directory)
    if not d.is_dir():
        raise DeploykitError(
            f"dataset folder not found: {d}", hint="give a folder with one sub-folder of images per class"
        )
    classes = sorted(p.name for p in d.iterdir() if p.is_dir())
    if not classes:
        raise DeploykitError(f"no class sub-folders in {d}", hint="ImageFolder layout: DIR/<class>/<image>")
    numeric = all(c.isdigit() for c in classes)
    index = {c: int(c) if numeric else i for i, c in enumerate(classes)}
    items = [
        (p, index[c])
        for c in classes
        for p in sorted((d / c).rglob("*"))
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    ]
    if not items:
        raise DeploykitError(f"no images in {d}", hint=f"files ending in {', '.join(sorted(IMAGE_SUFFIXES))}")
    return items, classes


def evaluate(
    artifact: str | Path,
    data: str | Path,
    limit: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict:
    from deploykit.exporters import base as formats
    from deploykit.exporters.calibration import load_image, normalize

    path = Path(artifact)
    manifest = read_manifest(path) if path.exists() else None
    if manifest is None:
        raise DeploykitError(
            f"{path} is not a deploykit artifact (no manifest next to it)", hint="export it with `deploykit export`"
        )
    fmt = formats.get(manifest.format)
    cannot = fmt.cannot_run_here()
    if cannot:
        raise DeploykitError(cannot, hint="evaluate an export of another format here")
    items, classes = dataset(data)
    if limit:
        items = items[:limit]
    res = manifest.model["resolution"]
    mean, std = manifest.normalization["mean"], manifest.normalization["std"]
    session = fmt.open_session(path, manifest)  # one session for every image
    top1 = top5 = 0
    for i, (img, label) in enumerate(items):
        x = normalize(load_image(img, res)[None], mean, std).numpy()
        logits = session(x)[0]
        if label >= logits.shape[-1]:
            raise DeploykitError(
                f"class index {label} ({img.parent.name}) is beyond the model's {logits.shape[-1]} outputs"
            )
        order = np.argsort(-logits)
        top1 += int(order[0] == label)
        top5 += int(label in order[:5])
        if on_progress:
            on_progress(i + 1, len(items))
    n = len(items)
    real = bool(manifest.model.get("weights_real", manifest.model.get("weights")))
    return {
        "model": manifest.model["name"],
        "resolution": res,
        "format": manifest.format,
        "precision": manifest.precision,
        "artifact": str(path),
        "artifact_sha256": manifest.sha256,
        "dataset": str(Path(data).resolve()),
        "classes": len(classes),
        "images": n,
        "top1": 100.0 * top1 / n,
        "top5": 100.0 * top5 / n,
        "top1_ci95": [100 * x for x in wilson(top1, n)],
        "weights_real": real,
        "weights_source": manifest.model.get("weights_source") or manifest.model.get("weights"),
    }
