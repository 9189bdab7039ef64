"""ONNX Runtime on this machine, one backend per execution provider.

``onnxruntime`` runs the CPU execution provider. ``onnxruntime-cuda`` is the same backend with the CUDA
provider: it is found only where the installed onnxruntime ships its CUDA provider library and an NVIDIA device
node exists, and is skipped with that reason elsewhere. This module is docs/architecture.md's worked example
of adding a backend.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ..targets import FoundDevice, Profile, Target
from ._host import HostBackend
from .base import Artifact, Runtime, register


class OnnxRuntime(HostBackend):
    name = "onnxruntime"
    serves = {"onnxruntime": Runtime("onnx", "cpu")}
    runtime_module = "onnxruntime"
    providers = ("CPUExecutionProvider",)
    description = "ONNX Runtime, CPU execution provider, on this machine"
    runtime_imports = ("onnxruntime",)
    load_covers = (
        "InferenceSession(path): the file parsed, graph optimizations (ORT_ENABLE_ALL), kernels created and weights"
        " pre-packed, plus the random input; the first run allocates the activations"
    )

    def session_options(self) -> dict:
        return {"providers": self.providers}


class OnnxRuntimeCuda(OnnxRuntime):
    name = "onnxruntime-cuda"
    serves = {"onnxruntime-cuda": Runtime("onnx", "gpu")}
    providers = ("CUDAExecutionProvider", "CPUExecutionProvider")
    description = "ONNX Runtime, CUDA execution provider (onnxruntime-gpu), on this machine's NVIDIA GPU"

    def discover(self) -> list[FoundDevice]:
        spec = importlib.util.find_spec("onnxruntime")
        if spec is None or not spec.submodule_search_locations:
            return []
        capi = Path(next(iter(spec.submodule_search_locations))) / "capi"
        if not list(capi.glob("libonnxruntime_providers_cuda*")) or not Path("/dev/nvidia0").exists():
            return []
        return super().discover()

    def how_to_reach(self, profile: Profile) -> str:
        return "needs an NVIDIA GPU and onnxruntime-gpu (its CUDA provider library was not found)"

    def open(self, artifact: Artifact, target: Target, profile: bool = False):
        session = super().open(artifact, target, profile)
        if session.env["providers"][0] != self.providers[0]:  # ONNX Runtime falls back to the CPU silently
            raise RuntimeError(f"CUDA execution provider did not load (got {session.env['providers']})")
        return session


register(OnnxRuntime())
register(OnnxRuntimeCuda())
