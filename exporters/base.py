"""The export-format plugin interface and its registry (as coremltools registers its converter frontends).

A format is one module in this folder: a :class:`Format` subclass instance registered with :func:`register`.
It says what the file is called (``suffix``), which precisions it writes, how a PyTorch model becomes a file
(:meth:`Format.convert`), what the file's inputs and outputs are (:meth:`Format.describe`, and
:meth:`Format.manifest_from_file` for a file deploykit did not write), which compatibility rule sets can judge
it (:meth:`Format.compat_rules`, named by the backend that would run it), and the host session that
verification, ``eval`` and host benchmarks all run it through (:meth:`Format.open_session`).

Importing a format module is cheap: torch, LiteRT, ONNX Runtime and coremltools are imported inside the
methods that need them. Third-party formats register through the ``deploykit.formats`` entry-point group or
``$DEPLOYKIT_PLUGINS`` (see :mod:`deploykit.backends.base`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from deploykit.errors import DeploykitError
from deploykit.plugins import builtin_modules, load_external

if TYPE_CHECKING:
    import numpy as np

    from deploykit.artifact import Manifest, TensorSpec
    from deploykit.graph import Layer

# Every module in this folder whose name has no underscore is a format plugin, except these; a format's
# helpers are named ``<format>_<job>.py`` (tflite_convert.py, tflite_graph.py): adding a format is one file.
INFRASTRUCTURE = ("base", "pipeline", "calibration", "fidelity", "compat", "quiet")
ENTRY_POINT_GROUP = "deploykit.formats"


@dataclass
class Described:
    """What a format reads back from a file it wrote: I/O tensors, op histogram, notes, extra options."""

    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    ops: dict
    notes: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)


class HostSession:
    """An artifact loaded in its host runtime. Feed float NCHW images, invoke, read float logits.

    Quantized inputs/outputs, NHWC layouts and dtypes are the session's business: callers always hand over
    what PyTorch would take and get what PyTorch would return."""

    env: dict = {}
    delegate: dict = {}

    def feed(self, x_nchw: np.ndarray) -> None:
        raise NotImplementedError

    def invoke(self) -> None:
        raise NotImplementedError

    def output(self) -> np.ndarray:
        raise NotImplementedError

    def input_shape_nchw(self) -> list[int]:
        raise NotImplementedError

    def feed_random(self, seed: int = 0) -> None:
        import numpy as np

        self.feed(np.random.default_rng(seed).standard_normal(self.input_shape_nchw()).astype(np.float32))

    def __call__(self, x_nchw: np.ndarray) -> np.ndarray:
        self.feed(x_nchw)
        self.invoke()
        return self.output()

    # backends' Session protocol: one inference on the fed inputs
    def run(self) -> None:
        self.invoke()


def user_manifest(path: Path, fmt: str, precision: str, inputs: list, outputs: list, resolution: int) -> Manifest:
    """The manifest of a file deploykit did not export: what the file itself says, and where it came from."""
    from deploykit.artifact import Manifest, file_sha256

    return Manifest(
        model={"name": path.stem, "family": "user", "source": f"file:{path}", "resolution": resolution},
        format=fmt,
        precision=precision,
        file=path.name,
        inputs=inputs,
        outputs=outputs,
        normalization={},
        options={},
        cache_key="",
        sha256=file_sha256(path),
    )


class Format:
    name: str = ""
    suffix: str | None = None  # None: no file (the PyTorch model itself)
    precisions: tuple[str, ...] = ("fp32",)
    default_precision: str = "fp32"
    options: tuple[str, ...] = ()  # export options only this format takes (e.g. fp16_input)
    tools: tuple[str, ...] = ()  # packages whose versions its manifests record
    rule_aliases: dict[str, str] = {}  # older names of its compatibility rule sets
    description: str = ""

    def convert(self, model, example, out: Path, precision: str, calib, options: dict) -> dict:
        """Write ``out`` from an eval-mode nn.Module; returns facts for the manifest (``ops``, ``notes``, …)."""
        raise NotImplementedError(f"{self.name} does not convert")

    def describe(self, path: Path, precision: str, info: dict) -> Described:
        raise NotImplementedError

    def manifest_from_file(self, path: Path) -> Manifest:
        """A minimal manifest for a file deploykit did not export (bring your own file)."""
        raise DeploykitError(f"no manifest next to {path}; export it with deploykit to benchmark a {self.name} file")

    def compat_rules(self, precision: str) -> list[str]:
        """The compatibility rule sets that judge a file of this precision (named by the backend they serve)."""
        return []

    def check(self, path: Path, rule: str) -> dict:
        """``{"ops": n, "findings": [...], ...}`` of one rule set on a file."""
        raise DeploykitError(f"{self.name} files have no {rule} check")

    def cannot_run_here(self) -> str | None:
        """Why this machine cannot run the format's host session (Core ML off macOS), or None."""
        return None

    def structure_ok(self, manifest: Manifest) -> bool:
        """Where the format cannot run here: does the written file look like what was asked for?"""
        return True

    def open_session(self, path: Path | None, manifest: Manifest | None, **options) -> HostSession:
        raise NotImplementedError

    def graph_layers(self, path: Path) -> list[Layer] | None:
        """The file's own op graph as estimator layers, where the format can read it; else None."""
        return None


_REGISTRY: dict[str, Format] = {}
_loaded = False


def register(fmt: Format) -> Format:
    if not fmt.name:
        raise ValueError("a format needs a name")
    clash = next((f for f in _REGISTRY.values() if f.suffix and f.suffix == fmt.suffix and f.name != fmt.name), None)
    if clash:
        raise ValueError(f"{fmt.name} and {clash.name} both claim {fmt.suffix}")
    _REGISTRY[fmt.name] = fmt
    return fmt


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in builtin_modules([str(Path(__file__).parent)], INFRASTRUCTURE):
        importlib.import_module(f"{__package__}.{module}")
    load_external(ENTRY_POINT_GROUP)


def formats() -> list[Format]:
    _load()
    return list(_REGISTRY.values())


def names(files_only: bool = False) -> list[str]:
    return [f.name for f in formats() if f.suffix or not files_only]


def get(name: str) -> Format:
    _load()
    if name not in _REGISTRY:
        raise DeploykitError(f"unknown format {name!r}", hint=f"use one of {', '.join(names(files_only=True))}")
    return _REGISTRY[name]


def for_path(path: str | Path) -> Format:
    """The format of a file, by its suffix."""
    suffix = Path(path).suffix.lower()
    for f in formats():
        if f.suffix and f.suffix == suffix:
            return f
    known = ", ".join(f.suffix for f in formats() if f.suffix)
    raise DeploykitError(f"{Path(path).name}: not a file deploykit reads", hint=f"give a {known} file")


def artifact_name(model: str, resolution: int, fmt: str, precision: str) -> str:
    return f"{model}-{resolution}-{fmt}-{precision}{get(fmt).suffix}"
