"""Qualcomm AI Hub: real Snapdragon devices (Galaxy S22-S26, Snapdragon X Elite, automotive and IoT boards),
measured remotely through the ``qai-hub`` client (``pip install 'deploykit[aihub]'``, then
``qai-hub configure --api_token TOKEN``).

One profile job per target: upload the artifact once (remembered by its SHA-256), submit a profile job on the
profile's AI Hub device with the target's compute unit, wait, download the profile. A target of Qualcomm's own
runtime (``qnn``) first compiles the ONNX file on AI Hub (a compile job, ``--target_runtime qnn_dlc``) and
profiles the compiled model; both job ids are kept. Every submitted job id is
written to a ledger at once (:mod:`deploykit.backends._aihub_ledger`), so an interrupted bench or sweep, run
again, waits for or collects the same job and never pays for it twice.

The client's types and fields used here, as documented and as the 0.56 client defines them
(``qai_hub/client.py``; https://workbench.aihub.qualcomm.com/docs/hub/api.html):

- ``upload_model(path) -> Model`` (``model_id``); ``get_model(model_id)``; ``Device(name)``;
- ``submit_compile_job(model, device, name=, options=) -> CompileJob`` (the same status methods;
  ``get_target_model() -> Model``, None until it succeeded);
- ``submit_profile_job(model, device, name=, options=) -> ProfileJob`` (``job_id``, ``url``, ``hub_version``,
  ``get_status() -> JobStatus`` with ``finished``/``success``/``failure``/``code``/``message``,
  ``download_profile() -> dict``); ``get_job(job_id)``;
- the profile dict: ``execution_summary`` (``estimated_inference_time`` in µs, ``all_inference_times`` µs,
  ``estimated_inference_peak_memory`` bytes, ``inference_memory_peak_range``; the load and compile stages as
  ``first_load_time``/``warm_load_time``/``compile_time`` µs, ``first_load_peak_memory``/
  ``warm_load_peak_memory``/``compile_peak_memory`` bytes and ``<stage>_memory_increase_range``/
  ``<stage>_memory_peak_range`` (lower, upper) bytes; a value the service did not measure is ``None``, as
  ``qai_hub/client.py:_profile_pb_to_python_dict`` writes ``MISSING_METRIC_VALUE``) and ``execution_detail`` (one
  dict per layer: ``name``, ``type``, ``compute_unit`` ``NPU``/``GPU``/``CPU``, and where measured
  ``execution_time`` µs, ``execution_cycles``: ``deploykit profile`` reads them, ``profiling/aihub_detail.py``);
- profile options ``--compute_unit cpu|gpu|npu`` (the runtime follows the uploaded file: ``.tflite`` runs on
  LiteRT with its GPU/QNN delegates, ``.onnx`` on ONNX Runtime with its QNN execution provider);
- errors ``qai_hub.UserError`` (a bad or expired token: "Failed to authenticate"), ``InternalError`` (the
  service unreachable or failing), ``RateLimitedError`` (quota).

The live service was not reached from this project's machines (no network): the tests drive this module
through a stand-in ``qai_hub`` that follows these types (``tests/fake_qai_hub``).
"""

from __future__ import annotations

import configparser
import importlib.util
import os
import time
from collections import Counter
from pathlib import Path

from ..errors import DeploykitError
from ..targets import FoundDevice, Profile, Target
from . import _aihub_ledger as ledger
from .base import Artifact, Backend, BackendError, Runtime, StopRun, cancelled, register

INSTALL = "pip install 'deploykit[aihub]'"
CONFIGURE = (
    "qai-hub configure --api_token TOKEN (the token: https://aihub.qualcomm.com, Account > Settings > API Token)"
)
# Seconds between status checks of a submitted job (a profile job takes minutes: queue, compile, measure).
POLL_S = float(os.environ.get("DEPLOYKIT_AIHUB_POLL_S", "10"))


def client_config_path() -> Path:
    """Where the client keeps its token: ``$QAIHUB_CLIENT_INI``, else ``~/.qai_hub/client.ini`` (as the client
    itself looks, ``qai_hub/api_utils.py:get_config_path``)."""
    return Path(os.path.expanduser(os.environ.get("QAIHUB_CLIENT_INI", "~/.qai_hub/client.ini")))


def configured_token() -> tuple[bool, str]:
    """``(configured, why not)``, read locally: no network call, so `deploykit devices` stays fast."""
    if importlib.util.find_spec("qai_hub") is None:
        return False, f"Qualcomm AI Hub's client is not installed: {INSTALL}, then {CONFIGURE}"
    path = client_config_path()
    config = configparser.ConfigParser()
    try:
        config.read(path)
    except configparser.Error as e:
        return False, f"{path} is not a client configuration ({e.message.splitlines()[0]}): " + CONFIGURE
    if not config.get("api", "api_token", fallback="").strip():
        return False, f"no Qualcomm AI Hub token in {path}: " + CONFIGURE
    return True, ""


class AIHub(Backend):
    name = "aihub"
    reach = "aihub"
    remote = True
    hosted = True
    isolate = False
    description = "Qualcomm AI Hub: real Snapdragon devices, profiled remotely (qai-hub client, API token)"
    # Target backend names, the same words as over adb where the runtime is the same; the compute unit each asks
    # AI Hub for. ONNX Runtime's NPU runs through its QNN execution provider, LiteRT's through the QNN delegate.
    serves = {
        "litert-xnnpack": Runtime("tflite", "cpu"),
        "litert-gpu": Runtime("tflite", "gpu"),
        "litert-qnn": Runtime("tflite", "npu"),
        "onnxruntime": Runtime("onnx", "cpu"),
        "onnxruntime-qnn": Runtime("onnx", "npu"),
        "qnn": Runtime("onnx", "npu"),  # the ONNX file compiled by AI Hub for Qualcomm's own runtime
    }
    # Targets whose file AI Hub compiles before profiling it: the compile job's options (the client's documented
    # ``--target_runtime``; the corpus's QNN rows were measured as ``qnn_dlc``)
    compiled = {"qnn": "--target_runtime qnn_dlc"}
    compute_unit = {"cpu": "cpu", "gpu": "gpu", "npu": "npu"}  # processor class → AI Hub's --compute_unit
    runtime_names = {
        "litert-xnnpack": "LiteRT (XNNPACK)",
        "litert-gpu": "LiteRT (GPU delegate)",
        "litert-qnn": "LiteRT (QNN delegate)",
        "onnxruntime": "ONNX Runtime (CPU)",
        "onnxruntime-qnn": "ONNX Runtime (QNN execution provider)",
        "qnn": "Qualcomm AI Runtime (QNN, compiled by AI Hub)",
    }

    def discover(self) -> list[FoundDevice]:
        ok, _ = configured_token()
        if not ok:
            return []
        return [
            FoundDevice(self.reach, "Qualcomm AI Hub", "", how=f"Qualcomm AI Hub (token in {client_config_path()})")
        ]

    def how_to_reach(self, profile: Profile) -> str:
        return configured_token()[1] or f"{profile.name} names no AI Hub device"

    def preflight(self, options: dict) -> None:
        ok, why = configured_token()
        if not ok:
            raise DeploykitError(why)

    def options_for(self, target: Target) -> str:
        return f"--compute_unit {self.compute_unit[self.serves[target.backend].processor]}"

    def measure(self, artifact: Artifact, target: Target, method, device):
        job, options, profile = self._profiled(artifact, target, method)
        env = _env(job, target, options, profile)
        compile_options = self.compiled.get(target.backend)
        if compile_options:  # both jobs named, so the row says what was compiled and where it ran
            env["aihub_compile_job_id"] = ledger.job_for(_compile_key(artifact, target, compile_options))
            env["compile_options"] = compile_options
        return _stats(profile, method), env, _delegate(profile, target)

    def op_profiler(self, target: Target) -> str | None:
        return None  # the profile job's execution_detail: each layer's compute unit, and its time where measured

    def profile(self, artifact: Artifact, target: Target, method, device):
        """The same profile job as :meth:`measure` (the ledger finds it: nothing is submitted or paid twice),
        its ``execution_detail`` read per layer."""
        from ..profiling.aihub_detail import read_profile

        job, _, profile = self._profiled(artifact, target, method)
        return read_profile(profile, self.compute_unit[target.processor], runtime=f"AI Hub job {job.job_id}")

    def _profiled(self, artifact: Artifact, target: Target, method):
        """``(job, options, profile dict)`` of the target's profile job: the ledger's, or submitted now."""
        hub = _client()
        if artifact.path is None or artifact.manifest is None:
            raise BackendError(f"{target.id} runs files; {artifact.model} has none")
        options = self.options_for(target)
        compile_options = self.compiled.get(target.backend)
        # the same file on the same unit through another runtime is another job: the compile options are its key too
        key = ledger.job_key(artifact.manifest.sha256, target.remote_name, f"{compile_options} {options}".strip())
        with _service_errors(hub):
            job = _known_job(hub, key)
            if job is None:
                model = _uploaded(hub, artifact)
                if compile_options:
                    model = _compiled(hub, artifact, target, model, compile_options, method.timeout_s)
                job = hub.submit_profile_job(
                    model=model,
                    device=hub.Device(target.remote_name),
                    name=f"deploykit {artifact.model} {target.id}",
                    options=options,
                )
                ledger.remember_job(key, job.job_id, target.id)  # at once: a re-run collects it, never resubmits
            status = _wait(job, method.timeout_s)
            if status.failure:
                ledger.forget_job(key)  # a retry submits afresh
                raise BackendError(f"AI Hub job {job.job_id} failed on {target.remote_name}: {status.message}")
            profile = job.download_profile()
        return job, options, profile


def _compile_key(artifact: Artifact, target: Target, compile_options: str) -> str:
    return ledger.job_key(artifact.manifest.sha256, target.remote_name, compile_options)


def _compiled(hub, artifact: Artifact, target: Target, model, compile_options: str, timeout_s: float):
    """The uploaded model compiled for the target's device and runtime: one compile job per (file, device,
    options), kept in the ledger like a profile job, so a re-run (or the profile of the same compiled model after
    an interruption) never pays for it again. A failed compile is this cell's failed row, in AI Hub's words."""
    key = _compile_key(artifact, target, compile_options)
    job = _known_job(hub, key)
    if job is None:
        job = hub.submit_compile_job(
            model=model,
            device=hub.Device(target.remote_name),
            name=f"deploykit {artifact.model} {target.id} (compile)",
            options=compile_options,
        )
        ledger.remember_job(key, job.job_id, target.id)
    status = _wait(job, timeout_s)
    if status.failure:
        ledger.forget_job(key)  # a retry compiles afresh
        raise BackendError(f"AI Hub compile job {job.job_id} failed for {target.remote_name}: {status.message}")
    compiled = job.get_target_model()
    if compiled is None:
        raise BackendError(f"AI Hub compile job {job.job_id} succeeded but returned no compiled model")
    return compiled


def _client():
    try:
        import qai_hub
    except ImportError:
        raise DeploykitError("Qualcomm AI Hub's client is not installed", hint=f"{INSTALL}, then {CONFIGURE}") from None
    return qai_hub


class _service_errors:
    """The client's exceptions in deploykit's words: a refused token stops the run (exit 2: configure it), an
    unreachable or rate-limited service stops it too (exit 1); anything else the client raises is this cell's."""

    def __init__(self, hub):
        self.hub = hub

    def __enter__(self):
        return self

    def __exit__(self, kind, e, tb):
        if e is None or isinstance(e, DeploykitError) or not isinstance(e, self.hub.Error):
            return False
        said = _first_line(str(e))
        if isinstance(e, self.hub.RateLimitedError):
            raise StopRun(f"Qualcomm AI Hub refused more jobs (quota): {said}", hint="try again later") from None
        if isinstance(e, self.hub.UserError) and "authenticate" in str(e).lower():
            raise StopRun(f"Qualcomm AI Hub rejected the API token: {said}", hint=CONFIGURE, exit_code=2) from None
        if isinstance(e, self.hub.InternalError):
            raise StopRun(f"Qualcomm AI Hub cannot be reached: {said}") from None
        raise BackendError(f"Qualcomm AI Hub: {said}") from None


def _known_job(hub, key: str):
    """The job the ledger holds for this key, if the service still knows it (another account's, or an
    expired one, is forgotten and submitted afresh)."""
    job_id = ledger.job_for(key)
    if not job_id:
        return None
    try:
        return hub.get_job(job_id)
    except hub.UserError as e:
        if "authenticate" in str(e).lower():
            raise
        ledger.forget_job(key)
        return None


def _first_line(text: str) -> str:
    """The client frames its messages in boxes over several lines: the first line that says something."""
    lines = [x.strip(" |┌┐└┘─") for x in text.splitlines()]
    return " ".join(x for x in lines if x)[:300]


def _uploaded(hub, artifact: Artifact):
    """The artifact as an AI Hub model: uploaded once, found again by its SHA-256."""
    sha = artifact.manifest.sha256
    model_id = ledger.model_for(sha)
    if model_id:
        try:
            return hub.get_model(model_id)
        except hub.UserError as e:
            if "authenticate" in str(e).lower():
                raise
            ledger.forget_model(sha)  # expired or another account's: upload again
    model = hub.upload_model(str(artifact.path))
    ledger.remember_model(sha, model.model_id)
    return model


def _wait(job, timeout_s: float):
    """Poll the job until it finishes, the run is interrupted, or ``timeout_s`` passes (the job id stays in the
    ledger: the next run waits for the same job)."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = job.get_status()
        if status.finished:
            return status
        if cancelled.is_set():
            raise StopRun(f"interrupted while AI Hub job {job.job_id} was {status.code}; run again to collect it")
        if time.monotonic() > deadline:
            raise BackendError(
                f"AI Hub job {job.job_id} still {status.code} after {timeout_s:.0f} s; run again to collect it"
                " (the job is kept, not resubmitted)"
            )
        cancelled.wait(POLL_S)


def _stats(profile: dict, method):
    """AI Hub's per-iteration inference times, grouped into the method's repetitions (its headline, the median
    of repetition means, then reads like every other backend's); AI Hub's own figure is kept in ``env``."""
    from ..measurement import LatencyStats

    summary = profile["execution_summary"]
    times = [t / 1000 for t in summary.get("all_inference_times") or []] or [summary["estimated_inference_time"] / 1000]
    r = max(1, min(method.repetitions, len(times)))
    size = len(times) // r
    reps = [times[i * size : (i + 1) * size] for i in range(r)]
    stats = LatencyStats.from_samples(reps)
    stats.note = f"AI Hub profile: {len(times)} timed iteration(s) on the device, grouped into {r} repetition(s)"
    load = _number(summary.get("first_load_time"))
    stats.init_ms = load / 1000 if load else None
    # the first of the profiled iterations: AI Hub runs no separate warm-up before it (its documented example's
    # first time is the slowest, as a cold first inference is)
    stats.first_ms = times[0] if summary.get("all_inference_times") else None
    return stats


def _number(v) -> int | None:
    """A profile value the service measured (an int), or None (``MISSING_METRIC_VALUE``, or not reported)."""
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _range(v) -> list[int] | None:
    return [int(x) for x in v] if isinstance(v, list | tuple) and len(v) == 2 and all(_number(x) for x in v) else None


LOAD_COVERS = (
    "AI Hub's first (cold) load on the device (first_load_time): the model loaded and prepared for the compute"
    " unit, on-device compilation included where the runtime compiles"
)


def _memory(summary: dict) -> dict | None:
    """A profile's memory, as AI Hub reports it per stage: ``bytes`` (what tables show) is the inference peak."""
    peak = _number(summary.get("estimated_inference_peak_memory"))
    if peak is None and _number(summary.get("first_load_peak_memory")) is None:
        return None
    out = {
        "what": "AI Hub's estimated peak memory during inference on the device (estimated_inference_peak_memory)",
        "bytes": peak,
        "load_bytes": _number(summary.get("first_load_peak_memory")),
        "source": "Qualcomm AI Hub profile (execution_summary)",
    }
    for stage in ("first_load", "warm_load", "compile", "inference"):
        for kind in ("increase", "peak"):
            if r := _range(summary.get(f"{stage}_memory_{kind}_range")):
                out[f"{stage}_{kind}_range_bytes"] = r
    for stage in ("warm_load", "compile"):
        if (v := _number(summary.get(f"{stage}_peak_memory"))) is not None:
            out[f"{stage}_peak_bytes"] = v
    return out


def _env(job, target: Target, options: str, profile: dict) -> dict:
    summary = profile["execution_summary"]
    peak = summary.get("estimated_inference_peak_memory")
    env = {
        "service": "Qualcomm AI Hub",
        "device": {"model": target.remote_name, "service": "Qualcomm AI Hub"},
        "aihub_job_id": job.job_id,
        "aihub_job_url": getattr(job, "url", None),
        "aihub_model_id": getattr(getattr(job, "model", None), "model_id", None),
        "hub_version": getattr(job, "hub_version", None),
        "options": options,
        "runtime": AIHub.runtime_names[target.backend],
        "aihub_inference_ms": summary["estimated_inference_time"] / 1000,
        "peak_memory_bytes": peak if isinstance(peak, int) else None,
        "peak_memory_range_bytes": summary.get("inference_memory_peak_range"),
        "load_covers": LOAD_COVERS,
    }
    for stage in ("warm_load", "compile"):  # µs in the profile; "first_load" is the row's load time
        if (v := _number(summary.get(f"{stage}_time"))) is not None:
            env[f"aihub_{stage}_ms"] = v / 1000
    if (memory := _memory(summary)) is not None:
        env["memory"] = memory
    if profile.get("tool_versions"):  # runtime versions, where the service reports them
        env["tool_versions"] = profile["tool_versions"]
    return env


def _delegate(profile: dict, target: Target) -> dict:
    """Which compute unit ran each layer: the counts, and the layers that fell back from the unit asked for."""
    layers = profile.get("execution_detail") or []
    units = Counter(x.get("compute_unit", "?") for x in layers)
    asked = AIHub.compute_unit[target.processor].upper()
    fell_back = [f"{x.get('name', '?')} ({x.get('type', '?')})" for x in layers if x.get("compute_unit") != asked]
    return {
        "compute_units": dict(units),
        "layers": len(layers),
        "asked": asked,
        "fallback_layers": fell_back,
        "fallback_share": round(len(fell_back) / len(layers), 4) if layers else None,
    }


register(AIHub())
