"""What a fit says about each target it moved: typed, with ``to_dict()`` giving the shape `estimate fit --json`
has always printed (the field order is that shape's key order)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class FitReport:
    """A target fitted on rows of its own (:func:`~deploykit.estimator.calibration.calibrate`)."""

    target: str
    rows: int
    sources: list[str]
    free: list[str]
    rms_log_error: float | None
    peak_macs_per_s: float
    mem_bw_bytes_per_s: float
    dispatch_s: float
    invoke_s: float
    efficiency: dict[str, float]
    interval: list[float] | None
    interval_basis: str | None
    leave_one_model_out: dict
    leave_one_source_out: dict
    caveat: str | None  # set where the fit cannot say how well it predicts (as many rows as free parameters)
    layer_rows: int = 0  # per-layer rows (ops of profiled runs) its efficiencies were fitted on (`--layers`)
    layer_models: list[str] = field(default_factory=list)  # the profiled models they come from

    borrowed_from = None  # never: the figures are its own
    scale = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class BorrowedFitReport:
    """A target that took a calibrated sibling's figures, scaled by the datasheet peaks (``rows`` empty) or to its
    one model's rows (:mod:`~deploykit.estimator.transfer`)."""

    target: str
    borrowed_from: str
    scale: float
    rows: int
    sources: list[str]
    free: list[str]
    rms_log_error: float | None  # None: fitted on no row of its own
    peak_macs_per_s: float
    mem_bw_bytes_per_s: float
    dispatch_s: float
    invoke_s: float
    efficiency: dict[str, float]
    interval: list[float] | None
    caveat: str | None = None

    # never: a borrowed shape is its sibling's, not fitted on per-layer rows of its own (class attributes, not fields:
    # the report's JSON keeps its shape)
    layer_rows = 0
    layer_models = ()

    def to_dict(self) -> dict:
        return asdict(self)
