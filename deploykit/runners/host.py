"""Host runner: LiteRT+XNNPACK, ONNX Runtime or PyTorch on this machine, in a child process."""

from __future__ import annotations

from dataclasses import dataclass

from ..artifact import Manifest
from ..devices import Target, host_info
from ..measurement import Measurement, summarize
from .harness import run_child


@dataclass
class Method:
    """Warm-up, then ``repetitions`` × ``runs`` invocations (DESIGN.md); ``budget_s`` caps each target's time."""

    warmup: int = 50
    repetitions: int = 5
    runs: int = 1000
    budget_s: float | None = None
    timeout_s: float = 900


def run_host(
    target: Target, artifact: str | None, manifest: Manifest | None, model: str, resolution: int, method: Method
) -> Measurement:
    shape, dtype = _input(target, manifest, resolution)
    job = {
        "backend": target.backend,
        "path": artifact,
        "model": model,
        "threads": target.threads,
        "warmup": method.warmup,
        "repetitions": method.repetitions,
        "runs": method.runs,
        "budget_s": method.budget_s,
        "input": {"shape": shape, "dtype": dtype},
        "affinity": _affinity(target.affinity),
    }
    result, error = run_child(job, method.timeout_s)
    info = host_info()
    m = Measurement.for_target(
        target,
        model,
        resolution,
        artifact=artifact,
        artifact_sha256=manifest.sha256 if manifest else None,
        env={**info, "method": {k: v for k, v in job.items() if k in ("warmup", "repetitions", "runs", "budget_s")}},
    )
    if error:
        m.status, m.error = "failed", error
        return m
    m.env.update(result["env"])
    m.stats = summarize(result["samples"])
    m.median_ms = m.stats["median_of_means"]
    m.samples_ms = [x for rep in result["samples"] for x in rep]
    m.delegate = {"delegate": result["env"].get("delegate") or result["env"].get("providers")}
    return m


def _input(target: Target, manifest: Manifest | None, resolution: int) -> tuple[list[int], str]:
    if manifest is None:  # pytorch: the model itself
        return [1, 3, resolution, resolution], "float32"
    spec = manifest.inputs[0]
    return list(spec.shape), spec.dtype


def _affinity(mask: str | None) -> list[int] | None:
    """A hex CPU mask as in ``taskset`` ("f0" = CPUs 4–7) → a CPU list; ``None`` leaves affinity alone."""
    if not mask:
        return None
    bits = int(mask, 16)
    return [i for i in range(bits.bit_length()) if bits >> i & 1]
