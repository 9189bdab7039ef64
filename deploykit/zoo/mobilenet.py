"""One network class for the MobileNet V1–V4 families: stem → stages of table rows → classifier head."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial

import torch
from torch import nn

from .blocks import BlockDef, BuildCtx, build_block, stage_rows
from .layers import ClassifierHead, act_layer, conv2d, make_divisible


@dataclass(frozen=True)
class HeadDef:
    """The classifier head: feature conv width and where it sits (see :class:`ClassifierHead`)."""

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


class MobileNet(nn.Module):
    def __init__(self, d: MobileNetDef, num_classes: int = 1000, in_chans: int = 3):
        super().__init__()
        ctx = BuildCtx(d.act, d.bn_eps, d.pad_same, d.layer_scale)
        width = partial(_round_width, d.width)
        stem = d.stem if d.fix_stem else width(d.stem)
        self.stem = nn.Sequential()
        self.stem.add_module("conv", conv2d(in_chans, stem, 3, 2, pad_same=d.pad_same))
        self.stem.add_module("bn", nn.BatchNorm2d(stem, eps=d.bn_eps))
        self.stem.add_module("act", act_layer(d.act))
        cin = stem
        self.stages = nn.Sequential()
        for stage in d.stages:
            blocks = nn.Sequential()
            for row in stage_rows(stage):
                row = replace(row, out=width(row.out))
                blocks.append(build_block(cin, row, ctx))
                cin = row.out
            self.stages.append(blocks)
        self.num_features = cin
        hidden = max(d.head.hidden, width(d.head.hidden)) if d.head.scale_hidden else d.head.hidden
        self.head = ClassifierHead(cin, num_classes, hidden, d.head.where, d.head.norm, d.head.bias, d.act, d.bn_eps)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


def _round_width(width: float, chs: int) -> int:
    return chs if width == 1.0 else make_divisible(chs * width)


def count_rows(stages: list) -> int:
    return sum(len(stage_rows(s)) for s in stages)


__all__ = ["BlockDef", "HeadDef", "MobileNet", "MobileNetDef", "count_rows"]
