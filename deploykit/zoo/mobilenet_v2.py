"""MobileNetV2 (Sandler et al. 2018, Table 2): inverted residuals with linear bottlenecks.

Torch-free: the stage table and the registered specs; :func:`~.mobilenet.build_mobilenet` imports the network
(``mobilenet_net.py``, torch) only when a model is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .blockdefs import ds, ib, rep
from .mobilenet import MOBILENET_TIMM_KEYS, HeadDef, MobileNetDef, build_mobilenet
from .registry import ModelSpec, register

if TYPE_CHECKING:
    from .mobilenet_net import MobileNet

# t (expansion), c, n, s of the paper's Table 2; the t=1 row is a depthwise-separable block.
STAGES = [
    [ds(16)],
    rep(2, ib(24, s=2, e=6)),
    rep(3, ib(32, s=2, e=6)),
    rep(4, ib(64, s=2, e=6)),
    rep(3, ib(96, e=6)),
    rep(3, ib(160, s=2, e=6)),
    [ib(320, e=6)],
]
HEAD = HeadDef(hidden=1280, where="before_pool", scale_hidden=True)


def mobilenet_v2(width: float = 1.0, num_classes: int = 1000) -> MobileNet:
    return build_mobilenet(MobileNetDef(stem=32, stages=STAGES, head=HEAD, act="relu6", width=width), num_classes)


for _w, _timm in ((1.0, "mobilenetv2_100"), (0.5, "mobilenetv2_050"), (1.5, None), (2.0, None)):
    _tag = f"{round(_w * 100):03d}"
    register(
        ModelSpec(
            name=f"mnv2_{_tag}",
            family="MobileNetV2",
            builder=mobilenet_v2,
            resolution=224,
            aliases=(f"mobilenet_v2_{_tag}",) + (("mobilenet_v2",) if _w == 1.0 else ()),
            timm_name=_timm,
            kwargs={"width": _w},
            timm_key_map=MOBILENET_TIMM_KEYS,
        )
    )
