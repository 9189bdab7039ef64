"""RepViT (Wang et al. 2024): a MobileNetV3-like CNN restructured with ViT's token-mixer / channel-mixer split.

Built in *training form* (multi-branch RepVGG depthwise token mixers, conv+BN pairs, a distillation head), as
timm's checkpoints are. :meth:`RepViT.reparameterize` fuses it into the *deploy form* that gets exported:
every conv+BN into one conv, each RepVGG depthwise (3×3 + 1×1 + identity, then BN) into one 3×3
depthwise conv, and the BN+linear classifier and distillation head into one linear layer.

This file is the torch-free half: the variant table, the timm key map and the registered specs. The modules
are in ``repvit_net.py``, imported by :func:`repvit` only when a model is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .registry import ModelSpec, register

if TYPE_CHECKING:
    from .repvit_net import RepViT


VARIANTS = {
    "m0_9": ((48, 96, 192, 384), (2, 2, 14, 2)),
    "m1_0": ((56, 112, 224, 448), (2, 2, 14, 2)),
    "m1_1": ((64, 128, 256, 512), (2, 2, 12, 2)),
    "m1_5": ((64, 128, 256, 512), (4, 4, 24, 4)),
    "m2_3": ((80, 160, 320, 640), (6, 6, 34, 2)),
}


def repvit(variant: str = "m1_0", num_classes: int = 1000, deploy: bool = False) -> RepViT:
    from .repvit_net import RepViT

    dims, depths = VARIANTS[variant]
    model = RepViT(dims, depths, num_classes=num_classes)
    return model.reparameterize() if deploy else model


TIMM_KEYS = ((r"^head\.head\.", "head.cls."), (r"^head\.head_dist\.", "head.dist."))

for _v in VARIANTS:
    register(
        ModelSpec(
            name=f"repvit_{_v}",
            family="RepViT",
            builder=repvit,
            resolution=224,
            aliases=(f"repvit-{_v.replace('_', '.')}",),
            timm_name=f"repvit_{_v}",
            kwargs={"variant": _v},
            timm_key_map=TIMM_KEYS,
            notes="Built in training form (timm's checkpoints); call reparameterize() for the deploy form.",
        )
    )
