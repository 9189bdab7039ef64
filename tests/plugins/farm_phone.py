"""The farm tests' phones: the real adb backend against the scripted stand-in, with a format that exports in
milliseconds (a real TFLite conversion takes 30-60 s on the test machine; the farm tests measure scheduling,
placement and faults, not conversion).

Loaded through ``$DEPLOYKIT_PLUGINS=tests.plugins.farm_phone``; profiles ``fake-a``/``fake-b`` in
``tests/plugins/farm/`` match the stand-in's phones ``FAKE_A`` ("Fake A") and ``FAKE_B`` ("Fake B").
"""

from __future__ import annotations

from pathlib import Path

from deploykit.artifact import TensorSpec
from deploykit.backends.adb import Adb
from deploykit.backends.base import Runtime
from deploykit.backends.base import register as register_backend
from deploykit.exporters.base import Described, Format
from deploykit.exporters.base import register as register_format


class StateDictFormat(Format):
    """The model's weights as torch.save writes them: a real file whose bytes depend on the model."""

    name = "statedict"
    suffix = ".statedict"
    description = "a test format: the state dict, for the farm tests"

    def convert(self, model, example, out: Path, precision: str, calib, options: dict) -> dict:
        import torch

        torch.save(model.state_dict(), out)
        return {"ops": {"state_dict": len(model.state_dict())}}

    def describe(self, path: Path, precision: str, info: dict) -> Described:
        r = info["resolution"]
        return Described([TensorSpec("input", [1, 3, r, r], "float32")], [], {"state_dict": 1})

    def cannot_run_here(self) -> str | None:
        return "statedict files run on no host"


class FakePhone(Adb):
    """adb's measure() (push, benchmark_model, parse) on a phone target that runs statedict files."""

    name = "fakephone"
    serves = {"fakephone-cpu": Runtime("statedict", "cpu")}
    description = "the farm tests' phones (adb stand-in)"


register_format(StateDictFormat())
register_backend(FakePhone())
