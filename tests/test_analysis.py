"""Per-layer analysis is exact: totals equal torch's own flop counter, folding marks only what converters fold."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from deploykit.analysis import analyze, analyze_spec
from deploykit.zoo import get_spec


@pytest.mark.parametrize(
    "name,res",
    [("mnv1_050", 96), ("mnv3_small_100", 96), ("mnv4_hybrid_m", 128), ("mobilevit_xxs", 128), ("repvit_m0_9", 96)],
)
def test_totals_equal_flop_counter(name, res):
    model = get_spec(name).build()
    a = analyze(model, res, name)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.zeros(1, 3, res, res))
    assert a.macs * 2 == counter.get_total_flops()
    assert a.params == sum(p.numel() for p in model.parameters())
    assert sum(s["macs"] for s in a.by_stage().values()) == a.macs


def test_hand_counted_tiny_net():
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU6(), nn.Conv2d(8, 8, 3, 1, 1, groups=8)
    )
    a = analyze(net.eval(), 16)
    conv, bn, act, dw = a.layers
    assert (conv.op, conv.macs, conv.out_shape) == ("stem", 8 * 8 * 8 * 3 * 9, (1, 8, 8, 8))  # on the image itself
    assert conv.weight_elems == 8 * 3 * 9 and conv.in_elems == 3 * 16 * 16 and conv.out_elems == 8 * 64
    assert bn.fused and act.fused and not dw.fused
    assert (dw.op, dw.macs, dw.groups, dw.weight_elems) == ("dwconv", 8 * 64 * 9, 8, 8 * 9 + 8)
    assert [x.index for x in a.deployed] == [0, 3]
    inner = analyze(nn.Sequential(nn.Conv2d(3, 8, 1), nn.Conv2d(8, 8, 3, 1, 1)).eval(), 16)
    assert [x.op for x in inner.layers] == ["pwconv", "conv"]  # a 1x1 on the image stays pwconv; inside: conv


def test_attention_matmuls_and_residuals_are_listed():
    a = analyze_spec("mnv4_hybrid_m", 128)
    mqa = [x for x in a.layers if x.name.startswith("stages.2.4.attn")]
    assert sum(x.op == "matmul" for x in mqa) == 2 and any(x.op == "softmax" for x in mqa)
    assert any(x.op == "add" for x in a.layers if x.name == "stages.2.4")  # the block's residual add
    # the shared key/value head: K is (tokens/4) × 64 regardless of the 4 query heads
    qk = [x for x in mqa if x.op == "matmul"][0]
    assert qk.macs == 4 * (8 * 8) * 64 * (4 * 4)


def test_layernorm_is_not_folded():
    a = analyze_spec("mobilevit_xxs", 128)
    assert all(not x.fused for x in a.layers if x.aten == "native_layer_norm")


@pytest.mark.parametrize("name", ["mnv4_hybrid_m", "repvit_m0_9", "mobilevit_xxs"])
def test_counting_without_convolution_arithmetic_changes_nothing(name):
    """analyze_spec skips convolutions' arithmetic (all weights zero): the same layers as computing them."""
    import torch

    from deploykit.analysis import analyze, analyze_spec
    from deploykit.zoo import get_spec

    fast = analyze_spec(name, 128)
    with torch.device("meta"):
        model = get_spec(name).build()
    model = model.to_empty(device="cpu")
    with torch.no_grad():
        for t in [*model.parameters(), *model.buffers()]:
            t.zero_()
    if hasattr(model, "reparameterize"):
        model.reparameterize()
    computed = analyze(model, 128, name=fast.model)
    assert fast.to_dict() == computed.to_dict() and fast.macs > 0
