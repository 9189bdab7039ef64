"""The MobileNetV4 paper's published figures the estimator is checked against: Table 16's ridge points and
Spearman correlations (``deploykit/reference/ridge_points.csv``)."""

from __future__ import annotations

from importlib import resources

# Table 16 (ridge_points.csv) names a paper target ``{paper_target}_int8``, except the DSP.
_RIDGE_NAMES = {"pixel4_hexagon": "pixel4_dsp_int8"}


def published_ridge(paper_target: str | None) -> float | None:
    """The published ridge point (MACs/byte) of a paper target, if the paper gives one."""
    if not paper_target:
        return None
    return published_ridge_points().get(_RIDGE_NAMES.get(paper_target, f"{paper_target}_int8"))


def _ridge_records() -> dict[str, dict]:
    """ridge_points.csv (the paper's Table 16) by target name."""
    from ..corpus import commented_csv

    text = resources.files("deploykit.reference").joinpath("ridge_points.csv").read_text()
    return {rec["target"]: rec for rec in commented_csv(text)}


def published_ridge_points() -> dict[str, float]:
    return {name: float(rec["ridge_point_macs_per_byte"]) for name, rec in _ridge_records().items()}


def table16(paper_target: str | None) -> dict[str, float] | None:
    """Table 16's row (ridge point, Spearman of its roofline and of MACs) for a paper target, if it has one."""
    rec = _ridge_records().get(_RIDGE_NAMES.get(paper_target, f"{paper_target}_int8")) if paper_target else None
    return {k: float(v) for k, v in rec.items() if k != "target"} if rec else None
