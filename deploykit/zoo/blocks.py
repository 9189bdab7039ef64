"""The torch modules behind the table rows of :mod:`.blockdefs`: one nn.Module per block kind, and
:func:`build_block` that turns a row into its module.

This is the only place block *implementations* live; the rows themselves (and the tables made of them) are
torch-free data in ``blockdefs.py`` so that the registry can be imported without torch. Module and parameter
names follow timm's so that timm checkpoints load through a short key map.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .blockdefs import BlockDef
from .layers import ConvNormAct, LayerScale2d, SqueezeExcite, act_layer, conv2d, make_divisible


@dataclass(frozen=True)
class BuildCtx:
    """Network-wide settings every block needs."""

    act: str
    bn_eps: float = 1e-5
    pad_same: bool = False  # TF "SAME" padding (checkpoints trained in TensorFlow)
    layer_scale: float | None = None  # MobileNetV4 hybrids: 1e-5


class ConvBlock(nn.Module):
    """conv-BN-act with timm's ``conv``/``bn1`` names (MobileNetV4 stem rows and last 1×1)."""

    def __init__(self, cin: int, d: BlockDef, c: BuildCtx):
        super().__init__()
        self.conv = conv2d(cin, d.out, d.k, d.stride, pad_same=c.pad_same)
        self.bn1 = nn.BatchNorm2d(d.out, eps=c.bn_eps)
        self.act1 = _act(d, c)
        self.has_skip = bool(d.skip) and d.stride == 1 and cin == d.out

    def forward(self, x):
        y = self.act1(self.bn1(self.conv(x)))
        return y + x if self.has_skip else y


class DepthwiseSeparable(nn.Module):
    def __init__(self, cin: int, d: BlockDef, c: BuildCtx):
        super().__init__()
        self.conv_dw = conv2d(cin, cin, d.k, d.stride, groups=cin, pad_same=c.pad_same)
        self.bn1 = nn.BatchNorm2d(cin, eps=c.bn_eps)
        self.act1 = _act(d, c)
        self.se = _se(cin, d) if d.se else nn.Identity()
        self.conv_pw = nn.Conv2d(cin, d.out, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(d.out, eps=c.bn_eps)
        self.act2 = _act(d, c) if d.pw_act else nn.Identity()
        self.has_skip = _skip(cin, d, default=not d.pw_act)

    def forward(self, x):
        y = self.se(self.act1(self.bn1(self.conv_dw(x))))
        y = self.act2(self.bn2(self.conv_pw(y)))
        return y + x if self.has_skip else y


class InvertedBottleneck(nn.Module):
    def __init__(self, cin: int, d: BlockDef, c: BuildCtx):
        super().__init__()
        mid = make_divisible(cin * d.exp)
        self.conv_pw = nn.Conv2d(cin, mid, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid, eps=c.bn_eps)
        self.act1 = _act(d, c)
        self.conv_dw = conv2d(mid, mid, d.k, d.stride, groups=mid, pad_same=c.pad_same)
        self.bn2 = nn.BatchNorm2d(mid, eps=c.bn_eps)
        self.act2 = _act(d, c)
        self.se = _se(mid, d) if d.se else nn.Identity()
        self.conv_pwl = nn.Conv2d(mid, d.out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(d.out, eps=c.bn_eps)
        self.has_skip = _skip(cin, d)

    def forward(self, x):
        y = self.act1(self.bn1(self.conv_pw(x)))
        y = self.se(self.act2(self.bn2(self.conv_dw(y))))
        y = self.bn3(self.conv_pwl(y))
        return y + x if self.has_skip else y


class FusedIB(nn.Module):
    """FusedIB: a full k×k expansion conv replaces 1×1 expand + depthwise (timm: EdgeResidual)."""

    def __init__(self, cin: int, d: BlockDef, c: BuildCtx):
        super().__init__()
        mid = make_divisible(cin * d.exp)
        self.conv_exp = conv2d(cin, mid, d.k, d.stride, pad_same=c.pad_same)
        self.bn1 = nn.BatchNorm2d(mid, eps=c.bn_eps)
        self.act1 = _act(d, c)
        self.se = _se(mid, d) if d.se else nn.Identity()
        self.conv_pwl = nn.Conv2d(mid, d.out, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(d.out, eps=c.bn_eps)
        self.has_skip = _skip(cin, d)

    def forward(self, x):
        y = self.se(self.act1(self.bn1(self.conv_exp(x))))
        y = self.bn2(self.conv_pwl(y))
        return y + x if self.has_skip else y


class UniversalInvertedBottleneck(nn.Module):
    """UIB (MobileNetV4 paper Fig. 4): [dw start] → 1×1 expand → [dw mid] → 1×1 project (→ layer scale)."""

    def __init__(self, cin: int, d: BlockDef, c: BuildCtx):
        super().__init__()
        act = d.act or c.act
        mid = make_divisible(cin * d.exp)
        if d.start_k:
            # The stride goes on the middle depthwise when there is one, else on the start depthwise.
            s = 1 if d.k else d.stride
            self.dw_start = ConvNormAct(cin, cin, d.start_k, s, cin, None, c.bn_eps, c.pad_same)
        else:
            self.dw_start = nn.Identity()
        self.pw_exp = ConvNormAct(cin, mid, 1, 1, 1, act, c.bn_eps)
        self.dw_mid = ConvNormAct(mid, mid, d.k, d.stride, mid, act, c.bn_eps, c.pad_same) if d.k else nn.Identity()
        self.pw_proj = ConvNormAct(mid, d.out, 1, 1, 1, None, c.bn_eps)
        self.layer_scale = LayerScale2d(d.out, c.layer_scale) if c.layer_scale is not None else nn.Identity()
        self.has_skip = _skip(cin, d)

    def forward(self, x):
        y = self.pw_proj(self.dw_mid(self.pw_exp(self.dw_start(x))))
        y = self.layer_scale(y)
        return y + x if self.has_skip else y


class MultiQueryAttention2d(nn.Module):
    """Mobile MQA (MobileNetV4 paper §3.2): ``heads`` query heads, one key and one value head shared by all.

    Keys and values are computed from a spatially reduced map (stride-``kv_stride`` depthwise conv + BN)
    when ``kv_stride > 1``, which cuts the attention's memory traffic by kv_stride². Written with explicit
    matmuls and softmax (no fused SDPA) so exporters see plain BATCH_MATMUL/SOFTMAX ops.
    """

    def __init__(self, dim: int, out: int, heads: int, key_dim: int, kv_stride: int, k: int, c: BuildCtx):
        super().__init__()
        self.heads, self.key_dim, self.value_dim = heads, key_dim, key_dim
        self.scale = key_dim**-0.5
        self.query = nn.Sequential()
        self.query.add_module("proj", nn.Conv2d(dim, heads * key_dim, 1, bias=False))
        self.key = self._kv(dim, key_dim, kv_stride, k, c)
        self.value = self._kv(dim, key_dim, kv_stride, k, c)
        self.output = nn.Sequential()
        self.output.add_module("proj", nn.Conv2d(heads * key_dim, out, 1, bias=False))

    @staticmethod
    def _kv(dim, kdim, kv_stride, k, c) -> nn.Sequential:
        seq = nn.Sequential()
        if kv_stride > 1:
            seq.add_module("down_conv", conv2d(dim, dim, k, kv_stride, groups=dim, pad_same=c.pad_same))
            seq.add_module("norm", nn.BatchNorm2d(dim, eps=c.bn_eps))
        seq.add_module("proj", nn.Conv2d(dim, kdim, 1, bias=False))
        return seq

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        q = self.query(x).reshape(b, self.heads, self.key_dim, h * w).transpose(-1, -2)  # b, heads, L, d
        k = self.key(x).flatten(2).unsqueeze(1)  # b, 1, d, M
        v = self.value(x).flatten(2).transpose(1, 2).unsqueeze(1)  # b, 1, M, d
        attn = torch.softmax((q * self.scale) @ k, dim=-1)  # b, heads, L, M
        o = (attn @ v).transpose(1, 2).reshape(b, h, w, self.heads * self.value_dim)
        return self.output(o.permute(0, 3, 1, 2))


class MobileMQABlock(nn.Module):
    """BN → Mobile MQA → layer scale, with a residual (timm: MobileAttention)."""

    def __init__(self, cin: int, d: BlockDef, c: BuildCtx):
        super().__init__()
        self.norm = nn.BatchNorm2d(cin, eps=c.bn_eps)
        self.attn = MultiQueryAttention2d(cin, d.out, d.heads, d.key_dim, d.kv_stride, d.k, c)
        self.layer_scale = LayerScale2d(d.out, c.layer_scale) if c.layer_scale is not None else nn.Identity()
        self.has_skip = _skip(cin, d)

    def forward(self, x):
        y = self.layer_scale(self.attn(self.norm(x)))
        return y + x if self.has_skip else y


BLOCKS: dict[str, type[nn.Module]] = {
    "conv": ConvBlock,
    "ds": DepthwiseSeparable,
    "ib": InvertedBottleneck,
    "fused_ib": FusedIB,
    "uib": UniversalInvertedBottleneck,
    "mqa": MobileMQABlock,
}


def build_block(cin: int, d: BlockDef, c: BuildCtx) -> nn.Module:
    return BLOCKS[d.kind](cin, d, c)


def _act(d: BlockDef, c: BuildCtx) -> nn.Module:
    return act_layer(d.act or c.act)


def _se(chs: int, d: BlockDef) -> nn.Module:
    # MobileNetV3: reduce to make_divisible(expanded × ratio), ReLU inside, hard-sigmoid gate.
    return SqueezeExcite(chs, make_divisible(chs * d.se), act="relu", gate="hsigmoid")


def _skip(cin: int, d: BlockDef, default: bool = True) -> bool:
    want = default if d.skip is None else d.skip
    return want and d.stride == 1 and cin == d.out
