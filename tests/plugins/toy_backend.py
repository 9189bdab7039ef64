"""A backend plugin from outside deploykit, as a user would write one: one module, registered on import.

Loaded through ``$DEPLOYKIT_PLUGINS=tests.plugins.toy_backend``; its device profile is ``toy.toml`` beside it.
The "board" runs the zoo model itself (format ``pytorch``: no export) and each inference is a 2 ms sleep, so
the harness's figures are known in advance; ``$TOY_UNPLUGGED`` makes every cell fail.
"""

from __future__ import annotations

import os
import time

from deploykit.backends.base import Artifact, Backend, BackendError, Runtime, register
from deploykit.targets import FoundDevice, Profile, Target


class ToySession:
    def __init__(self, artifact: Artifact):
        self.env = {"runtime": "toy 1.0", "model_seen": artifact.model}
        self.delegate = {"delegate": "toy-npu"}

    def run(self) -> None:
        time.sleep(0.002)


class Toy(Backend):
    name = "toy"
    reach = "toy"
    serves = {"toy-npu": Runtime("pytorch", "npu")}
    isolate = False
    description = "a toy accelerator board (tests)"

    def discover(self) -> list[FoundDevice]:
        return [FoundDevice("toy", "toy-0", "Toy Board rev 2", how="toy bus")]

    def how_to_reach(self, profile: Profile) -> str:
        return "plug the toy board in"

    def open(self, artifact: Artifact, target: Target) -> ToySession:
        if os.environ.get("TOY_UNPLUGGED"):  # how tests make a cell fail
            raise BackendError("the toy board stopped answering")
        return ToySession(artifact)


register(Toy())


class CrashingToy(Toy):
    """A board whose driver crashes natively: the harness runs it in a child process (``isolate``), and the
    abort must come back as a failed row naming the signal, never take deploykit down."""

    name = "toy-crash"
    reach = "toycrash"
    serves = {"toy-crash-npu": Runtime("pytorch", "npu")}
    isolate = True

    def discover(self) -> list[FoundDevice]:
        return [FoundDevice("toycrash", "toy-9", "Toy Board rev 2", how="toy bus")]

    def open(self, artifact: Artifact, target: Target) -> ToySession:
        os.abort()


register(CrashingToy())
