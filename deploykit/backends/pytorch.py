"""PyTorch eager on this machine: the zoo model itself (no file), ``threads`` intra-op threads, in a child."""

from __future__ import annotations

from ._host import HostBackend
from .base import Runtime, register


class Pytorch(HostBackend):
    name = "pytorch"
    serves = {"pytorch": Runtime("pytorch", "cpu")}
    runtime_module = "torch"
    description = "PyTorch eager (inference_mode), on this machine"
    runtime_imports = ("torch", "deploykit.zoo")
    load_covers = "the zoo model built in deploy form with its seeded weights, plus the random input"


register(Pytorch())
