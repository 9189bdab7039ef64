"""The backend plugin interface and its registry: what a backend is, and how deploykit finds one.

A backend is one module: a :class:`Backend` subclass instance registered with :func:`register`. It says

- which target backend names it serves (``serves``: the names profiles use, e.g. ``litert-xnnpack``), with
  the artifact format each runs and the processor class it executes on (the estimator's vocabulary);
- how its devices are reached (``reach``: ``host``, ``adb``, ``apple``, ``coral``, or a new word of its own)
  and which are attached now (:meth:`Backend.discover`, cheap: no runtime is imported to answer it);
- how to run an artifact: :meth:`Backend.open` returns a :class:`Session` whose ``run()`` is one inference,
  timed by the one harness (:mod:`deploykit.backends.harness`); a backend whose device runs its own timing
  tool (``benchmark_model`` over adb) sets ``remote = True`` and implements :meth:`Backend.measure`, handing
  back the same typed :class:`~deploykit.measurement.LatencyStats`.

Built-in backends are the modules beside this file. Others are found through the ``deploykit.backends``
entry-point group (an installed package) or ``$DEPLOYKIT_PLUGINS`` (comma-separated module names, e.g. a test's
own plugin; see :mod:`deploykit.plugins`). Importing a plugin module must be cheap: heavy runtimes are imported
inside ``open()``.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ..errors import DeploykitError
from ..plugins import builtin_modules, load_external
from ..targets import PROCESSORS

if TYPE_CHECKING:
    from ..artifact import Manifest
    from ..measurement import LatencyStats, Method
    from ..profiling.records import OpProfile
    from ..targets import FoundDevice, Profile, Target

# Every module in this folder is a backend plugin, except these and helpers whose names start with "_":
# adding a backend is adding one file.
INFRASTRUCTURE = ("base", "harness", "worker")
ENTRY_POINT_GROUP = "deploykit.backends"


class BackendError(DeploykitError):
    """A backend could not run an artifact on a device (a runtime failure, a lost device): one line, exit 1."""

    exit_code = 1


class StopRun(DeploykitError):
    """Not one cell's failure but the whole run's: a hosted service refused the account (exit 2: configure it)
    or cannot be reached or billed (exit 1). The harness lets it through instead of storing a failed row, so a
    bench or sweep stops with one line and what it finished stays stored."""

    def __init__(self, message: str, hint: str | None = None, exit_code: int = 1):
        super().__init__(message, hint=hint)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Runtime:
    """What one served backend name runs: the artifact format and the processor class it executes on."""

    format: str
    processor: str = "cpu"

    def __post_init__(self):
        if self.processor not in PROCESSORS:  # the estimator only knows these classes
            raise ValueError(f"processor must be one of {PROCESSORS}, not {self.processor!r}")


@dataclass
class Artifact:
    """What a backend runs: a file and its manifest, or (``path`` None) the zoo model itself."""

    model: str
    resolution: int
    path: Path | None = None
    manifest: Manifest | None = None
    input_shapes: dict | None = None  # --input-shape NAME=… for a file with dynamic dimensions
    reused_from: str | None = (
        None  # exported before: "out" (the output folder's file) or "cache" (the artifact cache's)
    )
    batch: tuple[int, str] | None = None  # a throughput cell (bench --batch): images per invocation, how made


class Session(Protocol):
    env: dict  # runtime name and version, threads, delegate or providers
    delegate: dict  # what ran where, as far as the runtime tells

    def run(self) -> None:
        """One inference on inputs the session prepared when it was opened."""


class Backend:
    name: str = ""  # the plugin's own name (its module's)
    reach: str = ""
    serves: dict[str, Runtime] = {}
    remote: bool = False  # times itself on the device (``measure``) instead of offering ``run()``
    isolate: bool = True  # in-process backends run their session in a child process (a native crash is a row)
    # A hosted service's devices (AI Hub): no local device is held, so several jobs may run at once (bounded),
    # with no per-device lock; targets of this reach name the device through the profile's ``services``.
    hosted: bool = False
    description: str = ""
    aliases: dict[str, str] = {}  # other names users give a served backend (Core ML's own "CPU_AND_NE", …)
    # What a row's load time (``stats.init_ms``: opening the session) includes for this runtime, said with the row
    load_covers: str = ""

    def import_runtime(self, target: Target) -> None:
        """Import what opening a session imports, and load nothing: the baseline a measured row's memory is the
        delta over (run in a child of its own by the harness)."""

    def threads_used(self, session: Session, target: Target) -> int | None:
        """The thread count the session runs with, as its runtime says (stored as ``env["threads_used"]``)."""
        threads = session.env.get("threads")
        return threads if isinstance(threads, int) else target.threads or None

    def discover(self) -> list[FoundDevice]:
        """The devices of this backend's reach that are attached now. Must be fast and import no runtime."""
        return []

    def matches(self, profile: Profile, device: FoundDevice) -> bool:
        """Whether a discovered device is this profile's device: its ``match`` in the device's model name. A
        hosted service serves every profile that names a device on it."""
        if self.hosted:
            return bool(profile.services.get(self.reach))
        return not profile.match or profile.match.lower() in device.model.lower()

    def how_to_reach(self, profile: Profile) -> str:
        """One line for `deploykit devices`/`bench` when a profile of this reach is not attached."""
        return f"no {self.reach} device matching {profile.match!r} found"

    def target_runtime(self, target: Target) -> tuple[Runtime, str]:
        """``(runtime, export precision)`` of a profile target; a plugin overrides this where a target's fields
        change it (an NNAPI target on an Edge TPU takes the int8-edgetpu file and runs on an NPU)."""
        return self.serves[target.backend], target.precision

    def configure(self, options: dict) -> None:
        """Called with the user's backend options before devices are looked for (a plugin whose devices need a
        user-supplied binary to be usable, ``--runner``, reports none without it). Must not raise for options
        it does not use."""

    def preflight(self, options: dict) -> None:
        """Called once before a bench or sweep uses this backend, with the user's backend options (e.g.
        ``benchmark_binary``): raise DeploykitError for what is missing, before any slow work."""

    def transient(self, error: str) -> bool:
        """Is a failed row's error a passing device fault (a cable, a reconnect) worth running the job again for?
        The farm retries such jobs a bounded number of times; conversion and runtime errors never are."""
        return False

    def open(self, artifact: Artifact, target: Target) -> Session:
        raise NotImplementedError(f"{self.name} measures remotely; it has no in-process session")

    def measure(
        self, artifact: Artifact, target: Target, method: Method, device: FoundDevice | None
    ) -> tuple[LatencyStats, dict, dict]:
        """Remote backends: ``(stats, env, delegate)`` of R repetitions on the device."""
        raise NotImplementedError(f"{self.name} runs sessions in the harness; it does not measure remotely")

    def op_profiler(self, target: Target) -> str | None:
        """Why this backend cannot time each op of a run on ``target`` (one line), or None when it can
        (:meth:`profile`; ``deploykit profile``)."""
        return f"{self.name} has no per-op profiler"

    def profile(self, artifact: Artifact, target: Target, method: Method, device: FoundDevice | None) -> OpProfile:
        """Remote and in-process backends: per-op times of a profiled run (``method.warmup`` invocations, then
        ``method.runs``), separate from the timed runs. Isolated host backends are profiled through their
        session in the harness's child process instead (:func:`deploykit.backends.harness.profile_ops`)."""
        raise NotImplementedError(f"{self.name} has no per-op profiler")


# Set when a bench or sweep is interrupted: a hosted backend waiting on a remote job returns at once (the job
# stays recorded, so the next run collects it instead of paying for it again).
cancelled = threading.Event()

_REGISTRY: dict[str, Backend] = {}
_loaded = False


def _folder() -> list[str]:
    return [str(Path(__file__).parent)]


def register(backend: Backend) -> Backend:
    """Add a backend (an instance). A served name may belong to one backend per reach."""
    if not backend.name or not backend.reach:
        raise ValueError("a backend needs a name and a reach")
    for other in _REGISTRY.values():
        if other.name != backend.name and other.reach == backend.reach and set(other.serves) & set(backend.serves):
            shared = sorted(set(other.serves) & set(backend.serves))
            raise ValueError(f"{backend.name} and {other.name} both serve {shared[0]} over {backend.reach}")
    _REGISTRY[backend.name] = backend
    return backend


def load_plugins() -> None:
    """Import the built-in plugin modules, then installed ones, then those named in ``$DEPLOYKIT_PLUGINS``."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in builtin_modules(_folder(), INFRASTRUCTURE):
        importlib.import_module(f"{__package__}.{module}")
    load_external(ENTRY_POINT_GROUP)


def backends() -> list[Backend]:
    load_plugins()
    return list(_REGISTRY.values())


def get(name: str) -> Backend:
    load_plugins()
    if name not in _REGISTRY:
        raise DeploykitError(f"unknown backend plugin {name!r}", hint=f"plugins: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def reaches() -> list[str]:
    return sorted({b.reach for b in backends()})


def backend_names() -> list[str]:
    """Every target backend name some plugin serves (the words profiles and ``--backend`` take)."""
    return sorted({n for b in backends() for n in b.serves})


def of_reach(reach: str) -> list[Backend]:
    return [b for b in backends() if b.reach == reach]


def for_target(reach: str, backend_name: str) -> Backend:
    """The plugin that runs ``backend_name`` on a device reached over ``reach``."""
    for b in of_reach(reach):
        if backend_name in b.serves:
            return b
    over = sorted(b.reach for b in backends() if backend_name in b.serves)
    if over:
        raise DeploykitError(f"backend {backend_name} cannot run over {reach} (it runs over {', '.join(over)})")
    raise DeploykitError(f"backend {backend_name!r} is unknown", hint=f"known: {', '.join(backend_names())}")
