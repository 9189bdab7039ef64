"""Coral Edge TPU through LiteRT and libedgetpu (``load_delegate('libedgetpu.so.1')``).

The file should be the ``int8-edgetpu`` export compiled by Coral's ``edgetpu_compiler`` (``*_edgetpu.tflite``):
an uncompiled file runs entirely on the host CPU, which this runner reports as a CPU fallback rather than an
Edge TPU number. Never exercised on real hardware in this project's CI (no Coral attached).
"""

from __future__ import annotations

import ctypes.util
import shutil
from pathlib import Path

from ..devices import Target, run_quiet
from ..errors import DeploykitError
from ..measurement import Measurement, summarize, time_invocations

CORAL_USB_IDS = ("1a6e:089a", "18d1:9302")  # before and after the runtime loads its firmware


def find_edgetpu() -> dict:
    lib = ctypes.util.find_library("edgetpu")
    pcie = [str(p) for p in Path("/dev").glob("apex_*")]
    usb = []
    if shutil.which("lsusb"):
        proc = run_quiet(["lsusb"])
        usb = [line for line in (proc.stdout.splitlines() if proc else []) if any(i in line for i in CORAL_USB_IDS)]
    present = bool(lib) and bool(pcie or usb)
    how = f"libedgetpu: {'found' if lib else 'not found'}; PCIe: {pcie or 'none'}; USB: {len(usb)} Coral device(s)"
    return {"present": present, "how": how, "library": lib}


def run_edgetpu(target: Target, artifact: str, manifest, model: str, resolution: int, method) -> Measurement:
    found = find_edgetpu()
    if not found["present"]:
        raise DeploykitError("no Edge TPU reachable", hint=found["how"])
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter, load_delegate

    compiled = "edgetpu-custom-op" in Path(artifact).read_bytes().decode("latin-1")
    it = Interpreter(model_path=artifact, experimental_delegates=[load_delegate("libedgetpu.so.1")])
    it.allocate_tensors()
    d = it.get_input_details()[0]
    it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
    reps = time_invocations(it.invoke, method.warmup, method.repetitions, method.runs, method.budget_s)
    m = Measurement.for_target(
        target,
        model,
        resolution,
        artifact=artifact,
        artifact_sha256=manifest.sha256 if manifest else None,
        env={"library": found["library"], "how": found["how"]},
    )
    m.stats = summarize(reps)
    m.median_ms = m.stats["median_of_means"]
    m.samples_ms = [s for r in reps for s in r]
    m.delegate = {
        "edgetpu_compiled": compiled,
        "note": None if compiled else "not compiled by edgetpu_compiler: ran on the CPU",
    }
    return m
