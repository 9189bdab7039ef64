"""The PyTorch "format": no file, the zoo model itself in eager mode. It exists so that the PyTorch backend
measures through the same session interface as every file format, and a sweep can name it (``--formats
pytorch``); nothing is exported.
"""

from __future__ import annotations

from .base import Format, HostSession, register


class EagerSession(HostSession):
    """A zoo model in deploy form (RepViT reparameterized), eval mode, under ``torch.inference_mode``."""

    def __init__(self, model: str, resolution: int, threads: int | None = None):
        import torch

        from deploykit.zoo import get_spec

        if threads:
            torch.set_num_threads(threads)
        self.torch = torch
        self.model = get_spec(model).build()
        if hasattr(self.model, "reparameterize"):
            self.model.reparameterize()
        self.shape = [1, 3, resolution, resolution]
        self.env = {"runtime": "torch " + torch.__version__, "threads": threads, "mode": "eager, inference_mode"}
        self.delegate = {"delegate": None}

    def input_shape_nchw(self) -> list[int]:
        return self.shape

    def feed(self, x_nchw):
        self._x = self.torch.from_numpy(x_nchw)

    def invoke(self):
        with self.torch.inference_mode():
            self._y = self.model(self._x)

    def output(self):
        return self._y.numpy().reshape(len(self._y), -1)


class Pytorch(Format):
    name = "pytorch"
    suffix = None
    precisions = ("fp32",)
    description = "the PyTorch model itself (eager), no file"
    no_op_profiler = "deploykit does not read torch.profiler's op times: the exported files' runtimes are profiled"

    def open_session(self, path, manifest, model: str = "", resolution: int = 224, threads: int | None = None, **_):
        return EagerSession(model, resolution, threads)


register(Pytorch())
