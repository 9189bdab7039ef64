"""The typed records of a per-op profile: one measured op (:class:`OpTime`), one profiled run
(:class:`OpProfile`), and one zoo layer with what was measured and predicted for it (:class:`LayerProfile`).

Op kinds are the analysis' words (``deploykit/analysis.py``: conv, pwconv, dwconv, matmul, add, mul, act,
pool, norm, softmax, concat, pad, layout, resize, other), plus ``view`` for ops that move no data (a reshape):
each reader translates its runtime's op names into them, so the join compares like with like.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from ..errors import FileError


class ProfileError(FileError):
    """A recorded profile deploykit cannot read (truncated, garbage, another tool's file): one line, exit 1."""


@dataclass
class OpTime:
    """One op as a runtime's profiler timed it, in execution order."""

    name: str  # the runtime's own name for it (an ONNX node, "Delegate/Convolution (NHWC, F32) IGEMM:3", …)
    op_type: str  # the runtime's op type (Conv, CONV_2D, "Fully Connected (NC, F32) GEMM")
    kind: str  # the analysis' op kind it corresponds to (see the module docstring)
    ms: float | None  # time per inference: the median over the profiled runs where the tool gives each run
    # (ORT, ETDump), its mean where it gives only that (benchmark_model); None where it gives none
    calls: int = 1  # times it ran per inference (benchmark_model sums ops that share one name)
    ran_on: str = ""  # the execution provider, delegate or compute unit that ran it
    fallback: bool = False  # ran outside the accelerator or delegate the target asked for
    modules: list[str] = field(default_factory=list)  # module paths its name carries, where the exporter kept them
    fuses: list[str] = field(default_factory=list)  # kinds the runtime folded into it (an ORT conv's Sum: add)
    out_shape: list[int] | None = None  # NCHW, where the trace says
    index: int | None = None  # the node/instruction index in the file: what `check` findings name


@dataclass
class OpProfile:
    """A profiled run: every op with its time per inference over ``runs`` inferences, and where it comes from."""

    source: str  # the tool, e.g. "ONNX Runtime profiler (Chrome trace)"
    runtime: str = ""  # runtime name and version where known
    ops: list[OpTime] = field(default_factory=list)
    runs: int = 0  # profiled inferences the means are over (0: not said)
    run_ms: float | None = None  # the tool's own per-inference total (median, or its mean), where it reports one
    notes: list[str] = field(default_factory=list)
    # the median over the profiled inferences of each one's op times summed, where the tool gives each inference:
    # what compares with a timed median (each op's own median drops the preemption that, on a busy machine,
    # lands on some op of nearly every inference)
    run_op_ms: float | None = None

    @property
    def op_ms(self) -> float:
        """The sum of the op times of one inference (ops without a time count nothing)."""
        return sum(o.ms for o in self.ops if o.ms is not None)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> OpProfile:
        known = {f.name for f in fields(OpTime)}
        ops = [OpTime(**{k: v for k, v in o.items() if k in known}) for o in d.get("ops", [])]
        return cls(
            d["source"],
            d.get("runtime", ""),
            ops,
            d.get("runs", 0),
            d.get("run_ms"),
            d.get("notes", []),
            d.get("run_op_ms"),
        )


@dataclass
class LayerProfile:
    """One deployed layer of the zoo model: what ran it, its measured and predicted time, and why it is slow.

    The row the report and the estimator's per-layer fit read: ``kind``, ``measured_ms``, ``predicted_ms``,
    ``bound``, ``intensity``, ``ran_on``, ``findings`` and ``layer`` are the columns they key on."""

    index: int  # among the model's deployed layers (the estimator's order)
    layer: str  # module path, e.g. "stages.2.0.pw_exp.conv"
    kind: str  # the estimator's op kind (attention matmuls and LayerNorm told apart)
    macs: int
    measured_ms: float | None  # None: no op ran it (unmatched); 0.0: it ran inside another layer's op (fused)
    match: str | None  # "name", "order", "fused", or None (unmatched)
    ops: list[str] = field(default_factory=list)  # the runtime's op names that ran it
    op_types: list[str] = field(default_factory=list)
    fused_into: str | None = None  # the layer whose op ran this one
    fused: list[str] = field(default_factory=list)  # layers this one's op also ran (BN, activations, adds)
    ran_on: str = ""
    fallback: bool = False
    predicted_ms: float | None = None  # the roofline's prediction on the target (None: the target has no figures)
    bound: str | None = None  # compute, memory or fused, as the roofline says
    intensity: float | None = None  # MACs per byte moved, as the roofline counts bytes
    findings: list[dict] = field(default_factory=list)  # `deploykit check` findings on its ops

    def to_dict(self) -> dict:
        return asdict(self)
