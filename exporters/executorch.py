"""The ExecuTorch format: a ``.pte`` program lowered to XNNPACK (``executorch_convert.py``), read back with
ExecuTorch's own flatbuffer deserializer, judged by the ``executorch-xnnpack`` rule set (which ops stayed outside
the delegate, on the portable kernels) and run on the host with ExecuTorch's Python runtime
(``executorch.runtime``), XNNPACK's threadpool set to ``threads``.

Core ML- and MPS-delegated programs need ExecuTorch's Apple backends, which lower only on macOS (coremltools'
compiler and the MPS graph are macOS frameworks); on Linux this format writes XNNPACK programs only and says so
(:data:`APPLE_NOTE`). ExecuTorch is an optional extra: ``pip install 'deploykit[executorch]'``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from deploykit.artifact import Manifest, TensorSpec
from deploykit.errors import DeploykitError, FileError

from .base import Described, Format, HostSession, register, resolve_shapes, user_manifest
from .quiet import quiet

RULE = "executorch-xnnpack"
APPLE_NOTE = (
    "Core ML/MPS-delegated .pte files need ExecuTorch's Apple backends, which lower only on macOS;"
    " this file is XNNPACK-delegated"
)
# ExecuTorch's ScalarType codes (schema/scalar_type.fbs) → numpy dtype names.
_SCALAR = {0: "uint8", 1: "int8", 2: "int16", 3: "int32", 4: "int64", 5: "float16", 6: "float32", 7: "float64"}
_SCALAR[11] = "bool"


def read_program(path: Path):
    """The program's first execution plan (``forward``), deserialized from the file."""
    from .executorch_convert import require_executorch

    require_executorch()
    try:
        with quiet():  # importing the serializer loads torchao, which prints library warnings on stderr
            from executorch.exir._serialize._program import deserialize_pte_binary

            pte = deserialize_pte_binary(Path(path).read_bytes())
    except Exception as e:
        raise FileError(f"{Path(path).name} is not a readable ExecuTorch program: {str(e)[:200]}") from None
    program = getattr(pte, "program", pte)
    return program.execution_plan[0]


def op_histogram(plan) -> tuple[dict, list[tuple[int, str]]]:
    """``{op or delegate: count}`` over the plan's instructions, and the non-delegated ops as (index, name)."""
    ops: Counter = Counter()
    portable = []
    for i, ins in enumerate(plan.chains[0].instructions):
        args = ins.instr_args
        if hasattr(args, "delegate_index"):
            ops[f"delegate:{plan.delegates[args.delegate_index].id}"] += 1
        elif hasattr(args, "op_index"):
            op = plan.operators[args.op_index]
            name = op.name + (f".{op.overload}" if op.overload else "")
            ops[name] += 1
            portable.append((i, name))
    return dict(ops), portable


def _specs(plan, indices, layout_4d: str) -> list[TensorSpec]:
    out = []
    for n, i in enumerate(indices):
        v = plan.values[i].val
        shape = list(getattr(v, "sizes", []))
        dtype = _SCALAR.get(getattr(v, "scalar_type", 6), "float32")
        out.append(TensorSpec(f"{'input' if layout_4d else 'output'}_{n}", shape, dtype, layout_4d or "NC"))
    return out


class ExecutorchSession(HostSession):
    """ExecuTorch's Python runtime (``executorch.runtime``): the program's ``forward`` with XNNPACK's
    threadpool at ``threads`` threads (one pool per process: the host backend measures in its own child)."""

    def __init__(self, path, manifest, threads=None, input_shapes=None, profile=False):
        from .executorch_convert import require_executorch

        require_executorch()
        from importlib.metadata import version

        import torch

        with quiet():  # the runtime logs its CPU probing on stderr
            from executorch.extension.pybindings import portable_lib
            from executorch.runtime import Runtime

            if threads:
                portable_lib._unsafe_reset_threadpool(int(threads))
            try:
                # ``profile``: the runtime records an ETDump (these pybindings are built with event tracing)
                program = Runtime.get().load_program(Path(path), enable_etdump=bool(profile))
                self.method = program.load_method("forward")
            except Exception as e:
                raise FileError(
                    f"{Path(path).name}: ExecuTorch cannot load it: {' '.join(str(e).split())[:200]}"
                ) from None
            self.threads = portable_lib._threadpool_get_thread_count()
        self._torch, self._program, self._profile = torch, program, bool(profile)
        self.inputs = manifest.inputs
        self.shapes, self.notes = resolve_shapes(self.inputs, input_shapes)
        self.inp = self.inputs[0]
        self.env = {"runtime": "executorch " + version("executorch"), "threads": self.threads, "delegate": "XNNPACK"}
        self.delegate = {"delegate": "XnnpackBackend", "ops": manifest.ops or {}}

    def input_shape_nchw(self) -> list[int]:
        return list(self.shapes[self.inp.name])

    def feed(self, x_nchw):
        self._x = (self._torch.from_numpy(x_nchw.astype(self.inp.dtype)).contiguous(),)

    def feed_inputs(self, arrays: dict):
        self._x = tuple(self._torch.from_numpy(arrays[t.name]) for t in self.inputs)

    def invoke(self):
        try:
            self._y = self.method.execute(self._x)[0]
        except Exception as e:
            raise DeploykitError(f"ExecuTorch could not run it: {' '.join(str(e).split())[:300]}") from None

    def output(self):
        import numpy as np

        y = self._y.detach().numpy().astype(np.float32)
        return y.reshape(len(y), -1)

    def op_profile(self, skip: int = 0):
        """The events of the ETDump the runtime recorded, read with ExecuTorch's Inspector."""
        import tempfile

        from deploykit.profiling.etdump import read_etdump

        if not self._profile:
            return super().op_profile(skip)
        with tempfile.TemporaryDirectory(prefix="deploykit-etdump-") as tmp:
            dump = Path(tmp) / "run.etdp"
            with quiet():
                self._program.write_etdump_result_to_file(str(dump), str(Path(tmp) / "debug.bin"))
            data = dump.read_bytes() if dump.exists() else b""
        with quiet():  # the Inspector imports ExecuTorch's devtools, which print library warnings
            return read_etdump(data, skip, runtime=self.env["runtime"])


class Executorch(Format):
    name = "executorch"
    suffix = ".pte"
    precisions = ("fp32", "int8")
    description = "ExecuTorch program (XNNPACK-delegated), run with ExecuTorch's runtime"
    op_profiler = "ExecuTorch's ETDump (load_program(enable_etdump=True)), read by executorch.devtools.Inspector"
    tools = ("executorch", "torchao")

    def convert(self, model, example, out: Path, precision: str, calib, options: dict) -> dict:
        from .executorch_convert import export_pte

        info = export_pte(model, example, out, precision, calib)
        info["notes"] = [*info["notes"], APPLE_NOTE]
        return info

    def describe(self, path: Path, precision: str, info: dict) -> Described:
        plan = read_program(path)
        ops, portable = op_histogram(plan)
        notes = []
        if portable:
            names = sorted({n for _, n in portable})
            notes.append(f"{len(portable)} op(s) outside the XNNPACK delegate, on portable kernels: {', '.join(names)}")
        return Described(
            inputs=_specs(plan, plan.inputs, "NCHW"), outputs=_specs(plan, plan.outputs, ""), ops=ops, notes=notes
        )

    def manifest_from_file(self, path: Path) -> Manifest:
        """What the program declares. Its precision is not recorded in the file (an int8 XNNPACK program keeps
        float I/O and hides its weights in the delegate blob): taken as fp32 unless the name says int8."""
        plan = read_program(path)
        inputs, outputs = _specs(plan, plan.inputs, "NCHW"), _specs(plan, plan.outputs, "")
        precision = "int8" if "int8" in path.stem else "fp32"
        first = inputs[0].shape
        square = len(first) == 4 and first[2] == first[3]
        return user_manifest(path, self.name, precision, inputs, outputs, first[2] if square else 0)

    def compat_rules(self, precision: str) -> list[str]:
        return [RULE]

    def check(self, path: Path, rule: str) -> dict:
        """Every instruction that is not a delegate call runs on ExecuTorch's portable kernels: a warning each
        (it runs, outside XNNPACK, with a copy at each partition edge)."""
        from .compat import finding

        plan = read_program(path)
        ops, portable = op_histogram(plan)
        findings = [
            finding(i, name, "not delegated: runs on ExecuTorch's portable kernels", "warning") for i, name in portable
        ]
        delegates = {k.split(":", 1)[1]: v for k, v in ops.items() if k.startswith("delegate:")}
        return {"ops": len(plan.chains[0].instructions), "findings": findings, "delegates": delegates}

    def open_session(self, path, manifest, threads=None, input_shapes=None, profile=False, **_):
        return ExecutorchSession(path, manifest, threads, input_shapes, profile)


register(Executorch())
