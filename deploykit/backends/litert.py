"""LiteRT with XNNPACK on this machine: a .tflite file timed in a child process, ``threads`` threads."""

from __future__ import annotations

from ._host import HostBackend
from .base import Runtime, register


class LiteRT(HostBackend):
    name = "litert"
    serves = {"litert-xnnpack": Runtime("tflite", "cpu")}
    runtime_module = "ai_edge_litert"
    description = "LiteRT interpreter with the XNNPACK delegate, on this machine"
    runtime_imports = ("ai_edge_litert.interpreter",)
    load_covers = (
        "Interpreter(model_path) (the file memory-mapped), the XNNPACK delegate applied (weights packed) and"
        " allocate_tensors() (the arena planned), plus the random input"
    )


register(LiteRT())
