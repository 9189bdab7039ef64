"""What a MobileNet V1–V4 network is, as data: :class:`MobileNetDef` (stem, stage table, head, activation,
width) and :class:`HeadDef`, plus the torch-free builder entry point the family modules register.

The network class itself (:class:`~.mobilenet_net.MobileNet`, torch) lives in ``mobilenet_net.py`` and is
imported only when a model is built, so that listing and resolving models never imports torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .blockdefs import BlockDef, HeadDef, MobileNetDef

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


def build_mobilenet(d: MobileNetDef, num_classes: int = 1000) -> MobileNet:
    """Instantiate ``d`` (imports torch, through ``mobilenet_net``, on first call)."""
    from .mobilenet_net import MobileNet

    return MobileNet(d, num_classes)


__all__ = ["MOBILENET_TIMM_KEYS", "BlockDef", "HeadDef", "MobileNetDef", "build_mobilenet"]
