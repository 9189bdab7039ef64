"""What the three host backends (LiteRT, ONNX Runtime, PyTorch) share: this machine as their one device, found
when their runtime is installed, and a session from their format plugin fed with a seeded random input."""

from __future__ import annotations

import importlib.util

from ..machine import host_info, host_model
from ..targets import FoundDevice, Profile, Target
from .base import Artifact, Backend


class HostBackend(Backend):
    reach = "host"
    runtime_module = ""  # the import name whose presence makes this backend available
    runtime_imports: tuple[str, ...] = ()  # what opening a session imports (the memory baseline imports them)

    def import_runtime(self, target: Target) -> None:
        import importlib

        import numpy  # noqa: F401  (the session's random input)

        from ..exporters.base import get

        get(self.serves[target.backend].format)
        for name in self.runtime_imports or (self.runtime_module,):
            importlib.import_module(name)

    def discover(self) -> list[FoundDevice]:
        if importlib.util.find_spec(self.runtime_module) is None:
            return []
        return [FoundDevice("host", host_info()["hostname"], host_model(), how="this machine")]

    def how_to_reach(self, profile: Profile) -> str:
        if profile.match:
            return f"run deploykit on the device itself (this host is {host_model()!r})"
        return f"{self.runtime_module} is not installed"

    def session_options(self) -> dict:
        """Extra options for the format's session (ONNX Runtime's execution providers, say)."""
        return {}

    def open(self, artifact: Artifact, target: Target, profile: bool = False):
        """The target format's own host session with ``target.threads`` threads, fed a seeded random input;
        ``profile``: with its runtime's op profiler on (see :meth:`op_profiler`)."""
        from ..exporters.base import get

        session = get(self.serves[target.backend].format).open_session(
            artifact.path, artifact.manifest, threads=target.threads, model=artifact.model,
            resolution=artifact.resolution, input_shapes=artifact.input_shapes, profile=profile,
            **self.session_options(),
        )  # fmt: skip
        session.feed_random(seed=0)
        return session

    def op_profiler(self, target: Target) -> str | None:
        """The format's host session profiles its ops, or says why it cannot."""
        from ..exporters.base import get

        fmt = get(self.serves[target.backend].format)
        if fmt.op_profiler and self.isolate:  # profiled in the harness's child, as it is timed
            return None
        return fmt.no_op_profiler or f"{fmt.name}'s host session gives no per-op times"
