"""Coral Edge TPU through LiteRT and libedgetpu (``load_delegate('libedgetpu.so.1')``), timed in this process.

The file should be the ``int8-edgetpu`` export compiled by Coral's ``edgetpu_compiler`` (``*_edgetpu.tflite``):
an uncompiled file runs entirely on the host CPU, which this backend reports as a CPU fallback rather than an
Edge TPU number. Never exercised on real hardware in this project's CI (no Coral attached).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import cache
from pathlib import Path

from ..targets import FoundDevice, Profile, Target
from .base import Artifact, Backend, BackendError, Runtime, register

CORAL_USB_IDS = ("1a6e:089a", "18d1:9302")  # before and after the runtime loads its firmware


# Where libedgetpu's installers put it (Debian packages, Coral's macOS installer, Homebrew), plus the loader path.
LIB_DIRS = (
    "/usr/lib",
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/local/lib",
    "/opt/homebrew/lib",
)


def find_library() -> str | None:
    """libedgetpu's path, by a look in the library folders (ctypes.util.find_library would run ldconfig and then
    a C compiler, 100 ms and more, on every `deploykit devices`)."""
    dirs = [*filter(None, os.environ.get("LD_LIBRARY_PATH", "").split(":")), *LIB_DIRS]
    return next((str(p) for d in dirs for p in sorted(Path(d).glob("libedgetpu.*")) if p.is_file()), None)


@cache
def find_edgetpu() -> dict:
    """Once per process: a device does not appear between two profiles' look-ups of the same command."""
    lib = find_library()
    pcie = [str(p) for p in Path("/dev").glob("apex_*")]
    usb = []
    if shutil.which("lsusb"):
        try:
            out = subprocess.run(["lsusb"], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.TimeoutExpired):
            out = ""
        usb = [line for line in out.splitlines() if any(i in line for i in CORAL_USB_IDS)]
    present = bool(lib) and bool(pcie or usb)
    how = f"libedgetpu: {'found' if lib else 'not found'}; PCIe: {pcie or 'none'}; USB: {len(usb)} Coral device(s)"
    return {"present": present, "how": how, "library": lib, "devices": pcie + usb}


class EdgeTpuSession:
    def __init__(self, path: Path, library: str):
        import numpy as np
        from ai_edge_litert.interpreter import Interpreter, load_delegate

        self.it = Interpreter(model_path=str(path), experimental_delegates=[load_delegate("libedgetpu.so.1")])
        self.it.allocate_tensors()
        d = self.it.get_input_details()[0]
        self.it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
        compiled = "edgetpu-custom-op" in Path(path).read_bytes().decode("latin-1")
        self.env = {"library": library, "runtime": "ai-edge-litert + libedgetpu"}
        self.delegate = {
            "edgetpu_compiled": compiled,
            "note": None if compiled else "not compiled by edgetpu_compiler: ran on the CPU",
        }

    def run(self) -> None:
        self.it.invoke()


class Coral(Backend):
    name = "coral"
    reach = "coral"
    serves = {"edgetpu": Runtime("tflite", "npu")}
    isolate = False
    description = "Coral Edge TPU (USB or PCIe) through libedgetpu"

    def discover(self) -> list[FoundDevice]:
        found = find_edgetpu()
        if not found["present"]:
            return []
        return [FoundDevice("coral", d, "Coral Edge TPU", how=found["how"]) for d in found["devices"]]

    def how_to_reach(self, profile: Profile) -> str:
        return find_edgetpu()["how"]

    def target_runtime(self, target: Target):
        return self.serves[target.backend], "int8-edgetpu"

    def open(self, artifact: Artifact, target: Target):
        found = find_edgetpu()
        if not found["present"]:
            raise BackendError(f"no Edge TPU reachable ({found['how']})")
        return EdgeTpuSession(artifact.path, found["library"])


register(Coral())
