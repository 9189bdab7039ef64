"""LiteRT with XNNPACK on this machine: a .tflite file timed in a child process, ``threads`` threads."""

from __future__ import annotations

from ._host import HostBackend
from .base import Runtime, register


class LiteRT(HostBackend):
    name = "litert"
    serves = {"litert-xnnpack": Runtime("tflite", "cpu")}
    runtime_module = "ai_edge_litert"
    description = "LiteRT interpreter with the XNNPACK delegate, on this machine"


register(LiteRT())
