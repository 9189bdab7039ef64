"""Small building pieces shared by every family: channel rounding, padded convs, conv-BN-act, SE, heads.

Module and parameter names inside these pieces follow timm's (``conv``/``bn``, ``conv_reduce``/``conv_expand``,
``gamma``) so that a timm checkpoint maps onto ours with a short, explicit key map (see ``deploykit.weights``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "hswish": nn.Hardswish,
    "hsigmoid": nn.Hardsigmoid,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "sigmoid": nn.Sigmoid,
}


def act_layer(name: str | None) -> nn.Module:
    """An activation module by short name; ``None`` gives identity."""
    return nn.Identity() if name is None else ACTIVATIONS[name]()


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None, round_limit: float = 0.9) -> int:
    """Round a channel count to a multiple of ``divisor``, never dropping more than 10% (TF/timm rule)."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < round_limit * v:
        new_v += divisor
    return new_v


class SamePadConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding (asymmetric for stride 2 on even inputs).

    Needed to reproduce checkpoints trained in TensorFlow (timm's ``tf_`` models). The pad is computed from
    the static input size, so traced/exported graphs get a constant PAD op.
    """

    def pads(self, hw) -> list[tuple[int, int]]:
        """[(top, bottom), (left, right)] for an input of spatial size ``hw``; the larger half goes last."""
        pads = []
        for size, k, s, d in zip(hw, self.kernel_size, self.stride, self.dilation):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            pads.append((total // 2, total - total // 2))
        return pads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (top, bottom), (left, right) = self.pads(x.shape[-2:])
        if top or bottom or left or right:
            x = F.pad(x, [left, right, top, bottom])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def conv2d(
    in_chs: int,
    out_chs: int,
    kernel_size: int,
    stride: int = 1,
    groups: int = 1,
    bias: bool = False,
    pad_same: bool = False,
) -> nn.Conv2d:
    """A conv with symmetric padding ``k // 2`` (PyTorch style) or TF "SAME" padding when strided."""
    if pad_same and stride > 1:
        return SamePadConv2d(in_chs, out_chs, kernel_size, stride, 0, groups=groups, bias=bias)
    return nn.Conv2d(in_chs, out_chs, kernel_size, stride, kernel_size // 2, groups=groups, bias=bias)


class ConvNormAct(nn.Module):
    """conv → BatchNorm → activation, with timm's ``conv``/``bn`` names."""

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int,
        stride: int = 1,
        groups: int = 1,
        act: str | None = "relu",
        bn_eps: float = 1e-5,
        pad_same: bool = False,
    ):
        super().__init__()
        self.conv = conv2d(in_chs, out_chs, kernel_size, stride, groups, pad_same=pad_same)
        self.bn = nn.BatchNorm2d(out_chs, eps=bn_eps)
        self.act = act_layer(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class SqueezeExcite(nn.Module):
    """Squeeze-and-excite: global average → 1×1 reduce → act → 1×1 expand → gate, multiplied into x."""

    def __init__(
        self, chs: int, rd_chs: int, act: str = "relu", gate: str = "hsigmoid", names=("conv_reduce", "conv_expand")
    ):
        super().__init__()
        self._names = names
        setattr(self, names[0], nn.Conv2d(chs, rd_chs, 1, bias=True))
        self.act = act_layer(act)
        setattr(self, names[1], nn.Conv2d(rd_chs, chs, 1, bias=True))
        self.gate = act_layer(gate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        s = getattr(self, self._names[1])(self.act(getattr(self, self._names[0])(s)))
        return x * self.gate(s)


class LayerScale2d(nn.Module):
    """Per-channel learned scale (MobileNetV4 hybrids), parameter named ``gamma`` as in timm."""

    def __init__(self, chs: int, init_value: float = 1e-5):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((chs,), init_value))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma.view(1, -1, 1, 1)


class ClassifierHead(nn.Module):
    """Everything after the last stage.

    Families differ only in where the feature conv sits relative to global pooling and whether it has a BN
    or a bias, so one module covers them: ``conv_before_pool`` (MobileNetV2, MobileViT), ``conv_after_pool``
    (MobileNetV3 with bias, MobileNetV4 with BN), or no conv (MobileNetV1).
    """

    def __init__(
        self,
        in_chs: int,
        num_classes: int,
        hidden: int = 0,
        where: str = "none",
        norm: bool = True,
        bias: bool = False,
        act: str | None = "relu",
        bn_eps: float = 1e-5,
    ):
        super().__init__()
        assert where in ("none", "before_pool", "after_pool")
        self.where = where
        if where != "none":
            self.conv = nn.Conv2d(in_chs, hidden, 1, bias=bias)
            if norm:
                self.bn = nn.BatchNorm2d(hidden, eps=bn_eps)
            self.act = act_layer(act)
            in_chs = hidden
        self.fc = nn.Linear(in_chs, num_classes)

    def _conv(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if hasattr(self, "bn"):
            x = self.bn(x)
        return self.act(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.where == "before_pool":
            x = self._conv(x)
        x = x.mean((2, 3), keepdim=True)
        if self.where == "after_pool":
            x = self._conv(x)
        return self.fc(x.flatten(1))
