"""Loading checkpoints into zoo models: deploykit's own state dicts and timm's, through an explicit key map.

Files are read without unpickling arbitrary objects: ``.safetensors`` through safetensors, anything else with
``torch.load(..., weights_only=True)``. A timm checkpoint is recognised by its keys and renamed through the
model's ``timm_key_map`` (ordered regex rules, one list per family). Loading is strict: a missing, extra or
mis-shaped key is a :class:`WeightsError` that names the keys.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import torch
from torch import nn

from .errors import WeightsError
from .zoo.registry import ModelSpec

# Wrappers training scripts put around the state dict.
_WRAPPER_KEYS = ("state_dict", "model", "model_ema", "state_dict_ema", "module")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path))
        else:
            sd = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # any reader failure is a bad file, said in one line
        raise WeightsError(
            f"cannot read weights file {path}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
            hint="give a .safetensors file or a .pth/.pt state dict (read with weights_only=True)",
        ) from None
    for key in _WRAPPER_KEYS:
        if isinstance(sd, dict) and key in sd and isinstance(sd[key], dict):
            sd = sd[key]
            break
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise WeightsError(f"{path} does not hold a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in sd.items()}


def map_timm_keys(state_dict: dict[str, torch.Tensor], rules: tuple[tuple[str, str], ...]) -> dict[str, torch.Tensor]:
    """Rename timm keys to ours: the first rule whose pattern matches a key rewrites it; others pass unchanged."""
    compiled = [(re.compile(p), r) for p, r in rules]
    out = {}
    for key, value in state_dict.items():
        new = key
        for pattern, repl in compiled:
            if pattern.search(key):
                new = pattern.sub(repl, key, count=1)
                break
        out[new] = value
    return out


def load_weights(model: nn.Module, spec: ModelSpec, source: str | Path | dict, fmt: str = "auto") -> str:
    """Load ``source`` (a path or a state dict) into ``model``, strictly. Returns the format used: ours or timm.

    ``fmt="auto"`` takes the checkpoint as deploykit's own when its keys are exactly the model's, else as timm's.
    """
    sd = read_state_dict(source) if not isinstance(source, dict) else source
    expected = model.state_dict()
    if fmt == "auto":
        fmt = "deploykit" if set(sd) == set(expected) else "timm"
    origin = {k: k for k in sd}
    if fmt == "timm":
        if not spec.timm_key_map:
            raise WeightsError(f"{spec.name} has no timm key map", hint="give a deploykit state dict instead")
        mapped = map_timm_keys(sd, spec.timm_key_map)
        origin = dict(zip(mapped, sd))  # renaming keeps order: ours → the file's own name
        sd = mapped
    elif fmt != "deploykit":
        raise WeightsError(f"unknown weights format {fmt!r}", hint="use auto, timm or deploykit")
    _check_keys(spec.name, fmt, sd, expected, origin)
    model.load_state_dict(sd, strict=True)
    return fmt


def _check_keys(name: str, fmt: str, sd: dict, expected: dict, origin: dict[str, str]) -> None:
    missing = [k for k in expected if k not in sd]
    extra = [origin[k] for k in sd if k not in expected]  # named as in the user's file
    shapes = [
        f"{k} {tuple(sd[k].shape)}≠{tuple(expected[k].shape)}"
        for k in expected
        if k in sd and sd[k].shape != expected[k].shape
    ]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} key(s): {_few(missing)}")
    if extra:
        problems.append(f"unexpected {len(extra)} key(s): {_few(extra)}")
    if shapes:
        problems.append(f"{len(shapes)} shape mismatch(es): {_few(shapes)}")
    if problems:
        raise WeightsError(
            f"weights do not fit {name} (read as {fmt}): " + "; ".join(problems),
            hint="check the model name and width; timm checkpoints load into the model of the same timm name",
        )


def _few(items: list[str], n: int = 3) -> str:
    return ", ".join(items[:n]) + (f" (+{len(items) - n} more)" if len(items) > n else "")


def state_dict_sha256(model: nn.Module) -> str:
    """A stable hash of a model's weights (names, shapes, bytes): the key for export caching."""
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(str(tuple(v.shape)).encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()
