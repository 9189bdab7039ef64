"""MobileNetV4 (Qin et al. 2024, Appendix D tables): UIB, FusedIB and Mobile MQA.

Each row reads like the paper's tables: ``uib(out, start_k, mid_k, s, e)`` where start/mid depthwise kernel
0 means "absent", giving the four UIB instantiations: ExtraDW (k, k), IB (0, k), ConvNext-like (k, 0) and
FFN (0, 0). ``mqa(out, heads, key_dim, kv_stride)`` is Mobile MQA.

Medium, Large and the hybrids follow timm's layout (what users' ImageNet checkpoints have), which differs
slightly from the paper's tables: the paper lists Conv-M at 9.2M params / 1.0G MACs and Conv-L at 31M /
5.9G, timm's checkpoints have 9.7M / 1.1G and 32.6M / 6.4G. Both figures are in the registry.

Torch-free: the stage table and the registered specs; :func:`~.mobilenet.build_mobilenet` imports the network
(``mobilenet_net.py``, torch) only when a model is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .blockdefs import conv, fused_ib, mqa, rep, uib
from .mobilenet import MOBILENET_TIMM_KEYS, HeadDef, MobileNetDef, build_mobilenet
from .registry import ModelSpec, register

if TYPE_CHECKING:
    from .mobilenet_net import MobileNet

CONV_S = [
    [conv(32, k=3, s=2), conv(32, k=1)],
    [conv(96, k=3, s=2), conv(64, k=1)],
    [uib(96, 5, 5, s=2, e=3), *rep(4, uib(96, 0, 3, e=2)), uib(96, 3, 0, e=4)],
    [
        uib(128, 3, 3, s=2, e=6),
        uib(128, 5, 5, e=4),
        uib(128, 0, 5, e=4),
        uib(128, 0, 5, e=3),
        *rep(2, uib(128, 0, 3, e=4)),
    ],
    [conv(960, k=1)],
]

CONV_M = [
    [fused_ib(48, k=3, s=2, e=4)],
    [uib(80, 3, 5, s=2, e=4), uib(80, 3, 3, e=2)],
    [
        uib(160, 3, 5, s=2, e=6),
        *rep(2, uib(160, 3, 3, e=4)),
        uib(160, 3, 5, e=4),
        uib(160, 3, 3, e=4),
        uib(160, 3, 0, e=4),
        uib(160, 0, 0, e=2),
        uib(160, 3, 0, e=4),
    ],
    [
        uib(256, 5, 5, s=2, e=6),
        uib(256, 5, 5, e=4),
        *rep(2, uib(256, 3, 5, e=4)),
        uib(256, 0, 0, e=4),
        uib(256, 3, 0, e=4),
        uib(256, 3, 5, e=2),
        uib(256, 5, 5, e=4),
        *rep(2, uib(256, 0, 0, e=4)),
        uib(256, 5, 0, e=2),
    ],
    [conv(960, k=1)],
]

CONV_L = [
    [fused_ib(48, k=3, s=2, e=4)],
    [uib(96, 3, 5, s=2, e=4), uib(96, 3, 3, e=4)],
    [
        uib(192, 3, 5, s=2, e=4),
        *rep(3, uib(192, 3, 3, e=4)),
        uib(192, 3, 5, e=4),
        *rep(5, uib(192, 5, 3, e=4)),
        uib(192, 3, 0, e=4),
    ],
    [
        *rep(4, uib(512, 5, 5, s=2, e=4)),
        uib(512, 5, 0, e=4),
        uib(512, 5, 3, e=4),
        *rep(2, uib(512, 5, 0, e=4)),
        uib(512, 5, 3, e=4),
        uib(512, 5, 5, e=4),
        *rep(3, uib(512, 5, 0, e=4)),
    ],
    [conv(960, k=1)],
]


def _mqa_m(c, kv):
    return mqa(c, heads=4, key_dim=64, kv_stride=kv)


HYBRID_M = [
    [fused_ib(48, k=3, s=2, e=4)],
    [uib(80, 3, 5, s=2, e=4), uib(80, 3, 3, e=2)],
    [
        uib(160, 3, 5, s=2, e=6),
        uib(160, 0, 0, e=2),
        uib(160, 3, 3, e=4),
        uib(160, 3, 5, e=4),
        _mqa_m(160, 2),
        uib(160, 3, 3, e=4),
        _mqa_m(160, 2),
        uib(160, 3, 0, e=4),
        _mqa_m(160, 2),
        uib(160, 3, 3, e=4),
        _mqa_m(160, 2),
        uib(160, 3, 0, e=4),
    ],
    [
        uib(256, 5, 5, s=2, e=6),
        uib(256, 5, 5, e=4),
        *rep(2, uib(256, 3, 5, e=4)),
        uib(256, 0, 0, e=2),
        uib(256, 3, 5, e=2),
        uib(256, 0, 0, e=2),
        uib(256, 0, 0, e=4),
        _mqa_m(256, 1),
        uib(256, 3, 0, e=4),
        _mqa_m(256, 1),
        uib(256, 5, 5, e=4),
        _mqa_m(256, 1),
        uib(256, 5, 0, e=4),
        _mqa_m(256, 1),
        uib(256, 5, 0, e=4),
    ],
    [conv(960, k=1)],
]


def _mqa_l(c, kd, kv):
    return mqa(c, heads=8, key_dim=kd, kv_stride=kv)


HYBRID_L = [
    [fused_ib(48, k=3, s=2, e=4)],
    [uib(96, 3, 5, s=2, e=4), uib(96, 3, 3, e=4)],
    [
        uib(192, 3, 5, s=2, e=4),
        *rep(3, uib(192, 3, 3, e=4)),
        uib(192, 3, 5, e=4),
        *rep(2, uib(192, 5, 3, e=4)),
        _mqa_l(192, 48, 2),
        uib(192, 5, 3, e=4),
        _mqa_l(192, 48, 2),
        uib(192, 5, 3, e=4),
        _mqa_l(192, 48, 2),
        uib(192, 5, 3, e=4),
        _mqa_l(192, 48, 2),
        uib(192, 3, 0, e=4),
    ],
    [
        *rep(4, uib(512, 5, 5, s=2, e=4)),
        uib(512, 5, 0, e=4),
        uib(512, 5, 3, e=4),
        *rep(2, uib(512, 5, 0, e=4)),
        uib(512, 5, 3, e=4),
        uib(512, 5, 5, e=4),
        _mqa_l(512, 64, 1),
        uib(512, 5, 0, e=4),
        _mqa_l(512, 64, 1),
        uib(512, 5, 0, e=4),
        _mqa_l(512, 64, 1),
        uib(512, 5, 0, e=4),
        _mqa_l(512, 64, 1),
        uib(512, 5, 0, e=4),
    ],
    [conv(960, k=1)],
]

HEAD = HeadDef(hidden=1280, where="after_pool", norm=True, bias=False)

VARIANTS = {
    # name: (stages, stem, activation, layer scale, default resolution, timm name, paper name)
    "conv_s": (CONV_S, 32, "relu", None, 224, "mobilenetv4_conv_small", "MNv4-Conv-S"),
    "conv_m": (CONV_M, 32, "relu", None, 256, "mobilenetv4_conv_medium", "MNv4-Conv-M"),
    "conv_l": (CONV_L, 24, "relu", None, 384, "mobilenetv4_conv_large", "MNv4-Conv-L"),
    "hybrid_m": (HYBRID_M, 32, "relu", 1e-5, 256, "mobilenetv4_hybrid_medium", "MNv4-Hybrid-M"),
    "hybrid_l": (HYBRID_L, 24, "gelu", 1e-5, 384, "mobilenetv4_hybrid_large", "MNv4-Hybrid-L"),
}


def mobilenet_v4(variant: str = "conv_s", num_classes: int = 1000) -> MobileNet:
    stages, stem, act, layer_scale, *_ = VARIANTS[variant]
    return build_mobilenet(
        MobileNetDef(stem=stem, stages=stages, head=HEAD, act=act, layer_scale=layer_scale), num_classes
    )


_LONG = {"s": "small", "m": "medium", "l": "large"}
for _v, (_, _, _, _, _res, _timm, _paper) in VARIANTS.items():
    _kind, _size = _v.split("_")
    register(
        ModelSpec(
            name=f"mnv4_{_v}",
            family="MobileNetV4",
            builder=mobilenet_v4,
            resolution=_res,
            aliases=(f"mobilenetv4_{_kind}_{_LONG[_size]}", f"mnv4_{_kind}_{_LONG[_size]}"),
            timm_name=_timm,
            kwargs={"variant": _v},
            timm_key_map=MOBILENET_TIMM_KEYS,
        )
    )
