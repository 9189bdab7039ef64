"""Each measured op mapped back to the zoo model's layers (``deploykit/analysis.py``'s deployed layers, the ones
the estimator predicts), in three passes:

1. by name, where the exporter kept module paths in what the runtime reports (ONNX Runtime's optimized graph
   names its parameters ``stages.2.0.pw_exp.conv.weight``; litert-torch names TFLite tensors by module scope): an
   op takes the first unclaimed layer its names point at whose kind it can run; an op of another kind named for
   a matched layer (an explicit PAD before a convolution) adds its time to that layer;
2. by order, op kind and shape, between those anchors: an alignment that keeps both sequences' order and
   maximises agreement (an XNNPACK ETDump names no modules: its ops are placed this way alone);
3. fused: a layer the runtime folded into another layer's op (an ONNX Runtime convolution that took the residual
   Sum, a TFLite op whose tensor name lists the activation) is marked as run inside it, with 0 ms of its own.

BatchNorm and ReLU/ReLU6 right after a convolution are not deployed layers at all (the analysis marks them
fused): they are listed with their convolution. Ops that map to no layer (layout conversions, a delegate that
ran many layers as one) are listed as unmatched, never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .records import LayerProfile, OpProfile, OpTime

# an analysis layer kind → the op kinds a runtime may run it as (XNNPACK runs a 1x1 convolution as a fully
# connected GEMM, TFLite as CONV_2D; a Linear is a 1x1 convolution to some converters)
COMPATIBLE = {
    "conv": {"conv"},
    "stem": {"conv", "stem"},  # runtimes report a stem as a convolution
    "pwconv": {"pwconv", "conv", "matmul"},
    "dwconv": {"dwconv"},
    "matmul": {"matmul", "pwconv"},
}
ELEMENTWISE = {"add", "mul", "act", "norm"}
FORMAT = 1  # bump when the stored table's keys change


def can_run(op_kind: str, layer_kind: str) -> bool:
    return op_kind in COMPATIBLE.get(layer_kind, {layer_kind})


@dataclass
class Joined:
    """The per-layer table of one profiled run, with what did not join."""

    rows: list[LayerProfile]
    unmatched_ops: list[OpTime]
    findings_unplaced: list[dict] = field(default_factory=list)

    @property
    def matched_share(self) -> float:
        """Layers that an op ran (by name, order, or fused into one), of all deployed layers."""
        return sum(r.match is not None for r in self.rows) / len(self.rows) if self.rows else 0.0

    def to_dict(self, profile: OpProfile) -> dict:
        unmatched_ms = sum(o.ms or 0.0 for o in self.unmatched_ops)
        return {
            "format": FORMAT,
            "source": profile.source,
            "runtime": profile.runtime,
            "runs": profile.runs,
            "op_sum_ms": profile.op_ms,  # each op's own median (or mean), summed: one uncontended inference
            "run_op_sum_ms": profile.run_op_ms,  # per inference, the ops summed; the median over inferences
            "tool_run_ms": profile.run_ms,
            "layers": len(self.rows),
            "matched": {m: sum(r.match == m for r in self.rows) for m in ("name", "order", "fused")},
            "matched_share": self.matched_share,
            "unmatched_layers": [r.layer for r in self.rows if r.match is None],
            "unmatched_ops": [_op_row(o) for o in self.unmatched_ops],
            "unmatched_op_ms": unmatched_ms,
            "findings_unplaced": self.findings_unplaced,
            "notes": list(profile.notes),
            "rows": [r.to_dict() for r in self.rows],
        }


def _op_row(o: OpTime) -> dict:
    return {"name": o.name, "op_type": o.op_type, "kind": o.kind, "ms": o.ms, "ran_on": o.ran_on,
            "fallback": o.fallback, "calls": o.calls}  # fmt: skip


def join(
    profile: OpProfile,
    analysis,
    kinds: list[str] | None = None,
    predicted: list | None = None,
    findings: list[dict] | None = None,
) -> Joined:
    """``analysis``: :class:`deploykit.analysis.Analysis` of the model at the profiled resolution; ``kinds``: the
    estimator's kinds of its deployed layers (attention matmuls told apart); ``predicted``: the estimator's
    ``LayerTime`` per deployed layer on the target (None where it has no figures); ``findings``: ``check``'s."""
    layers = analysis.deployed
    ops = profile.ops
    a = _Assign(layers, analysis.layers)
    a.by_name(ops)
    a.by_order(ops)
    a.fused_by_evidence(ops)
    rows = [a.row(i, ops, kinds, predicted) for i in range(len(layers))]
    used = set(a.primary.values()) | {p for ps in a.extra.values() for p in ps}
    unplaced = _place_findings(findings or [], ops, a, rows)
    return Joined(rows, [o for p, o in enumerate(ops) if p not in used], unplaced)


class _Assign:
    """Which op ran which deployed layer: ``primary`` (layer → op position), ``extra`` (layer → further ops
    named for it), ``fused_into`` (layer → the layer whose op ran it), ``how`` (layer → "name"/"order")."""

    def __init__(self, layers, every_layer):
        self.layers = layers
        self.primary: dict[int, int] = {}
        self.extra: dict[int, list[int]] = {}
        self.fused_into: dict[int, int] = {}
        self.how: dict[int, str] = {}
        self.index_of = {}
        for i, x in enumerate(layers):
            self.index_of.setdefault(x.name, []).append(i)
        self.known = {x.name for x in every_layer}
        # the BN/ReLU the analysis folds into each deployed layer: listed with it
        self.folded: dict[int, list[str]] = {}
        deployed_ids = {id(x): i for i, x in enumerate(layers)}
        last = None
        for x in every_layer:
            if id(x) in deployed_ids:
                last = deployed_ids[id(x)]
            elif last is not None:
                self.folded.setdefault(last, []).append(x.name)

    def free(self, i: int) -> bool:
        return i not in self.primary and i not in self.fused_into

    def resolve(self, module: str) -> str | None:
        """A module path as the runtime names it → a layer name: itself, or its longest known suffix (a
        wrapper's attribute in front: ``wrapped.stages.0.0.conv_dw``)."""
        parts = module.split(".")
        for k in range(len(parts)):
            name = ".".join(parts[k:])
            if name in self.known:
                return name
        return None

    def by_name(self, ops: list[OpTime]) -> None:
        pending = []
        for p, op in enumerate(ops):
            named = sorted({i for m in op.modules if (n := self.resolve(m)) for i in self.index_of.get(n, [])})
            if not named:
                continue
            first = next((i for i in named if self.free(i) and can_run(op.kind, self.layers[i].op)), None)
            if first is None:
                pending.append((p, named[0]))
                continue
            self.primary[first], self.how[first] = p, "name"
            for i in named:  # the other layers its name lists, folded into it by the converter
                if i != first and self.free(i) and self.layers[i].op in ELEMENTWISE:
                    self.fused_into[i] = first
        for p, i in pending:  # a PAD or a reorder named for a layer that some op ran: part of that layer's cost
            if i in self.primary:
                self.extra.setdefault(i, []).append(p)

    def by_order(self, ops: list[OpTime]) -> None:
        taken = set(self.primary.values()) | {p for ps in self.extra.values() for p in ps}
        anchors = sorted((p, i) for i, p in self.primary.items())
        prev_p, prev_i = -1, -1
        for p, i in [*anchors, (len(ops), len(self.layers))]:
            if i <= prev_i:
                continue  # out of order with the previous anchor: nothing between them to align
            gap_ops = [q for q in range(prev_p + 1, p) if q not in taken]
            gap_layers = [j for j in range(prev_i + 1, i) if self.free(j)]
            for q, j in _align([ops[q] for q in gap_ops], [self.layers[j] for j in gap_layers]):
                self.primary[gap_layers[j]], self.how[gap_layers[j]] = gap_ops[q], "order"
            prev_p, prev_i = p, i

    def fused_by_evidence(self, ops: list[OpTime]) -> None:
        for i, p in sorted(self.primary.items()):
            for kind in ops[p].fuses:
                for j in range(i + 1, min(i + 4, len(self.layers))):
                    if not self.free(j):
                        break
                    if self.layers[j].op == kind:
                        self.fused_into[j] = i
                        break

    def row(self, i: int, ops: list[OpTime], kinds, predicted) -> LayerProfile:
        x = self.layers[i]
        r = LayerProfile(i, x.name, kinds[i] if kinds else x.op, x.macs, None, None, fused=list(self.folded.get(i, [])))
        if predicted is not None:
            t = predicted[i]
            r.predicted_ms, r.bound = t.time_s * 1e3, t.bound
            r.intensity = t.macs / t.bytes if t.bytes else None
        r.fused += [self.layers[j].name for j, k in sorted(self.fused_into.items()) if k == i]
        if i in self.primary:
            mine = [ops[p] for p in [self.primary[i], *self.extra.get(i, [])]]
            times = [o.ms for o in mine if o.ms is not None]
            r.measured_ms = sum(times) if times else None
            r.match, r.ops, r.op_types = self.how[i], [o.name for o in mine], [o.op_type for o in mine]
            r.ran_on, r.fallback = mine[0].ran_on, any(o.fallback for o in mine)
        elif i in self.fused_into:
            host = ops[self.primary[self.fused_into[i]]]
            r.measured_ms, r.match, r.fused_into = 0.0, "fused", self.layers[self.fused_into[i]].name
            r.ran_on, r.fallback = host.ran_on, host.fallback
        return r


def _align(ops: list[OpTime], layers: list) -> list[tuple[int, int]]:
    """Pairs (op, layer) keeping both orders, maximising agreement: a pair needs an op kind that can run the
    layer (2), scores 1 more for the exact kind and 1 for the same output shape; anything may stay unpaired."""
    n, m = len(ops), len(layers)
    if not n or not m:
        return []

    def score(o: OpTime, x) -> int:
        if not can_run(o.kind, x.op):
            return -1
        same_shape = o.out_shape is not None and tuple(o.out_shape) == tuple(x.out_shape)
        return 2 + (o.kind == x.op) + same_shape

    best = [[0] * (m + 1) for _ in range(n + 1)]
    for a in range(n - 1, -1, -1):
        for b in range(m - 1, -1, -1):
            s = score(ops[a], layers[b])
            pair = best[a + 1][b + 1] + s if s > 0 else -1
            best[a][b] = max(pair, best[a + 1][b], best[a][b + 1])
    pairs, a, b = [], 0, 0
    while a < n and b < m:
        s = score(ops[a], layers[b])
        if s > 0 and best[a][b] == best[a + 1][b + 1] + s:
            pairs.append((a, b))
            a, b = a + 1, b + 1
        elif best[a][b] == best[a + 1][b]:
            a += 1
        else:
            b += 1
    return pairs


def _place_findings(findings: list[dict], ops: list[OpTime], a: _Assign, rows: list[LayerProfile]) -> list[dict]:
    """Each ``check`` finding onto the row of the op whose file index it names; the rest are returned."""
    layer_of_op = {p: i for i, p in a.primary.items()}
    layer_of_op |= {p: i for i, ps in a.extra.items() for p in ps}
    position = {o.index: p for p, o in enumerate(ops) if o.index is not None}
    unplaced = []
    for f in findings:
        p = position.get(f.get("op"))
        if p is not None and p in layer_of_op:
            rows[layer_of_op[p]].findings.append(f)
        else:
            unplaced.append(f)
    return unplaced
