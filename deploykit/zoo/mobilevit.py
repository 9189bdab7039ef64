"""MobileViT (Mehta & Rastegari 2022, Table 4): MobileNetV2 blocks plus MobileViT blocks that unfold the
feature map into 2×2 patches, run a small transformer across patches, and fold back.

Layout and names follow timm (``mobilevit_xxs/xs/s``). timm counts 1.05 GMACs for MobileViT-XS where the
paper reports 0.7 G "FLOPs": the paper's figure leaves out part of the attention/unfold work; deploykit counts
every conv, linear and attention matmul (see ``deploykit.analysis``).

This file is the torch-free half: the variant table, the timm key map and the registered specs. The modules
are in ``mobilevit_net.py``, imported by :func:`mobilevit` only when a model is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .registry import ModelSpec, register

if TYPE_CHECKING:
    from .mobilevit_net import MobileViT


# Per variant: stem, (channels, stride, MV2 repeats) for the two MV2 stages, then (channels, transformer dim,
# depth) for the three MobileViT stages, the MV2 expansion, and the final 1×1 conv width.
VARIANTS = {
    "xxs": dict(mv2=[(16, 1, 1), (24, 2, 3)], vit=[(48, 64, 2), (64, 80, 4), (80, 96, 3)], expand=2.0, features=320),
    "xs": dict(mv2=[(32, 1, 1), (48, 2, 3)], vit=[(64, 96, 2), (80, 120, 4), (96, 144, 3)], expand=4.0, features=384),
    "s": dict(mv2=[(32, 1, 1), (64, 2, 3)], vit=[(96, 144, 2), (128, 192, 4), (160, 240, 3)], expand=4.0, features=640),
}


def mobilevit(variant: str = "xs", num_classes: int = 1000) -> MobileViT:
    from .mobilevit_net import MobileViT

    return MobileViT(VARIANTS[variant], num_classes)


TIMM_KEYS = ((r"^final_conv\.", "head.conv."), (r"^head\.fc\.", "head.fc."))

for _v in VARIANTS:
    register(
        ModelSpec(
            name=f"mobilevit_{_v}",
            family="MobileViT",
            builder=mobilevit,
            resolution=256,
            aliases=(f"mobilevit-{_v}",),
            timm_name=f"mobilevit_{_v}",
            kwargs={"variant": _v},
            mean=(0.0, 0.0, 0.0),
            std=(1.0, 1.0, 1.0),
            # 2×2 patches on the stride-32 map: the side must split into whole patches there.
            input_multiple=64,
            min_resolution=64,
            timm_key_map=TIMM_KEYS,
        )
    )
