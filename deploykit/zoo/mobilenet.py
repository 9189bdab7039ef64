"""What a MobileNet V1–V4 network is, as data: :class:`MobileNetDef` (stem, stage table, head, activation,
width) and :class:`HeadDef`, plus the torch-free builder entry point the family modules register.

The network class itself (:class:`~.mobilenet_net.MobileNet`, torch) lives in ``mobilenet_net.py`` and is
imported only when a model is built, so that listing and resolving models never imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .blockdefs import BlockDef, count_rows

if TYPE_CHECKING:
    from .mobilenet_net import MobileNet

# timm's efficientnet-style names → ours (block internals are identical), shared by V1–V4.
MOBILENET_TIMM_KEYS = (
    (r"^conv_stem\.", "stem.conv."),
    (r"^bn1\.", "stem.bn."),
    (r"^blocks\.", "stages."),
    (r"^conv_head\.", "head.conv."),
    (r"^(bn2|norm_head)\.", "head.bn."),
    (r"^classifier\.", "head.fc."),
)


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


def build_mobilenet(d: MobileNetDef, num_classes: int = 1000) -> MobileNet:
    """Instantiate ``d`` (imports torch, through ``mobilenet_net``, on first call)."""
    from .mobilenet_net import MobileNet

    return MobileNet(d, num_classes)


__all__ = ["MOBILENET_TIMM_KEYS", "BlockDef", "HeadDef", "MobileNetDef", "build_mobilenet", "count_rows"]
