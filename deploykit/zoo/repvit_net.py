"""The RepViT torch modules, in training form, and their fusion into the deploy form.

Kept apart from ``repvit.py`` (the variant table and registered specs, torch-free) so that only building a
model imports torch. Module names follow timm's checkpoints (``stem.conv1.c``, ``stages.i.blocks.j``, ...).
:meth:`RepViT.reparameterize` fuses in place: every conv+BN into one conv, each RepVGG depthwise
(3×3 + 1×1 + identity, then BN) into one 3×3 depthwise conv, and the BN+linear classifier and distillation head
into one linear layer.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import SqueezeExcite, make_divisible


class ConvNorm(nn.Sequential):
    def __init__(self, cin, cout, k=1, stride=1, groups=1):
        super().__init__()
        self.add_module("c", nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False))
        self.add_module("bn", nn.BatchNorm2d(cout))

    @torch.no_grad()
    def fuse(self) -> nn.Conv2d:
        c = self.c
        conv = nn.Conv2d(
            c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding, groups=c.groups, device=c.weight.device
        )
        w, b = _bn_scale_shift(self.bn)
        conv.weight.copy_(c.weight * w[:, None, None, None])
        conv.bias.copy_(b)
        return conv


class RepVGGDW(nn.Module):
    """Token mixer: BN(dw3×3-BN(x) + dw1×1(x) + x), trainable as three branches, one conv at deploy time."""

    def __init__(self, dim: int, k: int = 3):
        super().__init__()
        self.conv = ConvNorm(dim, dim, k, groups=dim)
        self.conv1 = nn.Conv2d(dim, dim, 1, groups=dim)
        self.bn = nn.BatchNorm2d(dim)

    def forward(self, x):
        return self.bn(self.conv(x) + self.conv1(x) + x)

    @torch.no_grad()
    def fuse(self) -> nn.Conv2d:
        conv = self.conv.fuse()
        k = conv.kernel_size[0]
        pad = [(k - 1) // 2] * 4
        w = conv.weight + nn.functional.pad(self.conv1.weight, pad)
        w = w + nn.functional.pad(torch.ones_like(self.conv1.weight), pad)  # the identity branch
        b = conv.bias + self.conv1.bias
        scale, shift = _bn_scale_shift(self.bn)
        conv.weight.copy_(w * scale[:, None, None, None])
        conv.bias.copy_(b * scale + shift)
        return conv


class ChannelMixer(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.conv1, self.act, self.conv2 = ConvNorm(dim, hidden), nn.GELU(), ConvNorm(hidden, dim)

    def forward(self, x):
        return self.conv2(self.act(self.conv1(x)))


class RepViTBlock(nn.Module):
    def __init__(self, dim: int, mlp_ratio: float, use_se: bool):
        super().__init__()
        self.token_mixer = RepVGGDW(dim)
        self.se = (
            SqueezeExcite(dim, make_divisible(dim * 0.25, round_limit=0.0), "relu", "sigmoid", ("fc1", "fc2"))
            if use_se
            else nn.Identity()
        )
        self.channel_mixer = ChannelMixer(dim, int(dim * mlp_ratio))

    def forward(self, x):
        x = self.se(self.token_mixer(x))
        return x + self.channel_mixer(x)


class Downsample(nn.Module):
    def __init__(self, cin: int, cout: int, mlp_ratio: float):
        super().__init__()
        self.pre_block = RepViTBlock(cin, mlp_ratio, use_se=False)
        self.spatial_downsample = ConvNorm(cin, cin, 3, 2, groups=cin)
        self.channel_downsample = ConvNorm(cin, cout, 1)
        self.ffn = ChannelMixer(cout, int(cout * mlp_ratio))

    def forward(self, x):
        x = self.channel_downsample(self.spatial_downsample(self.pre_block(x)))
        return x + self.ffn(x)


class Stage(nn.Module):
    def __init__(self, cin: int, cout: int, depth: int, mlp_ratio: float, downsample: bool):
        super().__init__()
        self.downsample = Downsample(cin, cout, mlp_ratio) if downsample else nn.Identity()
        # SE on every other block, starting with the first (as in the paper's Fig. 3).
        self.blocks = nn.Sequential(*[RepViTBlock(cout, mlp_ratio, use_se=i % 2 == 0) for i in range(depth)])

    def forward(self, x):
        return self.blocks(self.downsample(x))


class NormLinear(nn.Sequential):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.add_module("bn", nn.BatchNorm1d(cin))
        self.add_module("l", nn.Linear(cin, cout))

    @torch.no_grad()
    def fuse(self) -> nn.Linear:
        scale, shift = _bn_scale_shift(self.bn)
        fc = nn.Linear(self.l.in_features, self.l.out_features, device=self.l.weight.device)
        fc.weight.copy_(self.l.weight * scale[None, :])
        fc.bias.copy_(self.l.weight @ shift + self.l.bias)
        return fc


class Head(nn.Module):
    """Global pool, then the classifier and distillation head averaged (training form) or fused (deploy)."""

    def __init__(self, dim: int, num_classes: int):
        super().__init__()
        self.cls = NormLinear(dim, num_classes)
        self.dist = NormLinear(dim, num_classes)
        self.fused: nn.Linear | None = None

    def forward(self, x):
        x = x.mean((2, 3))
        if self.fused is not None:
            return self.fused(x)
        return (self.cls(x) + self.dist(x)) / 2

    @torch.no_grad()
    def fuse(self) -> None:
        a, b = self.cls.fuse(), self.dist.fuse()
        a.weight.copy_((a.weight + b.weight) / 2)
        a.bias.copy_((a.bias + b.bias) / 2)
        self.fused = a
        del self.cls, self.dist


class RepViT(nn.Module):
    def __init__(self, dims=(48, 96, 192, 384), depths=(2, 2, 14, 2), mlp_ratio: float = 2.0, num_classes=1000):
        super().__init__()
        self.stem = nn.Sequential()
        self.stem.add_module("conv1", ConvNorm(3, dims[0] // 2, 3, 2))
        self.stem.add_module("act1", nn.GELU())
        self.stem.add_module("conv2", ConvNorm(dims[0] // 2, dims[0], 3, 2))
        self.stages = nn.Sequential(
            *[
                Stage(dims[max(i - 1, 0)], d, n, mlp_ratio, downsample=i > 0)
                for i, (d, n) in enumerate(zip(dims, depths))
            ]
        )
        self.head = Head(dims[-1], num_classes)
        self.deploy = False

    def forward(self, x):
        return self.head(self.stages(self.stem(x)))

    @torch.no_grad()
    def reparameterize(self) -> RepViT:
        """Fuse into the deploy form, in place. Outputs stay equal (to float rounding)."""
        if self.deploy:
            return self
        for parent in list(self.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, (ConvNorm, RepVGGDW)):
                    setattr(parent, name, child.fuse())
        self.head.fuse()
        self.deploy = True
        return self.eval()


def _bn_scale_shift(bn: nn.modules.batchnorm._BatchNorm) -> tuple[torch.Tensor, torch.Tensor]:
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return scale, bn.bias - bn.running_mean * scale
