"""The export-format plugin interface and its registry (as coremltools registers its converter frontends).

A format is one module in this folder: a :class:`Format` subclass instance registered with :func:`register`.
It says what the file is called (``suffix``), which precisions it writes, how a PyTorch model becomes a file
(:meth:`Format.convert`), what the file's inputs and outputs are (:meth:`Format.describe`, and
:meth:`Format.manifest_from_file` for a file deploykit did not write), which compatibility rule sets can judge
it (:meth:`Format.compat_rules`, named by the backend that would run it), and the host session that
verification, ``eval`` and host benchmarks all run it through (:meth:`Format.open_session`).

Importing a format module is cheap: torch, LiteRT, ONNX Runtime and coremltools are imported inside the
methods that need them. Third-party formats register through the ``deploykit.formats`` entry-point group or
``$DEPLOYKIT_PLUGINS`` (see :mod:`deploykit.plugins`).
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
    from deploykit.graph import Layer, MemoryGraph
    from deploykit.profiling.records import OpProfile

# Every module in this folder whose name has no underscore is a format plugin, except these; a format's
# helpers are named ``<format>_<job>.py`` (tflite_convert.py, tflite_graph.py): adding a format is one file.
INFRASTRUCTURE = ("base", "pipeline", "calibration", "fidelity", "compat", "quiet", "cache")
ENTRY_POINT_GROUP = "deploykit.formats"


@dataclass
class Described:
    """What a format reads back from a file it wrote: I/O tensors, op histogram, notes, extra options."""

    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    ops: dict
    notes: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)


def resolve_shapes(inputs: list[TensorSpec], given: dict[str, list[int]] | None = None) -> tuple[dict, list[str]]:
    """Concrete shapes for a file's inputs: ``given`` (``--input-shape NAME=1,3,640,640``) where the user said,
    symbols shared between inputs bound once, a dynamic leading (batch) dimension set to 1 and said so.
    Any other dynamic dimension is never guessed: a DeploykitError names the input and asks for its shape.
    Returns ``(shapes by name, notes on every default taken)``."""
    given = dict(given or {})
    names = [t.name for t in inputs]
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise DeploykitError(f"--input-shape names {unknown[0]!r}, not an input", hint=f"inputs: {', '.join(names)}")
    bound: dict[str, int] = {}
    shapes, notes = {}, []
    for t in sorted(inputs, key=lambda t: t.name not in given):  # the user's shapes bind shared symbols first
        dims = list(t.shape)
        if t.name in given:
            shape = list(given[t.name])
            if (
                len(shape) != len(dims)
                or any(isinstance(d, int) and d > 0 and d != v for d, v in zip(dims, shape))
                or min(shape, default=1) < 1
            ):
                raise DeploykitError(
                    f"--input-shape {t.name}={','.join(map(str, shape))} does not fit its declared shape {dims}"
                )
            for d, v in zip(dims, shape):
                if isinstance(d, str) and d != "?":
                    bound.setdefault(d, v)
            shapes[t.name] = shape
            continue
        shape = []
        for i, d in enumerate(dims):
            if isinstance(d, int) and d > 0:
                shape.append(d)
            elif isinstance(d, str) and d in bound:
                shape.append(bound[d])
            elif i == 0:
                shape.append(1)
                notes.append(f"{t.name}: dynamic dimension 0 ({d!r}) set to 1 (batch)")
                if isinstance(d, str) and d != "?":
                    bound[d] = 1
            else:
                example = ",".join(
                    str(x) if isinstance(x, int) and x > 0 else "1" if j == 0 else "N" for j, x in enumerate(dims)
                )
                raise DeploykitError(
                    f"input {t.name} has dynamic dimensions {dims}: deploykit does not guess them",
                    hint=f"give --input-shape {t.name}={example} with a number for each N",
                )
        shapes[t.name] = shape
    return {t.name: shapes[t.name] for t in inputs}, notes


def random_feed(inputs: list[TensorSpec], shapes: dict, seed: int = 0) -> dict:
    """Inputs for timing: standard-normal floats, zeros for integer inputs (indices, flags, sample rates: a
    random integer is more likely to be invalid than zero), each of its declared dtype and resolved shape."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = {}
    for t in inputs:
        shape = shapes[t.name]
        if t.dtype.startswith("float") and t.scale is None:
            out[t.name] = rng.standard_normal(shape).astype(t.dtype)
        else:
            out[t.name] = np.zeros(shape, dtype=t.dtype)
    return out


@dataclass
class Batched:
    """What ``Format.batched`` hands back: the file to run at a batch, its manifest, the input shapes to feed, and
    one line on how the batch was made (the runtime resized the input, the file's own dynamic dimension, an export
    at that batch)."""

    path: Path
    manifest: Manifest | None
    input_shapes: dict
    how: str


def with_batch(manifest: Manifest, batch: int) -> tuple[Manifest, dict]:
    """A manifest whose first input's leading dimension is free, and the shapes that feed ``batch`` images."""
    from dataclasses import replace

    first = manifest.inputs[0]
    free = replace(first, shape=["batch", *first.shape[1:]])
    m = replace(manifest, inputs=[free, *manifest.inputs[1:]])
    shapes, _ = resolve_shapes(m.inputs, {first.name: [batch, *first.shape[1:]]})
    return m, shapes


class HostSession:
    """An artifact loaded in its host runtime. Feed float NCHW images, invoke, read float logits.

    Quantized inputs/outputs, NHWC layouts and dtypes are the session's business: callers always hand over
    what PyTorch would take and get what PyTorch would return. A file with several inputs, or non-image ones,
    is fed raw arrays per input (:meth:`feed_inputs`), as its own declared dtypes and shapes."""

    env: dict = {}
    delegate: dict = {}
    inputs: list[TensorSpec] = []
    shapes: dict = {}  # resolved input shapes, by name

    def feed(self, x_nchw: np.ndarray) -> None:
        raise NotImplementedError

    def feed_inputs(self, arrays: dict) -> None:
        raise NotImplementedError

    def invoke(self) -> None:
        raise NotImplementedError

    def output(self) -> np.ndarray:
        raise NotImplementedError

    def input_shape_nchw(self) -> list[int]:
        raise NotImplementedError

    def is_image_model(self) -> bool:
        """One float 4-D image input: fed like PyTorch's model (float NCHW, quantized by the session)."""
        t = self.inputs[0] if len(self.inputs) == 1 else None
        return t is not None and len(t.shape) == 4 and t.layout in ("NCHW", "NHWC") and t.dtype != "int64"

    def feed_random(self, seed: int = 0) -> None:
        import numpy as np

        if not self.inputs or self.is_image_model():
            x = np.random.default_rng(seed).standard_normal(self.input_shape_nchw()).astype(np.float32)
            self.feed(x)
        else:
            self.feed_inputs(random_feed(self.inputs, self.shapes, seed))

    def __call__(self, x_nchw: np.ndarray) -> np.ndarray:
        self.feed(x_nchw)
        self.invoke()
        return self.output()

    # backends' Session protocol: one inference on the fed inputs
    def run(self) -> None:
        self.invoke()

    def op_profile(self, skip: int = 0) -> OpProfile:
        """Per-op times of the inferences run so far (the first ``skip``, warm-up, left out), where the session
        was opened with ``profile=True`` and its format has an op profiler (:attr:`Format.op_profiler`)."""
        raise DeploykitError("this runtime's session gives no per-op times")


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
    is_folder: bool = False  # its artifact is a folder (a Core ML .mlpackage), not one file
    precisions: tuple[str, ...] = ("fp32",)
    default_precision: str = "fp32"
    options: tuple[str, ...] = ()  # export options only this format takes (e.g. fp16_input)
    tools: tuple[str, ...] = ()  # packages whose versions its manifests record
    rule_aliases: dict[str, str] = {}  # older names of its compatibility rule sets
    # A second int8 kernel set its host session runs with ``reference_kernels=True`` (LiteRT's reference kernels):
    # int8 verification calibrates its threshold on how well the two agree on the same file. "" when none.
    reference_kernels: str = ""
    # What times each op of a host session opened with ``profile=True`` (its ``op_profile()``), in a few words;
    # "" when nothing does, and then ``no_op_profiler`` says why in one line (what the runtime offers instead).
    op_profiler: str = ""
    no_op_profiler: str = ""
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

    def batched(self, path: Path, manifest: Manifest, batch: int) -> Batched:
        """The file (or a sibling made for it) to run ``batch`` images per invocation, and how: ``bench --batch``.
        A format whose runtime cannot change the batch of a file raises a DeploykitError saying so in one line."""
        raise DeploykitError(
            f"{self.name} runs a file at the batch it was exported with: throughput at batch {batch} needs an export"
            " at that batch, which bench does not make for this format"
        )

    def memory_graph(self, path: Path) -> MemoryGraph | None:
        """The file's weights and activation lifetimes in its runtime's execution order (the memory estimator's
        input, ``deploykit.estimator.memory``), where the format can read them; else None."""
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
            if Path(path).is_dir() and not f.is_folder:  # readers would say only "Is a directory"
                raise DeploykitError(
                    f"{path} is a folder, not a {f.suffix} file", hint=f"give the {f.suffix} file itself"
                )
            return f
    known = ", ".join(f.suffix for f in formats() if f.suffix)
    if Path(path).is_dir():
        raise DeploykitError(f"{path} is a folder, not an exported model", hint=f"give one {known} file in it")
    raise DeploykitError(f"{Path(path).name}: not a file deploykit reads", hint=f"give a {known} file")


def artifact_name(model: str, resolution: int, fmt: str, precision: str) -> str:
    return f"{model}-{resolution}-{fmt}-{precision}{get(fmt).suffix}"
