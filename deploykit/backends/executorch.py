"""ExecuTorch with XNNPACK on this machine: a .pte program timed in a child process, ``threads`` threads.

The same harness, child process and thread count as LiteRT's ``litert-xnnpack`` (``backends/litert.py``), so
the two runtimes share one table: both run XNNPACK, each with its own graph lowering and memory planning. The
session is the format plugin's (``exporters/executorch.py``), which sets XNNPACK's threadpool.
"""

from __future__ import annotations

from ._host import HostBackend
from .base import Runtime, register


class Executorch(HostBackend):
    name = "executorch"
    serves = {"executorch-xnnpack": Runtime("executorch", "cpu")}
    runtime_module = "executorch"
    description = "ExecuTorch runtime with the XNNPACK delegate, on this machine"
    runtime_imports = ("torch", "executorch.runtime", "executorch.extension.pybindings.portable_lib")
    load_covers = (
        "Runtime.load_program(path) and load_method('forward'): the program read, the XNNPACK delegate initialised"
        " (weights packed) and the planned memory allocated, plus the random input"
    )

    def how_to_reach(self, profile) -> str:
        if profile.match:
            return super().how_to_reach(profile)
        return "ExecuTorch is not installed (pip install 'deploykit[executorch]')"


register(Executorch())
