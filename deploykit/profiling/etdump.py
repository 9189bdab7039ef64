"""ExecuTorch's ETDump: the event trace a runtime built with event tracing writes, read with ExecuTorch's own
``executorch.devtools.Inspector`` (https://pytorch.org/executorch/stable/model-inspector.html).

The installed pybindings are built with it: ``Runtime.load_program(..., enable_etdump=True)``, then
``Program.write_etdump_result_to_file(path, debug_path)``. An XNNPACK-delegated program records one event per
XNNPACK operator inside the delegate (``Convolution (NHWC, F32) IGEMM #1``, delegate-profiled, names without
module paths: the join places them by order and kind), beside ``DELEGATE_CALL`` (the delegate's total, which
those sum to) and ``Method::execute`` (the whole inference). Ops outside the delegate run on ExecuTorch's
portable kernels: their events carry the instruction index that ``check`` findings name.
"""

from __future__ import annotations

import statistics
import tempfile
import warnings
from pathlib import Path

from . import xnnpack
from .records import OpProfile, OpTime, ProfileError

SOURCE = "ExecuTorch ETDump (executorch.devtools.Inspector)"
# events that are not ops: the whole inference, loading, and the delegate's total where its ops are profiled
_TOTALS = {"Method::execute", "Method::init", "Program::load_method"}
_DELEGATE_TOTAL = "DELEGATE_CALL"


def read_etdump(data: bytes, skip: int = 0, runtime: str = "") -> OpProfile:
    """The ops of an ETDump's inferences (the first ``skip`` of them, warm-up, left out), in execution order, each
    with its median over those inferences (a median: one preempted inference on a shared machine would move a
    mean by milliseconds; measured, a 0.02 ms op read 3.1 ms)."""
    if not data:
        raise ProfileError("the ETDump is empty")
    with tempfile.TemporaryDirectory() as tmp:  # the Inspector reads a path
        path = Path(tmp) / "run.etdp"
        path.write_bytes(data)
        try:
            with warnings.catch_warnings():  # "Output Buffer not found": no debug buffer was asked for
                warnings.simplefilter("ignore")
                from executorch.devtools import Inspector

                blocks = Inspector(etdump_path=str(path)).event_blocks
        except Exception as e:  # the flatbuffer reader raises whatever its parser met
            raise ProfileError(f"not a readable ETDump: {' '.join(str(e).split())[:200] or type(e).__name__}") from None
    execute = [b for b in blocks if any(e.name == "Method::execute" for e in b.events)]
    if not execute:
        raise ProfileError("the ETDump holds no executed inference (no Method::execute event)")
    events = execute[0].events
    total = next(e for e in events if e.name == "Method::execute")
    runs = len(total.perf_data.raw) if total.perf_data else 0
    skip = min(skip, max(runs - 1, 0))
    delegated = any(e.is_delegated_op for e in events)
    ops, per_run = [], []
    for e in events:
        if e.name in _TOTALS or (e.name == _DELEGATE_TOTAL and delegated) or not e.perf_data:
            continue
        times = list(e.perf_data.raw)[skip:] or list(e.perf_data.raw)
        per_run.append(times)
        if e.is_delegated_op:
            ops.append(OpTime(xnnpack.operator_name(e.name), xnnpack.operator_name(e.name),
                              xnnpack.kind_of(e.name), statistics.median(times), ran_on="XNNPACK"))  # fmt: skip
        else:  # an op on the portable kernels (or a delegate that profiles nothing inside itself)
            op = e.name.removeprefix("native_call_")
            ops.append(OpTime(op, op, _portable_kind(op), statistics.median(times),
                              ran_on="portable kernels", fallback=True, index=_instruction(e)))  # fmt: skip
    whole = list(total.perf_data.raw)[skip:] if total.perf_data else []
    n = min((len(t) for t in per_run), default=0)  # every op event holds one time per inference
    sums = [sum(t[k] for t in per_run) for k in range(n)]
    median = statistics.median(whole) if whole else None
    return OpProfile(SOURCE, runtime, ops, len(whole), median, run_op_ms=statistics.median(sums) if sums else None)


def _instruction(event) -> int | None:
    i = getattr(event, "_instruction_id", None)
    return int(i) if isinstance(i, int) else None


def _portable_kind(op: str) -> str:
    """``aten.add.out`` or ``aten::add`` → add; the analysis' ATen table without importing torch's analysis."""
    base = op.replace("::", ".").split(".")[1 if op.startswith("aten") else 0].rstrip("_")
    table = {"convolution": "conv", "add": "add", "mul": "mul", "mean": "pool", "_softmax": "softmax",
             "addmm": "matmul", "mm": "matmul", "bmm": "matmul", "cat": "concat", "hardswish": "act",
             "relu": "act", "sigmoid": "act", "gelu": "act", "native_layer_norm": "norm", "clone": "layout",
             "_to_copy": "layout", "permute_copy": "layout", "view_copy": "view"}  # fmt: skip
    return table.get(base, "other")
