"""The shared vocabulary of where a model runs: a device profile, its targets, and the devices found attached.

Ground floor: every stage may import this module, and it imports nothing of deploykit but ``errors``. What a
backend name *means* (its format, its processor, how it is reached) belongs to the backend plugin that serves
it (``deploykit.backends``); :mod:`deploykit.devices` fills those fields in when it loads a profile.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Export precisions a target may ask for. Which of them a format can write is the format plugin's business.
PRECISIONS = ("fp32", "fp16", "int8", "int8-dynamic", "int8-edgetpu")
# Processor classes: the estimator's vocabulary for how a target executes a graph.
PROCESSORS = ("cpu", "gpu", "dsp", "npu")
# A target's ``[targets.roofline]`` table (the estimator's parameters): key → (accepted types, allowed range).
# Numbers must be finite; ``efficiency`` maps op kinds to a fraction of peak in (0, 1].
ROOFLINE_FIELDS = {
    "paper_target": ((str,), None),
    "dispatch_s": ((int, float), (0.0, 1.0)),
    "invoke_s": ((int, float), (0.0, 10.0)),
    "onchip_bytes": ((int,), (0, 1 << 40)),
    "weight_onchip_bytes": ((int,), (0, 1 << 40)),
    "efficiency": ((dict,), (1e-6, 1.0)),
    "fuse_elementwise": ((bool,), None),
    "unsupported": ((list,), None),
    "fit": ((str,), None),
    # where the figures came from (written with them): fitted, borrowed, anchored or datasheet
    # (deploykit.estimator.Calibration; a profile without it is read off its ``fit`` note)
    "calibration": ((str,), None),
    # measured/estimated factors bounding the target's 80% interval, from cross-validated residuals of its fit
    "interval": ((list,), (1e-3, 1e3)),
    "interval_basis": ((str,), None),
    # the op kinds of the rows the figures were fitted on: an estimate of a model with attention kinds none of
    # them had says so and takes at least the interval such extrapolations were measured to need
    "fitted_kinds": ((list,), None),
    # MACs of the smallest and largest model the figures were fitted on: an estimate far outside says so and
    # takes a wider interval (deploykit.estimator.model.size_extrapolation)
    "fitted_macs": ((list,), (0, 1e15)),
    # the profile's own figures before any fit moved them: where a refit and cross-validation start from
    "datasheet_peak_macs_per_s": ((int, float), (1e6, 1e18)),
    "datasheet_mem_bw_bytes_per_s": ((int, float), (1e6, 1e15)),
}
# Ranges of a target's numeric fields: a negative peak or bandwidth would give estimates that look fine.
TARGET_RANGES = {
    "threads": (0, 1024),
    "peak_macs_per_s": (1e6, 1e18),
    "mem_bw_bytes_per_s": (1e6, 1e15),
    "onchip_bytes": (0, 1 << 40),
}


@dataclass(frozen=True)
class Target:
    """One device × backend × precision, e.g. ``pixel8/litert-gpu/fp16``: what a Measurement is taken on."""

    device: str
    backend: str
    precision: str
    name: str = ""  # distinguishes two targets with the same backend (e.g. nnapi hexagon vs edgetpu)
    threads: int = 1
    affinity: str | None = None
    nnapi_accelerator: str | None = None
    peak_macs_per_s: float | None = None
    mem_bw_bytes_per_s: float | None = None
    onchip_bytes: int | None = None
    source: str = ""
    available: bool = True
    roofline: dict | None = field(default=None, hash=False, compare=False)  # estimator parameters
    # Filled in from the backend plugin when the profile is loaded (never written in a profile):
    format: str = ""  # the artifact format the backend runs
    export_precision: str = ""  # the artifact precision it runs (an Edge TPU takes the int8-edgetpu file)
    processor: str = "cpu"  # cpu | gpu | dsp | npu
    # How this target is reached: the profile's ``reach`` unless the target names another (one physical phone
    # is reached over adb on a desk and through a hosted service such as AI Hub: one profile, both kinds of targets).
    reach: str = ""
    remote_name: str = ""  # filled in: the device's name on a hosted service (the profile's ``services``)

    @property
    def id(self) -> str:
        """``device/backend/precision`` (or ``device/name/precision`` when the target is named)."""
        return f"{self.device}/{self.name or self.backend}/{self.precision}"


@dataclass
class Profile:
    """A device profile (one TOML file): what the device is, how it is reached, and its targets."""

    name: str
    display: str
    reach: str
    targets: list[Target]
    path: str
    match: str | None = None
    notes: str = ""
    # The device's name on each hosted service that offers it, keyed by that service's reach, e.g.
    # ``{aihub = "Samsung Galaxy S24"}``: targets of that reach run on the device of that name.
    services: dict = field(default_factory=dict)
    host: dict = field(default_factory=dict)

    @property
    def reaches(self) -> list[str]:
        """Every way this device's targets are reached, the profile's own first."""
        return list(dict.fromkeys([self.reach, *(t.reach for t in self.targets)]))


@dataclass(frozen=True)
class FoundDevice:
    """A device a backend's ``discover()`` saw attached: an adb serial, this Mac, an Edge TPU, this host."""

    reach: str
    id: str  # serial, hostname, /dev/apex_0, …
    model: str  # what a profile's ``match`` is compared with (``ro.product.model``, ``hw.model``, CPU model)
    state: str = "ready"  # adb's "device"/"unauthorized"/"offline" are told apart by the backend
    how: str = ""  # how it was looked for, for `deploykit devices`
