"""A device profile fitted target by target (``deploykit estimate --fit``): each target calibrated on its rows,
or, with too few of its own, given a calibrated sibling's figures (:mod:`~deploykit.estimator.transfer`)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..targets import Profile, Target
from .calibration import calibrate
from .layer_fit import layer_tables
from .layers import analysable_rows, models_of, training_rows
from .model import select_targets
from .reports import BorrowedFitReport, FitReport
from .transfer import transfer


@dataclass
class ProfileFit:
    """What fitting a profile did: the profile with every target written back (refitted, borrowed, or as it was),
    a report per target that was fitted or borrowed, and the models whose rows were skipped, with why."""

    profile: Profile
    reports: list[FitReport | BorrowedFitReport] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # model → why deploykit cannot read its layers


def fit_profile(
    profile: Profile,
    names: list[str] | None,
    store,
    published: bool,
    siblings: dict[str, Profile],
    layers: bool = False,
) -> ProfileFit:
    """Fit the targets of ``profile`` (those ``names`` select, :func:`select_targets`) on their rows: the measured
    rows of ``store`` (None: none) and, with ``published``, the corpus's. A target without readable rows borrows
    a calibrated sibling's figures from ``siblings`` (every profile, by name) where ``published`` lets it; one
    whose rows cover a single model takes a sibling's shape scaled to them where a sibling exists. With
    ``layers``, a target with per-layer tables in ``store`` (``deploykit profile``) fits its efficiency per op
    kind on them first (:mod:`.layer_fit`)."""
    fitted: dict[str, Target] = {}
    result = ProfileFit(profile)
    for t in select_targets(profile, names):
        rows, unreadable = analysable_rows(training_rows(t, store, published))
        result.skipped.update(unreadable)
        if rows:
            # one model's rows are too few for a shape of its own: scale a calibrated sibling's to them
            one_model = len(models_of(rows)) == 1
            tables = layer_tables(t, store) if layers and store is not None else None
            done = (one_model and not tables and transfer(t, profile, siblings, rows)) or calibrate(t, rows, tables)
        else:
            done = transfer(t, profile, siblings) if published else None
        if done:
            fitted[t.id], report = done
            result.reports.append(report)
    result.profile = replace(profile, targets=[fitted.get(t.id, t) for t in profile.targets])
    return result
