"""MobileNetV1 (Howard et al. 2017, Table 1): a stem conv and 13 depthwise-separable blocks.

Torch-free: the stage table and the registered specs; :func:`~.mobilenet.build_mobilenet` imports the network
(``mobilenet_net.py``, torch) only when a model is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .blockdefs import ds, rep
from .mobilenet import MOBILENET_TIMM_KEYS, HeadDef, MobileNetDef, build_mobilenet
from .registry import ModelSpec, register

if TYPE_CHECKING:
    from .mobilenet_net import MobileNet


def _dsa(out, s=1):
    # MobileNetV1's separable block: ReLU6 after the pointwise conv too, and no residual.
    return ds(out, s=s, pw_act=True)


STAGES = [
    [_dsa(64)],
    rep(2, _dsa(128, s=2)),
    rep(2, _dsa(256, s=2)),
    rep(6, _dsa(512, s=2)),
    rep(2, _dsa(1024, s=2)),
]


def mobilenet_v1(width: float = 1.0, num_classes: int = 1000) -> MobileNet:
    return build_mobilenet(MobileNetDef(stem=32, stages=STAGES, head=HeadDef(), act="relu6", width=width), num_classes)


for _w, _timm in ((1.0, "mobilenetv1_100"), (0.75, None), (0.5, None), (0.25, None)):
    _tag = f"{round(_w * 100):03d}"
    register(
        ModelSpec(
            name=f"mnv1_{_tag}",
            family="MobileNetV1",
            builder=mobilenet_v1,
            resolution=224,
            aliases=(f"mobilenet_v1_{_tag}", f"mobilenetv1_{_w:g}") + (("mobilenet_v1",) if _w == 1.0 else ()),
            timm_name=_timm,
            kwargs={"width": _w},
            timm_key_map=MOBILENET_TIMM_KEYS,
            notes="ReLU6 as in timm/TF-slim (the paper says ReLU).",
        )
    )
