"""MobileNetV3 (Howard et al. 2019, Tables 1–2): NAS-found IB stacks with SE and hard-swish.

Torch-free: the stage table and the registered specs; :func:`~.mobilenet.build_mobilenet` imports the network
(``mobilenet_net.py``, torch) only when a model is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .blockdefs import conv, ds, ib, rep
from .mobilenet import MOBILENET_TIMM_KEYS, HeadDef, MobileNetDef, build_mobilenet
from .registry import INCEPTION_MEAN, INCEPTION_STD, ModelSpec, register

if TYPE_CHECKING:
    from .mobilenet_net import MobileNet

R = "relu"  # the early layers use ReLU; everything else the network default, hard-swish

LARGE = [
    [ds(16, act=R)],
    [ib(24, s=2, e=4, act=R), ib(24, e=3, act=R)],
    rep(3, ib(40, k=5, s=2, e=3, se=0.25, act=R)),
    [ib(80, s=2, e=6), ib(80, e=2.5), *rep(2, ib(80, e=2.3))],
    rep(2, ib(112, e=6, se=0.25)),
    rep(3, ib(160, k=5, s=2, e=6, se=0.25)),
    [conv(960, k=1)],
]
SMALL = [
    [ds(16, s=2, se=0.25, act=R)],
    [ib(24, s=2, e=4.5, act=R), ib(24, e=3.67, act=R)],
    [ib(40, k=5, s=2, e=4, se=0.25), *rep(2, ib(40, k=5, e=6, se=0.25))],
    rep(2, ib(48, k=5, e=3, se=0.25)),
    rep(3, ib(96, k=5, s=2, e=6, se=0.25)),
    [conv(576, k=1)],
]


def mobilenet_v3(size: str = "large", width: float = 1.0, tf_same: bool = False, num_classes: int = 1000) -> MobileNet:
    d = MobileNetDef(
        stem=16,
        stages=LARGE if size == "large" else SMALL,
        head=HeadDef(hidden=1280 if size == "large" else 1024, where="after_pool", norm=False, bias=True),
        act="hswish",
        width=width,
        fix_stem=width < 0.75,
        # timm's tf_ checkpoints were trained in TensorFlow: "SAME" padding and BN eps 1e-3.
        bn_eps=1e-3 if tf_same else 1e-5,
        pad_same=tf_same,
    )
    return build_mobilenet(d, num_classes)


for _size, _w, _timm in (
    ("large", 1.0, "mobilenetv3_large_100"),
    ("large", 0.75, "tf_mobilenetv3_large_075"),
    ("large", 0.5, None),
    ("small", 1.0, "mobilenetv3_small_100"),
    ("small", 0.75, "mobilenetv3_small_075"),
):
    _tag = f"{round(_w * 100):03d}"
    _tf = bool(_timm and _timm.startswith("tf_"))
    register(
        ModelSpec(
            name=f"mnv3_{_size}_{_tag}",
            family="MobileNetV3",
            builder=mobilenet_v3,
            resolution=224,
            aliases=(f"mobilenet_v3_{_size}_{_tag}", f"mobilenetv3_{_size}_{_tag}")
            + ((f"mobilenet_v3_{_size}",) if _w == 1.0 else ()),
            timm_name=_timm,
            kwargs={"size": _size, "width": _w, "tf_same": _tf},
            mean=INCEPTION_MEAN if _tf else (0.485, 0.456, 0.406),
            std=INCEPTION_STD if _tf else (0.229, 0.224, 0.225),
            timm_key_map=MOBILENET_TIMM_KEYS,
            notes="Built with TF 'SAME' padding and BN eps 1e-3 to match timm's only checkpoint (tf_)." if _tf else "",
        )
    )
