"""Calibration and verification inputs, preprocessed the way the model expects.

From a folder: every image file under it (recursively), resized so the short side is ``resolution / 0.875``,
centre-cropped to ``resolution`` (the usual ImageNet evaluation transform), scaled to [0, 1] and normalised
with the model's mean and std.

Synthetic (the default, documented in docs/exports.md): seeded "natural-ish" images. Each is a sum of smooth
random colour fields at four scales (a 2×2, 4×4, 8×8 and 16×16 grid of random RGB values, bilinearly
upsampled, amplitudes halving per octave) plus a little pixel noise, clipped to [0, 1]. They have the
low-frequency energy and channel correlation of photographs, which uniform noise lacks: activation ranges
calibrated on noise are too narrow for real images. Real images are better; pass ``--calibration DIR``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from deploykit.errors import DeploykitError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".tif", ".tiff"}


def normalize(x: torch.Tensor, mean, std) -> torch.Tensor:
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def synthetic_images(n: int, resolution: int, seed: int = 0) -> torch.Tensor:
    """``n`` images in [0, 1], NCHW float32."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, 3, resolution, resolution)
    for octave, grid in enumerate((2, 4, 8, 16)):
        field = torch.rand(n, 3, grid, grid, generator=g)
        up = F.interpolate(field, size=(resolution, resolution), mode="bilinear", align_corners=False)
        x += 0.5**octave * (up - 0.5)
    x = 0.5 + x + 0.03 * torch.randn(n, 3, resolution, resolution, generator=g)
    return x.clamp(0, 1)


def list_images(directory: str | Path) -> list[Path]:
    d = Path(directory)
    if d.exists() and not d.is_dir():
        raise DeploykitError(
            f"--calibration {d} is a file: it takes a folder of images", hint="give a folder of .jpg/.png images"
        )
    if not d.is_dir():
        raise DeploykitError(f"calibration folder not found: {d}", hint="give a folder of .jpg/.png images")
    files = sorted(p for p in d.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise DeploykitError(
            f"no images in calibration folder {d}", hint=f"it needs files ending in {', '.join(sorted(IMAGE_SUFFIXES))}"
        )
    return files


def load_image(path: Path, resolution: int) -> torch.Tensor:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            short = round(resolution / 0.875)
            w, h = im.size
            scale = short / min(w, h)
            im = im.resize((max(resolution, round(w * scale)), max(resolution, round(h * scale))), Image.BILINEAR)
            w, h = im.size
            left, top = (w - resolution) // 2, (h - resolution) // 2
            im = im.crop((left, top, left + resolution, top + resolution))
            arr = np.asarray(im, dtype=np.float32) / 255.0
    except (OSError, UnidentifiedImageError) as e:
        raise DeploykitError(f"unreadable image {path}: {e}", hint="remove or replace the file") from None
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def calibration_inputs(
    n: int, resolution: int, mean, std, directory: str | Path | None = None, seed: int = 0
) -> tuple[torch.Tensor, dict]:
    """``n`` normalised inputs (NCHW) and a description of where they came from, for the manifest."""
    if n < 1:
        raise DeploykitError(f"number of calibration samples must be at least 1, got {n}")
    if directory is None:
        return normalize(synthetic_images(n, resolution, seed), mean, std), {
            "source": "synthetic",
            "samples": n,
            "seed": seed,
            "description": "smooth multi-scale random colour fields (see deploykit.exporters.calibration)",
        }
    files = list_images(directory)
    rng = np.random.default_rng(seed)
    chosen = [files[i] for i in sorted(rng.choice(len(files), size=min(n, len(files)), replace=False))]
    x = torch.stack([load_image(p, resolution) for p in chosen])
    return normalize(x, mean, std), {"source": str(Path(directory).resolve()), "samples": len(chosen), "seed": seed}
