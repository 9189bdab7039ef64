"""Roofline latency estimator: predict a model's latency on a target nobody has attached.

Per deployed layer (MobileNetV4 paper, section 3 and Appendix F)::

    time = max(MACs / (peak · efficiency[op kind]),  DRAM bytes / bandwidth)  +  dispatch

summed over the layers, plus ``invoke`` once per inference, where

- ``peak`` (MAC/s) and ``bandwidth`` (bytes/s) are the target's; their ratio is the *ridge point*.
- ``efficiency`` is the fraction of peak an op kind reaches. Depthwise convolutions use one input channel per
  filter, so a MAC array (or SIMD lanes doing channel dot products) is mostly idle: they run far below peak.
- ``DRAM bytes`` = weights + activations at the precision's bytes per element (int8 1, fp16 2, fp32 4), except
  tensors that fit the target's on-chip memory (``onchip_bytes``): an activation that small stays in SRAM/cache
  between producer and consumer, and weights stay resident on accelerators whose whole model fits.
- ``dispatch`` is a fixed cost per op (kernel launch, op scheduling).
- ``invoke`` is a fixed cost per inference: input/output copies, command submission, synchronisation. On
  accelerators that run the whole graph as one compiled program (Edge TPU, Neural Engine) it replaces most of
  the per-op cost, and it is why a 0.2 GMAC model is not 30× faster than a 6 GMAC one there.
- Accelerators and GPU delegates fuse elementwise activations into the producing conv (``fuse_elementwise``).

An op the target cannot run makes the estimate ``unsupported`` (with the ops), never a number: attention
(softmax, activation×activation matmuls, LayerNorm) on the Hexagon DSP, for instance. For an exported .tflite
the layers are the file's real ops (its format plugin's ``graph_layers``), at the file's precision.

Every parameter lives in the device profile (``[targets.roofline]``) with its source; ``deploykit estimate
--fit`` fits them to measured latencies by least squares in log space (:func:`fit`).

The package, one job a module, each importing only those listed before it:

- :mod:`.model`: the latency model (``Roofline``, ``Estimate``, ``estimate_layers``) and a target's calibration;
- :mod:`.published`: the paper's Table 16, the figures it is checked against;
- :mod:`.layers`: a model's layers (counted and cached, or read from a file) and the rows a fit takes;
- :mod:`.memory`: a deployment's peak memory (weights plus a planned activation arena) and file size, from its
  graph;
- :mod:`.records`: an estimate as a store row (with its memory and size);
- :mod:`.fitting`: least squares on the rows, and which parameters a fit frees;
- :mod:`.layer_fit`: per-op-kind efficiencies fitted on the per-layer rows ``deploykit profile`` stores
  (``estimate fit --layers``);
- :mod:`.intervals`: cross-validated residuals and the interval they give;
- :mod:`.calibration`: a target fitted, cross-validated and written back;
- :mod:`.transfer`: a target without enough rows takes a sibling's fit (borrowed or anchored);
- :mod:`.profile_fit`: a whole profile fitted (``estimate --fit``);
- :mod:`.validation`: what ``estimate --validate`` scores.

Callers use the names this package exports (``from deploykit import estimator as E; E.fit_target``).
"""

from __future__ import annotations

from ..graph import Layer
from .calibration import (
    calibrate,
    fitted_target,
)
from .fitting import (
    FREE_ORDER,
    PRIOR_WEIGHT,
    FitResult,
    default_free,
    default_free_for_class,
    fit,
    fit_target,
    get_param,
    macs_baseline,
    set_param,
)
from .intervals import (
    Residual,
    coverage,
    cross_validate,
    interval_basis,
    interval_from,
    set_interval,
    spearman,
    summarize,
)
from .layer_fit import (
    LayerFit,
    LayerTable,
    fit_layer_efficiency,
    layer_tables,
    shaped,
    table_rows,
    with_layer_fit,
)
from .layers import (
    LAYERS_FORMAT,
    FitRow,
    analysable_rows,
    layer_samples,
    layers_from_analysis,
    model_layers,
    models_of,
    total_macs,
    training_rows,
    zoo_layers,
)
from .memory import (
    MemoryEstimate,
    cached_model_memory,
    estimate_file_size,
    estimate_memory,
    file_memory,
    model_memory,
    plan_arena,
)
from .model import (
    ANCHORED_NOTE,
    ATTENTION_KINDS,
    BORROWED_NOTE,
    BYTES_PER_ELEM,
    FITTED_FIELDS,
    INTERVAL,
    PARAM_KEYS,
    SIZE_MARGIN,
    SIZE_WIDENING_PER_LOG,
    UNCALIBRATED,
    UNCALIBRATED_BASIS,
    UNSEEN_KIND_CHECK,
    UNSEEN_KINDS_INTERVAL,
    WHOLE_GRAPH_CLASSES,
    Calibration,
    Estimate,
    LayerArrays,
    LayerTime,
    Roofline,
    datasheet_bw,
    datasheet_peak,
    datasheet_roofline,
    estimate_layers,
    interval_of,
    recorded_kind,
    roofline_for,
    select_targets,
    size_extrapolation,
    sweep_ridge,
    target_class,
    unseen_kinds,
    with_figures,
)
from .profile_fit import (
    ProfileFit,
    fit_profile,
)
from .published import (
    published_ridge,
    published_ridge_points,
    table16,
)
from .records import (
    breakdown,
    to_measurement,
)
from .reports import BorrowedFitReport, FitReport
from .transfer import (
    anchor,
    anchored_residuals,
    borrow,
    leave_one_device_out,
    scaled,
    transfer,
    transfer_residuals,
    vendor,
)
from .validation import (
    family_transfer,
    heldout_target,
    lab_agreement,
    leave_largest_out,
    size_coverage,
    targets_to_validate,
    validate_target,
)

__all__ = [
    "MemoryEstimate",
    "cached_model_memory",
    "estimate_file_size",
    "estimate_memory",
    "file_memory",
    "model_memory",
    "plan_arena",
    "ANCHORED_NOTE",
    "ATTENTION_KINDS",
    "BORROWED_NOTE",
    "BYTES_PER_ELEM",
    "Calibration",
    "Estimate",
    "FITTED_FIELDS",
    "FREE_ORDER",
    "FitResult",
    "INTERVAL",
    "LAYERS_FORMAT",
    "Layer",
    "LayerArrays",
    "LayerFit",
    "LayerTable",
    "LayerTime",
    "PARAM_KEYS",
    "PRIOR_WEIGHT",
    "ProfileFit",
    "Residual",
    "Roofline",
    "SIZE_MARGIN",
    "SIZE_WIDENING_PER_LOG",
    "UNCALIBRATED",
    "UNCALIBRATED_BASIS",
    "UNSEEN_KINDS_INTERVAL",
    "UNSEEN_KIND_CHECK",
    "recorded_kind",
    "WHOLE_GRAPH_CLASSES",
    "BorrowedFitReport",
    "FitReport",
    "FitRow",
    "analysable_rows",
    "models_of",
    "anchor",
    "anchored_residuals",
    "borrow",
    "breakdown",
    "calibrate",
    "coverage",
    "cross_validate",
    "datasheet_bw",
    "datasheet_peak",
    "datasheet_roofline",
    "default_free",
    "default_free_for_class",
    "estimate_layers",
    "family_transfer",
    "fit",
    "fit_layer_efficiency",
    "fit_profile",
    "fit_target",
    "fitted_target",
    "get_param",
    "heldout_target",
    "interval_basis",
    "interval_from",
    "interval_of",
    "lab_agreement",
    "leave_largest_out",
    "layer_samples",
    "layer_tables",
    "layers_from_analysis",
    "leave_one_device_out",
    "macs_baseline",
    "model_layers",
    "published_ridge",
    "published_ridge_points",
    "roofline_for",
    "scale_only",
    "scaled",
    "select_targets",
    "shaped",
    "set_interval",
    "set_param",
    "size_coverage",
    "size_extrapolation",
    "spearman",
    "summarize",
    "sweep_ridge",
    "table16",
    "table_rows",
    "target_class",
    "targets_to_validate",
    "to_measurement",
    "total_macs",
    "training_rows",
    "transfer",
    "transfer_residuals",
    "unseen_kinds",
    "validate_target",
    "vendor",
    "with_figures",
    "with_layer_fit",
    "zoo_layers",
]
