"""One deployed op as the estimator sees it, whoever read it: the zoo analysis or a format's own file reader.

Ground floor, so that a format plugin can hand its file's graph to the estimator without importing it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Layer:
    name: str
    kind: str  # conv, pwconv, dwconv, matmul, attn_matmul, softmax, layer_norm, act, add, mul, pool, ...
    macs: int
    weight_elems: int
    in_elems: int
    out_elems: int
