"""Artifact: an exported model file plus the manifest that makes it reproducible and trustworthy.

The manifest (``<artifact file>.manifest.json``, next to the file) holds everything a runner needs and must
never guess: tensor names, shapes, layout, dtypes, quantization scale/zero-point, normalization; plus where the
file came from (model, weights hash, options, tool versions, sha256), its op histogram, the fidelity check
against PyTorch and the compatibility findings.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from .errors import DeploykitError

MANIFEST_SCHEMA = 1
# Every artifact's manifest records these; each format adds the packages it converts and runs with.
BASE_TOOLS = ("deploykit", "torch", "numpy")


@dataclass
class TensorSpec:
    name: str
    shape: list[int]
    dtype: str  # numpy dtype name: float32, float16, int8, uint8
    layout: str = "NCHW"  # NCHW, NHWC, or NC for logits
    scale: float | None = None  # quantized tensors: real = scale * (q - zero_point)
    zero_point: int | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


@dataclass
class Manifest:
    model: dict
    format: str
    precision: str
    file: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    normalization: dict
    options: dict
    cache_key: str
    sha256: str = ""
    size_bytes: int = 0
    status: str = "ok"  # ok | failed-fidelity | unverified
    ops: dict = field(default_factory=dict)
    tools: dict = field(default_factory=dict)
    calibration: dict | None = None
    fidelity: dict | None = None
    compatibility: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    created: str = ""
    schema: int = MANIFEST_SCHEMA

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["inputs"] = [t.to_dict() for t in self.inputs]
        d["outputs"] = [t.to_dict() for t in self.outputs]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Manifest:
        d = dict(d)
        d["inputs"] = [TensorSpec(**t) for t in d["inputs"]]
        d["outputs"] = [TensorSpec(**t) for t in d["outputs"]]
        return cls(**d)


def manifest_path(artifact: Path) -> Path:
    return artifact.with_name(artifact.name + ".manifest.json")


def write_manifest(artifact: Path, manifest: Manifest) -> Path:
    """Write atomically, so a reader never sees a half-written manifest."""
    path = manifest_path(artifact)
    manifest.created = manifest.created or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return atomic_write_text(path, json.dumps(manifest.to_dict(), indent=2, default=json_default))


def atomic_write_text(path: Path, text: str) -> Path:
    """Write a file so that readers see the old content or the new, never half; no partial file stays behind."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        tmp.write_text(text)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_manifest(artifact: Path) -> Manifest | None:
    path = manifest_path(artifact)
    if not path.exists():
        return None
    try:
        return Manifest.from_dict(json.loads(path.read_text()))
    except (ValueError, TypeError, KeyError) as e:
        raise DeploykitError(f"unreadable manifest {path}: {e}", hint="delete it and export again") from None


def file_sha256(path: Path) -> str:
    """sha256 of a file, or of a package folder (.mlpackage: every file's relative path and bytes, sorted)."""
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def path_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def tool_versions(extra: tuple[str, ...] = ()) -> dict[str, str]:
    """Installed versions of the base tools and ``extra`` packages (those missing are left out)."""
    out = {}
    for name in (*BASE_TOOLS, *extra):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def options_key(**options) -> str:
    """The export cache key: a hash of the weights hash and every option that changes the file."""
    blob = json.dumps(options, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def json_default(o):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o)}")
