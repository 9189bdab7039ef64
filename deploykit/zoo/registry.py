"""The model registry: canonical names, aliases, builders and published facts.

A leaf module, as timm's registry is: it imports neither torch nor any family. Family modules (``mobilenet_v1``
... ``repvit``) call :func:`register` when imported, and ``deploykit/zoo/__init__.py`` imports them all, so
importing ``deploykit.zoo`` (or anything under it) registers every model without importing torch. A spec's
``builder`` imports the torch modules only when called.

Published facts (params, MACs, top-1 and their sources) come from ``published_models.csv`` in this folder,
a copy of ``shared/reference/published_models.csv`` shipped with the package (a test keeps them equal).
"""

from __future__ import annotations

import csv
import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

from ..errors import ResolutionError, UnknownModelError

if TYPE_CHECKING:
    from torch import nn

MAX_RESOLUTION = 2048
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INCEPTION_MEAN = (0.5, 0.5, 0.5)
INCEPTION_STD = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class Figure:
    """A published number with the decimal places it was published with (its rounding is part of any tolerance)."""

    value: float
    digits: int

    @classmethod
    def parse(cls, text: str) -> Figure | None:
        text = text.strip()
        if not text:
            return None
        return cls(float(text), len(text.split(".")[1]) if "." in text else 0)

    def tolerance(self, rel: float = 0.02) -> float:
        return max(rel * self.value, 0.5 * 10**-self.digits)

    def agrees(self, measured: float, rel: float = 0.02) -> bool:
        return abs(measured - self.value) <= self.tolerance(rel)


@dataclass(frozen=True)
class PublishedFacts:
    params_m: Figure | None
    macs_m: Figure | None
    timm_params_m: Figure | None
    timm_macs_m: Figure | None
    deploy_params_m: Figure | None
    top1: float | None
    top1_source: str


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str
    builder: Callable[..., nn.Module]
    resolution: int
    aliases: tuple[str, ...] = ()
    timm_name: str | None = None
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    # The input side must be a multiple of this (the network's total stride, or patch constraints).
    input_multiple: int = 32
    min_resolution: int = 32
    notes: str = ""
    kwargs: dict = field(default_factory=dict)
    # How timm's state-dict keys become ours: ordered (regex, replacement) rules, see deploykit.weights.
    timm_key_map: tuple[tuple[str, str], ...] = ()

    @property
    def published(self) -> PublishedFacts | None:
        return published_facts().get(self.name)

    def check_resolution(self, resolution: int) -> None:
        if resolution > MAX_RESOLUTION:
            # checked before anything is allocated: 100000 x 100000 would ask for ~120 GB in the first conv
            raise ResolutionError(
                f"{self.name} cannot take resolution {resolution}: deploykit takes at most {MAX_RESOLUTION}"
                " (mobile backbones are run at 128-512)",
                hint=f"default {self.resolution}",
            )
        if resolution < self.min_resolution or resolution % self.input_multiple:
            raise ResolutionError(
                f"{self.name} cannot take resolution {resolution}: it needs a multiple of {self.input_multiple}"
                f" that is at least {self.min_resolution}",
                hint=f"try {max(self.min_resolution, round(resolution / self.input_multiple) * self.input_multiple)}"
                f" (default {self.resolution})",
            )

    def build(self, num_classes: int = 1000, **overrides) -> nn.Module:
        """Instantiate the model in eval mode (the builder imports torch on first use)."""
        model = self.builder(num_classes=num_classes, **{**self.kwargs, **overrides})
        return model.eval()


_REGISTRY: dict[str, ModelSpec] = {}
_ALIASES: dict[str, str] = {}


def register(spec: ModelSpec) -> ModelSpec:
    for key in (spec.name, *spec.aliases, *([spec.timm_name] if spec.timm_name else [])):
        key = _normalize(key)
        owner = _ALIASES.get(key)
        if owner is not None and owner != spec.name:
            raise ValueError(f"name {key!r} already belongs to {owner}")
        _ALIASES[key] = spec.name
    _REGISTRY[spec.name] = spec
    return spec


def _normalize(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def list_models(family: str | None = None) -> list[ModelSpec]:
    return [s for s in _REGISTRY.values() if family is None or s.family.lower() == family.lower()]


def get_spec(name: str) -> ModelSpec:
    """Resolve a canonical name, alias or timm name (case-insensitive, ``-`` or ``_``) to its spec."""
    key = _normalize(name)
    if key in _ALIASES:
        return _REGISTRY[_ALIASES[key]]
    close = difflib.get_close_matches(key, list(_ALIASES), n=3, cutoff=0.5)
    suggestions = list(dict.fromkeys(_ALIASES[c] for c in close))
    hint = f"did you mean {', '.join(suggestions)}?" if suggestions else "run `deploykit models` for the list"
    raise UnknownModelError(f"unknown model {name!r}", hint=hint)


def create_model(name: str, resolution: int | None = None, num_classes: int = 1000, **overrides) -> nn.Module:
    """Build a zoo model in eval mode (timm-style entry point). ``resolution`` is only validated here."""
    spec = get_spec(name)
    if resolution is not None:
        spec.check_resolution(resolution)
    return spec.build(num_classes=num_classes, **overrides)


@cache
def published_facts() -> dict[str, PublishedFacts]:
    text = resources.files(__package__).joinpath("published_models.csv").read_text()
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    facts = {}
    for r in rows:
        paper_macs = Figure.parse(r["paper_macs_m"])
        # The MobileNetV4 paper's Table 6 prints MACs in G with one decimal (0.2G → "200"): ±50M.
        if paper_macs and r["top1_source"].startswith("MobileNetV4 paper Tab.6"):
            paper_macs = Figure(paper_macs.value, -2)
        timm_macs = Figure.parse(r["timm_macs_m"])
        # timm's benchmark table prints GMACs with two decimals (0.58 → "580"): ±5M.
        if timm_macs:
            timm_macs = Figure(timm_macs.value, -1)
        facts[r["name"]] = PublishedFacts(
            params_m=Figure.parse(r["paper_params_m"]),
            macs_m=paper_macs,
            timm_params_m=Figure.parse(r["timm_params_m"]),
            timm_macs_m=timm_macs,
            deploy_params_m=Figure.parse(r["deploy_params_m"]),
            top1=float(r["top1"]) if r["top1"] else None,
            top1_source=r["top1_source"],
        )
    return facts
