"""The rows of a network table: :class:`BlockDef` and the short constructors the family tables are written with.

This module exists so that architectures stay plain data that can be read, listed and registered without
importing torch. A network is a table: stages of :class:`BlockDef` rows, as in the MobileNet papers' appendix
tables. One row says *what* a block is (kind, channels, kernels, stride, expansion); ``blocks.build_block``
(torch) says *how*.

Kinds (the MobileNetV4 paper's vocabulary, timm's short names in brackets):

- ``conv`` [cn]: plain conv-BN-act.
- ``ds`` [ds/dsa]: depthwise-separable (MobileNetV1; MobileNetV2/V3 first block).
- ``ib`` [ir]: inverted bottleneck 1×1 expand → k×k depthwise → SE → 1×1 project (MobileNetV2/V3).
- ``fused_ib`` [er]: FusedIB, k×k full expand conv → 1×1 project (MobileNetV4 stems).
- ``uib`` [uir]: Universal Inverted Bottleneck, optional depthwise *before* the expansion (``start_k``) and
  *between* expansion and projection (``mid_k``). Its four instantiations:
  ExtraDW (start_k and mid_k), IB (mid_k only), ConvNext-like (start_k only), FFN (neither).
- ``mqa`` : Mobile MQA, multi-query attention with one shared key/value head, keys and values optionally
  spatially reduced by a stride-2 depthwise conv (``kv_stride``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class BlockDef:
    kind: str
    out: int
    stride: int = 1
    k: int = 3  # main depthwise kernel (ds/ib/uib mid), full conv kernel (conv/fused_ib), kv-downsample kernel (mqa)
    exp: float = 1.0
    start_k: int = 0  # uib: depthwise before expansion (0 = none)
    se: float = 0.0  # SE reduction ratio of the expanded channels
    act: str | None = None  # None: the network's default activation
    pw_act: bool = False  # ds: activation after the pointwise conv (MobileNetV1)
    skip: bool | None = None  # None: residual when shapes allow (conv blocks: never)
    heads: int = 0
    key_dim: int = 0
    kv_stride: int = 1


def rep(n: int, block: BlockDef) -> list[BlockDef]:
    """``n`` copies of a row; only the first of a stage may be strided (handled by :func:`stage_rows`)."""
    return [block] * n


def conv(out, k=3, s=1, **kw):
    return BlockDef("conv", out, s, k, **kw)


def ds(out, k=3, s=1, **kw):
    return BlockDef("ds", out, s, k, **kw)


def ib(out, k=3, s=1, e=6.0, **kw):
    return BlockDef("ib", out, s, k, e, **kw)


def fused_ib(out, k=3, s=1, e=4.0, **kw):
    return BlockDef("fused_ib", out, s, k, e, **kw)


def uib(out, start_k, mid_k, s=1, e=4.0, **kw):
    return BlockDef("uib", out, s, mid_k, e, start_k=start_k, **kw)


def mqa(out, heads, key_dim, kv_stride=1, k=3, **kw):
    return BlockDef("mqa", out, 1, k, heads=heads, key_dim=key_dim, kv_stride=kv_stride, **kw)


def stage_rows(stage: list) -> list[BlockDef]:
    """Flatten a stage (rows and lists of rows) and keep the stride on its first block only."""
    rows: list[BlockDef] = []
    for item in stage:
        rows.extend(item if isinstance(item, list) else [item])
    return [r if i == 0 else replace(r, stride=1) for i, r in enumerate(rows)]


@dataclass(frozen=True)
class HeadDef:
    """The classifier head: feature conv width and where it sits (see ``layers.ClassifierHead``)."""

    hidden: int = 0
    where: str = "none"
    norm: bool = True
    bias: bool = False
    scale_hidden: bool = False  # MobileNetV2: hidden = max(1280, round(1280 × width))


@dataclass(frozen=True)
class MobileNetDef:
    stem: int
    stages: list
    head: HeadDef
    act: str
    width: float = 1.0
    fix_stem: bool = False  # keep the stem width when the width multiplier is < 1
    bn_eps: float = 1e-5
    pad_same: bool = False
    layer_scale: float | None = None
