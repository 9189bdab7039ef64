"""The MobileViT torch modules: MV2 blocks, the unfold → transformer → fold MobileViT block, and the network.

Kept apart from ``mobilevit.py`` (the variant table and registered specs, torch-free) so that only building a
model imports torch. Layout and module names follow timm (``mobilevit_xxs/xs/s``) for weight compatibility.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import ConvNormAct, make_divisible


class MV2Block(nn.Module):
    """MobileNetV2 inverted residual in timm's ByobNet naming (conv1_1x1 → conv2_kxk → conv3_1x1)."""

    def __init__(self, cin: int, cout: int, stride: int, expand: float):
        super().__init__()
        mid = make_divisible(cin * expand)
        self.conv1_1x1 = ConvNormAct(cin, mid, 1, act="silu")
        self.conv2_kxk = ConvNormAct(mid, mid, 3, stride, groups=mid, act="silu")
        self.conv3_1x1 = ConvNormAct(mid, cout, 1, act=None)
        self.has_skip = stride == 1 and cin == cout

    def forward(self, x):
        y = self.conv3_1x1(self.conv2_kxk(self.conv1_1x1(x)))
        return y + x if self.has_skip else y


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        attn = torch.softmax((q * self.scale) @ k.transpose(-2, -1), dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.SiLU(), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int = 4, mlp_ratio: float = 2.0):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), Attention(dim, heads)
        self.norm2, self.mlp = nn.LayerNorm(dim), Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class MobileViTBlock(nn.Module):
    def __init__(self, chs: int, dim: int, depth: int, patch: int = 2, heads: int = 4):
        super().__init__()
        self.patch = patch
        self.conv_kxk = ConvNormAct(chs, chs, 3, act="silu")
        self.conv_1x1 = nn.Conv2d(chs, dim, 1, bias=False)
        self.transformer = nn.Sequential(*[TransformerBlock(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.conv_proj = ConvNormAct(dim, chs, 1, act="silu")
        self.conv_fusion = ConvNormAct(2 * chs, chs, 3, act="silu")

    def forward(self, x):
        shortcut = x
        x = self.conv_1x1(self.conv_kxk(x))
        b, c, h, w = x.shape
        p = self.patch
        nh, nw = h // p, w // p  # the registry only admits resolutions that make these exact
        # Unfold: (B, C, H, W) → (B·P, N, C) with P = p² pixels per patch and N patches (timm's order).
        x = x.reshape(b * c * nh, p, nw, p).transpose(1, 2)
        x = x.reshape(b, c, nh * nw, p * p).transpose(1, 3).reshape(b * p * p, nh * nw, c)
        x = self.norm(self.transformer(x))
        # Fold back.
        x = x.contiguous().view(b, p * p, nh * nw, c)
        x = x.transpose(1, 3).reshape(b * c * nh, nw, p, p)
        x = x.transpose(1, 2).reshape(b, c, nh * p, nw * p)
        x = self.conv_proj(x)
        return self.conv_fusion(torch.cat((shortcut, x), dim=1))


class MobileViT(nn.Module):
    def __init__(self, v: dict, num_classes: int = 1000):
        """``v``: one row of ``mobilevit.VARIANTS`` (stem, MV2 and MobileViT stage widths, expansion)."""
        super().__init__()
        self.stem = ConvNormAct(3, 16, 3, 2, act="silu")
        cin = 16
        self.stages = nn.Sequential()
        for cout, stride, n in v["mv2"]:
            stage = nn.Sequential()
            for i in range(n):
                stage.append(MV2Block(cin, cout, stride if i == 0 else 1, v["expand"]))
                cin = cout
            self.stages.append(stage)
        for cout, dim, depth in v["vit"]:
            self.stages.append(nn.Sequential(MV2Block(cin, cout, 2, v["expand"]), MobileViTBlock(cout, dim, depth)))
            cin = cout
        self.head = _MobileViTHead(cin, v["features"], num_classes)

    def forward(self, x):
        return self.head(self.stages(self.stem(x)))


class _MobileViTHead(nn.Module):
    def __init__(self, cin: int, features: int, num_classes: int):
        super().__init__()
        self.conv = ConvNormAct(cin, features, 1, act="silu")
        self.fc = nn.Linear(features, num_classes)

    def forward(self, x):
        return self.fc(self.conv(x).mean((2, 3)))
