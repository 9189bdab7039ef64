"""A stand-in for Qualcomm AI Hub's client (``qai_hub``), for tests: no network, the service simulated in a
JSON state file, the client's public types and fields as the real one defines them.

Read from qai-hub 0.56.0 (``qai_hub/client.py``, ``qai_hub/api_utils.py``) and its API documentation
(https://workbench.aihub.qualcomm.com/docs/hub/api.html): ``Device(name, os, attributes)``; ``upload_model``
→ ``Model`` (``model_id``); ``get_model``; ``submit_profile_job(model, device, name, options)`` → ``ProfileJob``
(``job_id``, ``url``, ``hub_version``, ``device``, ``model``, ``get_status()``, ``wait()``,
``download_profile()``); ``submit_compile_job(model, device, name, options)`` → ``CompileJob`` (the same status
methods, ``get_target_model()``); ``get_job`` (either kind); ``JobStatus`` (``state``: ``JobStatus.State``, ``message``, ``code``,
``finished``, ``success``, ``failure``); the profile dict's ``execution_summary`` (µs, bytes) and
``execution_detail`` (per layer ``name``, ``type``, ``compute_unit``); the exceptions ``Error``, ``UserError``
(a bad token: "Failed to authenticate." in a boxed message; an unknown id), ``InternalError`` (service
unreachable), ``RateLimitedError``; the token read from ``$QAIHUB_CLIENT_INI`` or ``~/.qai_hub/client.ini``.

The simulated service, per ``$FAKE_QAIHUB_STATE`` (a folder): ``scenario.json`` (written by the test) says
``polls`` (status checks before a job finishes), ``fail_devices`` (device names whose profile jobs fail),
``fail_compile_devices`` (whose compile jobs fail),
``revoked`` (tokens the service refuses), ``unreachable`` / ``quota`` (every call fails so), ``never_finish``,
``execution_detail`` (the layers a profile returns, instead of ten made-up ones);
``state.json`` holds uploaded models and submitted jobs, so separate processes (a run, then its re-run) see
one service, and tests count ``submissions`` and ``uploads``.
"""

from __future__ import annotations

import configparser
import fcntl
import hashlib
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

__version__ = "0.56.0+fake"


class Error(Exception):
    def __init__(self, message):
        super().__init__(message)


class InternalError(Error):
    pass


class UserError(Error):
    pass


class RateLimitedError(Error):
    pass


def _box(text: str) -> str:  # the client frames user-facing messages (client.py:_visible_textbox)
    return "\n┌" + "─" * 68 + "┐\n| " + text.ljust(66) + " |\n└" + "─" * 68 + "┘"


@dataclass
class Device:
    name: str = ""
    os: str = ""
    attributes: str | list[str] = field(default_factory=list)


class JobStatus:
    class State(Enum):
        SUCCESS = 3
        FAILED = 4
        CREATED = 1
        PROVISIONING_DEVICE = 7
        MEASURING_PERFORMANCE = 8

    def __init__(self, state: JobStatus.State, message: str | None = None):
        self.state, self.message = state, message

    @property
    def code(self) -> str:
        return self.state.name

    @property
    def success(self) -> bool:
        return self.state == JobStatus.State.SUCCESS

    @property
    def failure(self) -> bool:
        return self.state == JobStatus.State.FAILED

    @property
    def finished(self) -> bool:
        return self.state in (JobStatus.State.SUCCESS, JobStatus.State.FAILED)


class Model:
    def __init__(self, model_id: str, name: str):
        self.model_id, self.name = model_id, name


# ---------- the simulated service ----------


def _dir() -> Path:
    return Path(os.environ["FAKE_QAIHUB_STATE"])


def _scenario() -> dict:
    p = _dir() / "scenario.json"
    return json.loads(p.read_text()) if p.exists() else {}


@contextmanager
def _state():
    """The service's state, locked across threads and processes for the duration of one call."""
    _dir().mkdir(parents=True, exist_ok=True)
    with open(_dir() / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        p = _dir() / "state.json"
        state = json.loads(p.read_text()) if p.exists() else {"models": {}, "jobs": {}, "submissions": 0, "uploads": 0}
        yield state
        tmp = p.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, p)  # readers (the tests) never see half a file


def _call() -> None:
    """What every API call checks first, as the real client's session does: the service, then the token."""
    sc = _scenario()
    if sc.get("unreachable"):
        raise InternalError("Internal API failure." + _box("Could not connect to Qualcomm AI Hub."))
    if sc.get("quota"):
        raise RateLimitedError("You have reached the maximum number of jobs.")
    path = os.path.expanduser(os.environ.get("QAIHUB_CLIENT_INI", "~/.qai_hub/client.ini"))
    config = configparser.ConfigParser()
    config.read(path)
    token = config.get("api", "api_token", fallback="")
    if not token:
        raise UserError("Failed to load configuration file." + _box("Your API token is missing."))
    if token in sc.get("revoked", []):
        raise UserError(
            "Failed to authenticate." + _box("Failure to authenticate is likely caused by a bad or expired API token.")
        )


def upload_model(model, name: str | None = None) -> Model:
    _call()
    data = Path(model).read_bytes()
    with _state() as s:
        s["uploads"] += 1
        model_id = "m" + hashlib.sha256(data).hexdigest()[:8]
        s["models"][model_id] = {"name": name or Path(model).name, "size": len(data), "suffix": Path(model).suffix}
    return Model(model_id, name or Path(model).name)


def get_model(model_id: str) -> Model:
    _call()
    with _state() as s:
        if model_id not in s["models"]:
            raise UserError(f"Model ID '{model_id}' could not be found.")
        return Model(model_id, s["models"][model_id]["name"])


class Job:
    """What profile and compile jobs share: an id, a status that finishes after the scenario's polls."""

    failure_message = "Failed to profile the model: QNN delegate rejected op RESHAPE"
    fail_key = "fail_devices"

    def __init__(self, job_id: str, record: dict):
        self.job_id = job_id
        self.name = record["name"]
        self.options = record["options"]
        self.device = Device(record["device"])
        self.model = Model(record["model_id"], record["model_id"])
        self.hub_version = "aihub-fake-2026.11"
        self.url = f"https://workbench.aihub.qualcomm.com/jobs/{job_id}/"

    def get_status(self) -> JobStatus:
        _call()
        sc = _scenario()
        with _state() as s:
            job = s["jobs"][self.job_id]
            job["polls"] += 1
            if sc.get("never_finish") or job["polls"] <= sc.get("polls", 1):
                return JobStatus(JobStatus.State.MEASURING_PERFORMANCE)
            job["done"] = True
            if job["device"] in sc.get(self.fail_key, []):
                return JobStatus(JobStatus.State.FAILED, self.failure_message)
            return JobStatus(JobStatus.State.SUCCESS)

    def wait(self, timeout: int | None = None) -> JobStatus:
        status = self.get_status()
        while not status.finished and not _scenario().get("never_finish"):
            status = self.get_status()
        return status


class ProfileJob(Job):
    def download_profile(self) -> dict:
        _call()
        with _state() as s:
            job = s["jobs"][self.job_id]
            model = s["models"][job["model_id"]]
        opts = job["options"].split()
        unit = opts[opts.index("--compute_unit") + 1].upper() if "--compute_unit" in opts else "NPU"
        # A deterministic latency from the file and unit: enough to tell rows apart, never a real phone's figure.
        base = 200 + model["size"] // 5000 + {"CPU": 900, "GPU": 300, "NPU": 50}[unit]
        times = [base + (i % 7) * 3 for i in range(100)]
        layers = [
            {"name": f"layer_{i}", "type": "Conv2d", "compute_unit": unit, "execution_time": 5} for i in range(10)
        ]
        if unit != "CPU":
            layers[-1] = {"name": "layer_9", "type": "Softmax", "compute_unit": "CPU", "execution_time": 9}
        if "execution_detail" in _scenario():  # a test's own layers (a real model's names), on the unit asked
            layers = [{**x, "compute_unit": x.get("compute_unit") or unit} for x in _scenario()["execution_detail"]]
        times[0] = base * 4  # the first iteration is the cold one
        # Every stage's keys as the 0.56 client's _profile_pb_to_python_dict writes them (profile format 1.2: times
        # in µs, memory in bytes, ranges as (lower, upper)); compile is not measured for a .tflite (None)
        return {
            "execution_summary": {
                "estimated_inference_time": sorted(times)[len(times) // 2],
                "estimated_inference_peak_memory": 12_345_678,
                "first_load_time": 80_000,
                "first_load_peak_memory": 40_000_000,
                "warm_load_time": 21_000,
                "warm_load_peak_memory": 30_000_000,
                "compile_time": None,
                "compile_peak_memory": None,
                "compile_memory_increase_range": None,
                "compile_memory_peak_range": None,
                "first_load_memory_increase_range": (20_000_000, 22_000_000),
                "first_load_memory_peak_range": (38_000_000, 40_000_000),
                "warm_load_memory_increase_range": (0, 1_000_000),
                "warm_load_memory_peak_range": (28_000_000, 30_000_000),
                "inference_memory_increase_range": (0, 2_000_000),
                "inference_memory_peak_range": (10_000_000, 12_345_678),
                "all_compile_times": [],
                "all_first_load_times": [80_000],
                "all_warm_load_times": [21_000],
                "all_inference_times": times,
            },
            "execution_detail": layers,
        }


def submit_profile_job(model, device, name=None, input_shapes=None, options="", retry=True, project=None):
    _call()
    with _state() as s:
        s["submissions"] += 1
        job_id = f"j{s['submissions']:04d}fake"
        s["jobs"][job_id] = {
            "name": name or "",
            "options": options,
            "device": device.name,
            "model_id": model.model_id,
            "polls": 0,
        }
        in_flight = sum(1 for j in s["jobs"].values() if not j.get("done"))
        s["max_in_flight"] = max(s.get("max_in_flight", 0), in_flight)
        record = s["jobs"][job_id]
    return ProfileJob(job_id, record)


class CompileJob(Job):
    """A compile job (``qai_hub.CompileJob``): the uploaded model compiled for a device and a target runtime
    (``--target_runtime qnn_dlc``); ``get_target_model()`` is the compiled model, None until it succeeded."""

    failure_message = "Failed to compile the model: QNN converter does not support op GridSample"
    fail_key = "fail_compile_devices"

    def get_target_model(self) -> Model | None:
        _call()
        with _state() as s:
            job = s["jobs"][self.job_id]
            if not job.get("done") or job["device"] in _scenario().get(self.fail_key, []):
                return None
            source = s["models"][job["model_id"]]
            target_id = "t" + hashlib.sha256(f"{job['model_id']}{self.job_id}".encode()).hexdigest()[:8]
            # a compiled model of its own size: its profile's deterministic latency differs from the source's
            s["models"][target_id] = {"name": source["name"] + ".dlc", "size": source["size"] // 2, "suffix": ".dlc"}
        return Model(target_id, source["name"] + ".dlc")


def submit_compile_job(
    model, device, name=None, input_specs=None, options="", single_compile=True, calibration_data=None, retry=True,
    project=None,
):  # fmt: skip
    _call()
    with _state() as s:
        s["submissions"] += 1
        s["compiles"] = s.get("compiles", 0) + 1
        job_id = f"j{s['submissions']:04d}fakec"
        s["jobs"][job_id] = {
            "kind": "compile",
            "name": name or "",
            "options": options,
            "device": device.name,
            "model_id": model.model_id,
            "polls": 0,
        }
        record = s["jobs"][job_id]
    return CompileJob(job_id, record)


def get_job(job_id: str) -> Job:
    _call()
    with _state() as s:
        if job_id not in s["jobs"]:
            raise UserError(f"Job ID '{job_id}' could not be found. It may not exist or you may not have permission.")
        record = s["jobs"][job_id]
    return (CompileJob if record.get("kind") == "compile" else ProfileJob)(job_id, record)
