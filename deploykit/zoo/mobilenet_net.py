"""The torch network class of the MobileNet V1–V4 families: stem → stages of table rows → classifier head.

Kept apart from the data (:class:`~.mobilenet.MobileNetDef`, the family tables) so that only building a model
imports torch. Module names (``stem``, ``stages.i.j``, ``head``) are what state dicts and timm key maps use.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import torch
from torch import nn

from .blockdefs import MobileNetDef, stage_rows
from .blocks import BuildCtx, build_block
from .layers import ClassifierHead, act_layer, conv2d, make_divisible


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
