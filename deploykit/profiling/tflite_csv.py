"""TFLite ``benchmark_model --enable_op_profiling=true --op_profiling_output_mode=csv``: the per-op table,
from the file ``--op_profiling_output_file`` names or from the tool's log (where it goes without one).

The format, from TensorFlow's source (``tensorflow/lite/tools/benchmark/profiling_listener.cc`` writes the
sections, ``tensorflow/core/util/stats_calculator.cc`` the rows, ``tensorflow/lite/profiling/
profile_summarizer.cc`` the names; ``profile_summary_formatter.cc`` turns on CSV):

- a section headed ``Operator-wise Profiling Info for Regular Benchmark Runs:`` (after ``Profiling Info for
  Benchmark Initialization:``), holding tables each under a ``===== <title> =====`` line: ``Run Order`` (the one
  read here), ``Top by Computation Time``, ``Summary by node type``, then ``Timings (microseconds): count=…``;
- the CSV header ``node type, start, first, avg_ms, %, cdf%, mem KB, times called, name`` (releases before
  the ``start`` column: ``node type, first, avg_ms, …``), and one row per node, fields joined by ", ":
  ``CONV_2D, 0.117, 3.73, 3.64, 16.512%, 16.936%, 0, 1, [output tensor names]:node index``. The node type and
  the name may themselves hold ", " (``Convolution (NHWC, QC8) IGEMM``, a node with several outputs), so a row
  is read by the numbers between them, not split;
- ops of a delegate that profiles inside itself (XNNPACK) are named ``Delegate/<XNNPACK operator>:<id>``; a
  delegate that does not (the GPU delegate, NNAPI) is one row for all the nodes it took;
- ``avg_ms`` is per call and ``times called`` per inference: one row's time per inference is their product
  (rows sharing a name, several delegate partitions' ops, are summed into one by the tool).
"""

from __future__ import annotations

import re

from . import xnnpack
from .records import OpProfile, OpTime, ProfileError

SOURCE = "TFLite benchmark_model --enable_op_profiling (CSV)"
SECTION = "Operator-wise Profiling Info for Regular Benchmark Runs:"
_NUM = r"-?[\d.]+(?:e[-+]?\d+)?"
_TIMINGS = re.compile(r"Timings \(microseconds\): count=(\d+)(?:.*?\bavg=(" + _NUM + "))?")
_LOG_PREFIX = re.compile(r"^(?:\d\d-\d\d \d\d:\d\d:\d\d\.\d+\s+\d+\s+\d+ [VDIWEF] [\w.]+\s*:\s?)?(?:INFO: )?")
# TFLite builtin op → op kind (tensorflow/lite/builtin_ops.h names)
_KINDS = {
    "CONV_2D": "conv",
    "DEPTHWISE_CONV_2D": "dwconv",
    "FULLY_CONNECTED": "matmul",
    "BATCH_MATMUL": "matmul",
    "ADD": "add",
    "SUB": "add",
    "MUL": "mul",
    "DIV": "mul",
    "MEAN": "pool",
    "SUM": "pool",
    "AVERAGE_POOL_2D": "pool",
    "MAX_POOL_2D": "pool",
    "SOFTMAX": "softmax",
    "HARD_SWISH": "act",
    "LOGISTIC": "act",
    "RELU": "act",
    "RELU6": "act",
    "GELU": "act",
    "TANH": "act",
    "CONCATENATION": "concat",
    "PAD": "pad",
    "PADV2": "pad",
    "RESIZE_BILINEAR": "resize",
    "RESIZE_NEAREST_NEIGHBOR": "resize",
    "TRANSPOSE": "layout",
    "QUANTIZE": "layout",
    "DEQUANTIZE": "layout",
    "RESHAPE": "view",
    "SQUEEZE": "view",
}


def read_csv(text: str, processor: str = "cpu", runtime: str = "benchmark_model") -> OpProfile:
    """The Run Order table of the regular runs, from a CSV file or a log holding it. ``processor``: the class
    the target asked for (an op outside its delegate on a GPU/NPU target is a CPU fallback)."""
    lines = [_LOG_PREFIX.sub("", line).rstrip() for line in text.splitlines()]
    try:
        start = lines.index(SECTION)
    except ValueError:
        raise ProfileError(f"no '{SECTION}' section: not benchmark_model op-profiling output") from None
    header = next((i for i in range(start, len(lines)) if lines[i].startswith("node type, ")), None)
    if header is None or "Run Order" not in " ".join(lines[start:header]):
        raise ProfileError(
            "no CSV Run Order table after the op-profiling section (was --op_profiling_output_mode=csv given?)"
        )
    columns = [c.strip() for c in lines[header].split(", ")]
    row = _row_pattern(columns)
    ops, rows = [], lines[header + 1 :]
    for n, line in enumerate(rows):
        if not line.strip():
            break
        m = row.match(line)
        if m is None:
            raise ProfileError(f"line {header + n + 2}: not a Run Order row: {line[:80]!r}")
        ops.append(_op(m))
    else:
        raise ProfileError("the Run Order table does not end: the output is truncated")
    if not ops:
        raise ProfileError("the Run Order table is empty")
    _mark_fallbacks(ops, processor)
    total = next((m for line in lines[header:] if (m := _TIMINGS.search(line))), None)
    runs = int(total.group(1)) if total else 0
    run_ms = float(total.group(2)) / 1000 if total and total.group(2) else None
    return OpProfile(SOURCE, runtime, ops, runs, run_ms)


def _row_pattern(columns: list[str]) -> re.Pattern:
    """A row by its numeric columns: the node type is what comes before them, the name what follows."""
    numbers = {"start": _NUM, "first": _NUM, "avg_ms": _NUM, "%": _NUM + "%", "cdf%": _NUM + "%",
               "mem KB": _NUM, "times called": r"\d+"}  # fmt: skip
    if columns[0] != "node type" or columns[-1] != "name" or any(c not in numbers for c in columns[1:-1]):
        raise ProfileError(f"unknown Run Order columns: {', '.join(columns)}")
    middle = ", ".join(f"(?P<{_group(c)}>{numbers[c]})" for c in columns[1:-1])
    return re.compile(rf"^(?P<type>.+?), {middle}, (?P<name>.*)$")


def _group(column: str) -> str:
    return {"%": "pct", "cdf%": "cdf", "mem KB": "mem", "times called": "calls"}.get(column, column)


def _op(m: re.Match) -> OpTime:
    op_type, name = m["type"].strip(), m["name"].strip()
    calls = int(m["calls"])
    ms = float(m["avg_ms"]) * max(calls, 1)
    if name.startswith("Delegate/"):  # one XNNPACK (or other delegate-profiled) operator
        return OpTime(name, op_type, xnnpack.kind_of(name), ms, calls, ran_on="delegate")
    builtin = op_type.split("/", 1)[0]  # "CONV_2D/<op description>" where a kernel describes itself
    index = re.search(r":(\d+)$", name)
    outputs = name[: index.start()] if index else name
    return OpTime(name, builtin, _KINDS.get(builtin, "delegate" if "Delegate" in builtin else "other"), ms, calls,
                  ran_on=builtin if "Delegate" in builtin else "TFLite kernels", modules=modules_in(outputs),
                  index=int(index.group(1)) if index else None)  # fmt: skip


def modules_in(outputs: str) -> list[str]:
    """Module paths in a node's output tensor names. litert-torch names a tensor by the module scope of the
    ops fused into it, ``;``-separated, each scope ``<class>_<attribute>`` segments joined by ``/``:
    ``…/torch.nn.modules.container.Sequential_stages/…DepthwiseSeparable_0/torch.nn.modules.conv.Conv2d_conv_dw;2``
    is ``stages.0.conv_dw`` (plus a wrapper's attribute in front, which the join strips)."""
    found = []
    for scope in re.split(r"[;,\[\]]", outputs):
        parts = [seg.rsplit(".", 1)[-1] for seg in scope.strip().split("/")]
        attrs = [p.split("_", 1)[1] for p in parts if "_" in p]
        if len(attrs) > 0 and len(parts) > 1:
            found.append(".".join(attrs))
    return list(dict.fromkeys(found))


def _mark_fallbacks(ops: list[OpTime], processor: str) -> None:
    """Which rows ran outside the accelerator: builtin kernels beside a delegate, or anything but the delegate on
    a GPU/NPU/DSP target. A CPU target without a delegate runs everything on TFLite's own kernels, as asked."""
    delegated = any(o.ran_on != "TFLite kernels" for o in ops)
    for o in ops:
        o.fallback = o.ran_on == "TFLite kernels" and (delegated or processor != "cpu")
    if any(o.ran_on == "delegate" for o in ops):
        for o in ops:
            if o.ran_on == "delegate":
                o.ran_on = "XNNPACK" if xnnpack.kind_of(o.name) != "other" else "delegate"
