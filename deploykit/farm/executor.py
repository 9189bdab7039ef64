"""The Ray executor: a sweep's jobs as Ray tasks, results stored by the driver alone as they stream back.

- Each measured job's artifact is exported once by a CPU task (one per model × format × precision, shared by
  every device that needs it); the file travels through Ray's object store as bytes (a package folder such as
  ``.mlpackage`` as a tar archive) and the bench task installs it into its host's export cache, where the
  exporters' own cache check (same deploykit, same exporters: the join refuses other versions) reuses it.
- A bench task needs the resource of exactly one physical device (``adb:SERIAL``: capacity 1, so two benchmarks
  never share a phone); a benchmark on a host's own CPU or an in-process accelerator (a backend that does not
  time itself remotely: LiteRT, ONNX Runtime, Core ML, Coral) also reserves every CPU of that node, so no export
  runs beside it. Jobs of hosted backends (``hosted = True``: AI Hub) need no device resource.
- Estimates are cheap and run on the driver.
- Faults: exports are retried by Ray on another node when theirs is lost (``EXPORT_RETRIES``) but a conversion
  error is a result, never retried; a bench job whose device is gone from the cluster for longer than
  ``grace_s`` is cancelled and stored ``device-unavailable`` (Ray would leave it pending forever); a transient
  device error (the backend's ``transient()``: an adb disconnect) is retried up to ``device_retries`` times on
  the device's host; Ctrl-C cancels what is in flight and keeps every stored row.
- Only module-level functions and plain data (dicts of str/float/bytes) cross the wire; a task never raises on
  purpose (errors come back as strings), so nothing custom has to unpickle on the driver.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import DeploykitError
from ..events import Listener
from ..measurement import STATUSES, LatencyStats, Measurement, Method
from ..sweep import Job, SweepOptions, SweepSummary, finished, measure_job, run_job, summary, target_of
from .connection import DEFAULT_TIMEOUT_S, FarmUnreachable, ask, probe
from .resources import cluster_devices, matching, split_resource

EXPORT_RETRIES = 2  # an export whose node died runs again elsewhere, at most this many times
BENCH_RETRIES = 3  # a bench task whose node died is resubmitted (it waits for its device to come back)
DEVICE_RETRIES = 2  # a transient device error (adb disconnect): the bench job runs again this many times
GRACE_S = 60.0  # a device gone from the cluster this long: its jobs are cancelled, stored device-unavailable
INFLIGHT_KEY = b"deploykit/inflight"  # the driver's jobs in flight, in the cluster's KV store (farm status)
UNAVAILABLE = "device-unavailable"


@dataclass
class FarmOptions:
    address: str | None = None  # HEAD:PORT; None starts a one-node Ray on this host (or uses ray.init's)
    grace_s: float = GRACE_S
    device_retries: int = DEVICE_RETRIES
    poll_s: float = 0.5
    temp_dir: str | None = None  # Ray's session folder for a local Ray (keep it short: unix socket paths)
    timeout_s: float = DEFAULT_TIMEOUT_S  # to reach the head at `address` and hear back


class FarmError(Exception):
    """Raised on the driver only; a plain message (it would unpickle if it ever crossed the wire)."""


def _ray():
    try:
        import ray
    except ImportError:
        raise DeploykitError(
            "--executor ray needs Ray", hint="pip install 'deploykit[ray]' on every host of the farm"
        ) from None
    return ray


# ---------- plain data across the wire ----------


def options_to_dict(opts: SweepOptions) -> dict:
    return {
        "db": str(opts.db),
        "out": str(Path(opts.out).resolve()),  # a worker's cwd is not the driver's
        "profiles": str(Path(opts.profiles).resolve()) if opts.profiles else None,
        "method": opts.method.to_dict(),
        "retry_failed": opts.retry_failed,
        "strict": opts.strict,
        "weights": opts.weights,
    }


def options_from_dict(d: dict) -> SweepOptions:
    return SweepOptions(
        db=Path(d["db"]),
        out=Path(d["out"]),
        profiles=Path(d["profiles"]) if d["profiles"] else None,
        method=Method(**d["method"]),
        retry_failed=d["retry_failed"],
        strict=d["strict"],
        weights=d["weights"],
    )


def measurement_from_dict(d: dict) -> Measurement:
    d = dict(d)
    d.pop("cost", None)  # derived from stats and env (Measurement.cost())
    stats = LatencyStats.from_dict(d.pop("stats") or None)
    m = Measurement(**d)
    m.stats = stats
    return m


def pack(path: Path) -> dict:
    """A file (or a package folder, as a tar archive) as bytes, with its manifest."""
    from ..artifact import manifest_path

    if path.is_dir():
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            tar.add(path, arcname=path.name)
        blob, kind = buf.getvalue(), "archive"
    else:
        blob, kind = path.read_bytes(), "file"
    return {"name": path.name, "kind": kind, "blob": blob, "manifest": manifest_path(path).read_text()}


def install(artifact: dict, out: Path) -> Path:
    """Put an artifact from another host into this host's export cache (atomically; a file already there with
    the same sha256 is kept), so the exporters' cache check finds it."""
    from ..artifact import Manifest, atomic_write_text, file_sha256, manifest_path

    out.mkdir(parents=True, exist_ok=True)
    path = out / artifact["name"]
    sha = Manifest.from_dict(json.loads(artifact["manifest"])).sha256
    if not (path.exists() and file_sha256(path) == sha):
        tmp = out / f".{artifact['name']}.{os.getpid()}.farm"
        shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)
        try:
            if artifact["kind"] == "archive":
                tmp.mkdir()
                with tarfile.open(fileobj=io.BytesIO(artifact["blob"])) as tar:
                    tar.extractall(tmp, filter="data")
                shutil.rmtree(path, ignore_errors=True)
                (tmp / artifact["name"]).rename(path)
            else:
                tmp.write_bytes(artifact["blob"])
                tmp.replace(path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)
    atomic_write_text(manifest_path(path), artifact["manifest"])
    return path


# ---------- task bodies: module-level, plain data in and out ----------


def export_task(job: dict, opts: dict) -> dict:
    """Export the artifact a measured job runs: ``pack()``'s dict, ``{"name": None}`` for a format without a
    file, or ``{"error": …}`` (a conversion error is a result: never retried)."""
    from ..bench import artifact_for
    from ..sweep import bench_request

    j, o = Job.from_dict(job), options_from_dict(opts)
    try:
        art = artifact_for(bench_request(j, o), j.model, target_of(j, o.profiles))
    except DeploykitError as e:
        return {"error": f"export failed: {e}"}
    except Exception as e:  # a converter's own exception: one line, as the serial path words it
        return {"error": f"export failed: {type(e).__name__}: {' '.join(str(e).split())[:300]}"}
    return {"name": None} if art.path is None else pack(art.path)


def bench_task(job: dict, opts: dict, device_id: str | None, artifact: dict, retries: int) -> dict:
    """Measure one job on the device ``device_id`` of this host; the Measurement and manifest as dicts, with
    where and when it ran (``env["farm"]``)."""
    from ..devices import backend_of

    j, o = Job.from_dict(job), options_from_dict(opts)
    started = time.time()
    target = target_of(j, o.profiles)
    attempts = 0
    if artifact.get("error"):  # the export failed: the row the serial executor stores, without the device
        m, manifest = Measurement.for_target(target, j.model, 0, status="failed"), None
        m.error = artifact["error"]
    else:
        exported = None
        if artifact.get("name"):
            from ..artifact import read_manifest
            from ..backends.base import Artifact

            path = install(artifact, o.out)
            manifest = read_manifest(path)
            exported = Artifact(manifest.model["name"], manifest.model["resolution"], path, manifest)
        plugin = backend_of(target)
        while True:
            attempts += 1
            m, manifest = measure_job(j, o, serial=device_id, artifact=exported)
            transient = getattr(plugin, "transient", lambda _e: False)
            if m.status != "failed" or attempts > retries or not transient(m.error or ""):
                break
            time.sleep(min(2.0 * attempts, 10.0))
    m.env["farm"] = {
        "host": socket.gethostname(),
        "node": _node_id(),
        "device": device_id,
        "started": started,
        "ended": time.time(),
        "attempts": attempts,
    }
    return {"measurement": m.to_dict(), "manifest": manifest.to_dict() if manifest else None}


def _node_id() -> str | None:
    import sys

    ray = sys.modules.get("ray")  # inside a Ray worker; never start a Ray to ask (get_runtime_context would)
    if ray is None or not ray.is_initialized():
        return None
    return ray.get_runtime_context().get_node_id()


# ---------- the driver ----------


def connect(farm: FarmOptions) -> bool:
    """Connect to the cluster (or start a one-node Ray with this host's devices); True when we started it."""
    ray = _ray()
    if ray.is_initialized():
        return False
    import logging

    if farm.address:
        probe(farm.address, farm.timeout_s)  # nothing listening: one line now, not Ray retrying for minutes
        try:
            ray.init(address=farm.address, logging_level=logging.ERROR, log_to_driver=False)
        except Exception as e:  # unreachable head, bad token, Ray/Python version mismatch: Ray's own words
            raise FarmUnreachable(f"cannot join the farm at {farm.address}: {_one_line(e)}") from None
        return True
    from .resources import host_devices, node_resources
    from .token import private_local_token

    resources, labels = node_resources(host_devices())
    kwargs = {"_temp_dir": farm.temp_dir} if farm.temp_dir else {}
    private_local_token()  # else Ray writes ~/.ray/auth_token itself, readable by everyone
    ray.init(
        resources=resources,
        labels=labels,
        include_dashboard=False,
        logging_level=logging.ERROR,
        log_to_driver=False,
        **kwargs,
    )
    return True


def local_nodes() -> list[dict]:
    """The one node :func:`connect` would start on this host, as ``ray.nodes()`` would list it: what a plan
    against a local Ray sees, without starting one."""
    from .resources import host_devices, node_resources

    resources, labels = node_resources(host_devices())
    cpus = float(os.cpu_count() or 1)
    return [{"NodeID": "local", "Alive": True, "Resources": {"CPU": cpus, **resources}, "Labels": labels}]


def plan_nodes(farm: FarmOptions) -> list[dict]:
    """The nodes a sweep is planned against, starting nothing: the cluster at ``farm.address`` (asked in a
    bounded child process), or the node a local Ray would be."""
    if farm.address:
        return ask("nodes", farm.address, farm.timeout_s)
    return local_nodes()


def _one_line(e: BaseException) -> str:
    lines = [x.strip() for x in str(e).splitlines() if x.strip()]
    return (lines[-1] if lines else type(e).__name__)[:300]


def cluster_reach(local=None, nodes: list[dict] | None = None):
    """``plan_sweep``'s ``reach`` for ``nodes`` (as ``ray.nodes()`` lists them; default: the connected cluster's)."""
    from .resources import cluster_reach as reach_in

    return reach_in(cluster_devices(_ray().nodes() if nodes is None else nodes), local)


@dataclass
class _Bench:
    job: Job
    device: str | None  # the Ray resource it holds, None for hosted jobs
    ref: object


def run_sweep_ray(
    jobs: list[Job], opts: SweepOptions, listener: Listener | None = None, farm: FarmOptions | None = None
) -> SweepSummary:
    """Run what is not finished on the cluster; the same summary as :func:`deploykit.sweep.run_sweep`."""
    ray = _ray()
    farm = farm or FarmOptions()
    listener = listener or Listener()
    skip = finished(jobs, opts.db, opts.retry_failed, opts.label)
    todo = [j for j in jobs if j not in skip]
    listener.planned(len(todo), skipped=len(skip), title="sweep (ray)")
    counts = dict.fromkeys(STATUSES, 0)
    started_here = connect(farm)
    try:
        _drive(ray, todo, opts, listener, farm, counts)
    finally:
        if started_here:
            ray.shutdown()
    return summary(jobs, opts, skip, todo, counts)


def _drive(ray, todo: list[Job], opts: SweepOptions, listener: Listener, farm: FarmOptions, counts: dict) -> None:
    from ..devices import backend_of, get_profile
    from ..store import Store

    wire = options_to_dict(opts)
    export_remote = ray.remote(num_cpus=1, max_retries=EXPORT_RETRIES, retry_exceptions=False)(export_task)
    bench_remote = ray.remote(max_retries=BENCH_RETRIES, retry_exceptions=False)(bench_task)
    devices = cluster_devices(ray.nodes())
    exports: dict[tuple, object] = {}
    pending: dict[object, _Bench] = {}
    turn: dict[str, int] = {}
    for job in todo:
        if job.mode != "measure":
            continue
        target = target_of(job, opts.profiles)
        plugin = backend_of(target)
        key = (job.model, target.format, target.export_precision)
        if key not in exports:
            exports[key] = export_remote.remote(job.to_dict(), wire)
        options: dict = {"num_cpus": 0}
        device = device_id = None
        if not getattr(plugin, "hosted", False):
            candidates = matching(devices, get_profile(job.device, opts.profiles))
            if not candidates:
                raise DeploykitError(f"no device of the cluster matches {job.device} any more; plan the sweep again")
            n = turn.get(job.device, 0)  # several phones of one profile: jobs take turns
            turn[job.device] = n + 1
            device = candidates[n % len(candidates)]
            device_id = split_resource(device)[1]
            options["resources"] = {device: 1}
            if not plugin.remote:  # measured on the host's own CPU (or an in-process accelerator): the whole node
                options["num_cpus"] = devices[device]["cpus"]
        ref = bench_remote.options(**options).remote(job.to_dict(), wire, device_id, exports[key], farm.device_retries)
        pending[ref] = _Bench(job, device, ref)
        listener.started(f"measure {job.model} on {job.target}" + (f" ({device})" if device else ""))
    _publish(ray, pending)
    try:
        for job in todo:  # estimates: cheap, on the driver, while the cluster works
            if job.mode != "measure":
                listener.started(f"estimate {job.model} on {job.target}")
                _count(counts, run_job(job, opts), listener)
        missing_since: dict[str, float] = {}
        with Store(opts.db) as store:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=farm.poll_s)
                for ref in ready:
                    b = pending.pop(ref)
                    m, manifest = _result(ray, ref, b, opts)
                    store.add(m, manifest)
                    _publish(ray, pending)
                    _count(counts, m, listener)
                _expire(ray, pending, missing_since, farm, opts, store, counts, listener)
    except KeyboardInterrupt:
        for ref in list(pending) + list(exports.values()):
            ray.cancel(ref, force=True)
        raise
    finally:
        _publish(ray, {})


def _result(ray, ref, b: _Bench, opts: SweepOptions):
    from ..artifact import Manifest

    try:
        out = ray.get(ref)
    except Exception as e:  # the task itself died (its worker crashed, retries spent): a failed row
        m = Measurement.for_target(target_of(b.job, opts.profiles), b.job.model, 0, status="failed")
        m.error = f"farm: {_one_line(e)}"
        return m, None
    manifest = Manifest.from_dict(out["manifest"]) if out["manifest"] else None
    return measurement_from_dict(out["measurement"]), manifest


def _expire(ray, pending: dict, missing_since: dict, farm: FarmOptions, opts, store, counts, listener) -> None:
    """Jobs whose device has been gone from the cluster longer than the grace period: cancelled, stored
    ``device-unavailable`` (Ray itself would keep them pending until the device comes back)."""
    waiting = {b.device for b in pending.values() if b.device}
    if not waiting:
        return
    present = set(ray.cluster_resources())
    now = time.monotonic()
    for device in waiting:
        if device in present:
            missing_since.pop(device, None)
        else:
            missing_since.setdefault(device, now)
    gone = {d for d, t in missing_since.items() if now - t >= farm.grace_s}
    for ref, b in list(pending.items()):
        if b.device in gone:
            ray.cancel(ref, force=True)
            del pending[ref]
            m = Measurement.for_target(target_of(b.job, opts.profiles), b.job.model, 0, status=UNAVAILABLE)
            m.error = f"{b.device} left the cluster for more than {farm.grace_s:g} s"
            store.add(m)
            _count(counts, m, listener)
    if gone:
        _publish(ray, pending)


def _count(counts: dict, m: Measurement, listener: Listener) -> None:
    counts[m.status] += 1
    if m.quality == "noisy":
        counts["noisy"] = counts.get("noisy", 0) + 1
    listener.finished(m)


def _publish(ray, pending: dict) -> None:
    """The jobs in flight, for ``deploykit farm status`` (the cluster's KV store; best effort)."""
    try:
        from ray.experimental.internal_kv import _internal_kv_put

        rows = [{"model": b.job.model, "target": b.job.target, "device": b.device} for b in pending.values()]
        _internal_kv_put(INFLIGHT_KEY, json.dumps({"driver": socket.gethostname(), "jobs": rows}), overwrite=True)
    except Exception:
        pass
