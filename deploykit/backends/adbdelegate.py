"""Vendor NPU delegates on Android phones over adb: TFLite's ``benchmark_model`` loading an external delegate
library the user gives by path, e.g. Qualcomm's QNN delegate (``libQnnTFLiteDelegate.so`` from the Qualcomm AI
Engine Direct SDK) running the graph on the Hexagon NPU (HTP).

Why: NNAPI, the only accelerator path of ``litert-nnapi``, is deprecated since Android 15; vendors ship their
NPUs as TFLite delegates instead. Serves ``litert-qnn`` (processor ``npu``). Everything else (pushing the model
and benchmark_model, repetitions, thermal state, parsing) is the ``adb`` plugin's (``adb.py``); this module adds
the library: ``--delegate-library PATH`` (or ``$DEPLOYKIT_DELEGATE_LIBRARY``) is pushed to the phone together
with every other ``.so`` in its folder (QNN's delegate loads ``libQnnHtp.so``, ``libQnnSystem.so`` and the
``libQnnHtpV*Skel.so`` DSP libraries at run time: put them beside it), and benchmark_model runs with
``--external_delegate_path=…`` and ``--external_delegate_options=…`` (``--delegate-options``, default
``backend_type:htp``: the QNN delegate's mandatory key; Qualcomm's "External delegate options for QNN delegate"
lists the others). Without a library the phone's ``litert-qnn`` targets are listed as not runnable, with why.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import DeploykitError
from ..targets import FoundDevice, Profile, Target
from .adb import REMOTE_DIR, Adb, AdbDevice
from .base import Runtime, register

DEFAULT_OPTIONS = "backend_type:htp"


def delegate_library(explicit: str | None = None) -> Path | None:
    """``--delegate-library`` (must exist: a usage error otherwise), else ``$DEPLOYKIT_DELEGATE_LIBRARY``, else None."""
    if explicit:
        if not Path(explicit).is_file():
            raise DeploykitError(f"--delegate-library {explicit}: file not found", hint="give the delegate's .so file")
        return Path(explicit)
    env = os.environ.get("DEPLOYKIT_DELEGATE_LIBRARY")
    return Path(env) if env and Path(env).is_file() else None


class AdbDelegate(Adb):
    name = "adbdelegate"
    serves = {"litert-qnn": Runtime("tflite", "npu")}
    description = "Android phones over adb, benchmark_model with a vendor NPU delegate library (--delegate-library)"

    library: Path | None = None
    options: str = DEFAULT_OPTIONS

    def configure(self, options: dict) -> None:
        self.library = delegate_library(options.get("delegate_library"))
        self.options = options.get("delegate_options") or DEFAULT_OPTIONS

    def preflight(self, options: dict) -> None:
        super().preflight(options)
        self.configure(options)
        if self.library is None:
            raise DeploykitError("litert-qnn needs the delegate library", hint="pass --delegate-library PATH")

    def discover(self) -> list[FoundDevice]:
        if self.library is None:
            self.library = delegate_library()
        return super().discover() if self.library is not None else []

    def how_to_reach(self, profile: Profile) -> str:
        if self.library is None:
            return "needs the vendor's TFLite delegate library: pass --delegate-library PATH (e.g. libQnnTFLiteDelegate.so)"
        return super().how_to_reach(profile)

    def target_runtime(self, target: Target) -> tuple[Runtime, str]:
        return self.serves[target.backend], target.precision

    def push_delegate(self, dev: AdbDevice, target: Target) -> dict:
        lib = self.library or delegate_library()
        if lib is None:
            raise DeploykitError("litert-qnn needs the delegate library", hint="pass --delegate-library PATH")
        for f in sorted(lib.parent.glob("*.so")):
            if f != lib:
                dev.push(f, f"{REMOTE_DIR}/{f.name}")
        dev.push(lib, f"{REMOTE_DIR}/{lib.name}")
        return {"path": f"{REMOTE_DIR}/{lib.name}", "options": self.options}


register(AdbDelegate())
