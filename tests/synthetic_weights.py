"""Deterministic synthetic weights from key names and shapes alone (no torch RNG, no timm needed).

Used twice: by ``fixtures/make_timm_fixture.py`` (run once, in a throwaway venv with timm) to fill timm's
models before recording their logits, and by ``test_timm_equivalence.py`` (in CI, no timm) to rebuild the same
state dict from the recorded key names and shapes. NumPy's PCG64 stream is stable across versions.
"""

from __future__ import annotations

import zlib

import numpy as np


def synthetic_tensor(key: str, shape: list[int], seed: int = 0) -> np.ndarray:
    rng = np.random.Generator(np.random.PCG64([seed, zlib.crc32(key.encode())]))
    if key.endswith("num_batches_tracked"):
        return np.zeros(shape, dtype=np.int64)
    if key.endswith("running_var"):
        return rng.uniform(0.5, 1.5, shape).astype(np.float32)
    if key.endswith("running_mean"):
        return (0.1 * rng.standard_normal(shape)).astype(np.float32)
    if len(shape) <= 1:
        if key.endswith("bias"):
            return (0.1 * rng.standard_normal(shape)).astype(np.float32)
        # Norm scales and layer-scale gammas around 0.5: large enough that every branch matters, small enough
        # that residual stacks 40+ blocks deep (RepViT-M2.3) keep O(1) logits, so an absolute 1e-4 check means
        # something. (timm zero-initialises RepViT's last residual BN for the same reason.)
        return (0.5 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
    fan_in = int(np.prod(shape[1:]))
    return (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32)


def synthetic_input(shape: list[int], seed: int = 0) -> np.ndarray:
    return np.random.Generator(np.random.PCG64([seed, 12345])).standard_normal(shape).astype(np.float32)


def timm_state_dict(name: str) -> dict:
    """A state dict with timm's recorded keys and shapes for ``name`` (fixtures/timm_reference.json.gz), filled
    with :func:`synthetic_tensor`: what a timm checkpoint of the model looks like, without timm."""
    import gzip
    import json
    from pathlib import Path

    import torch

    ref = json.loads(gzip.open(Path(__file__).parent / "fixtures" / "timm_reference.json.gz", "rt").read())
    entry = ref["models"][name]
    return {k: torch.from_numpy(synthetic_tensor(k, shape, ref["seed"])) for k, shape, _ in entry["keys"]}
