"""The child-process side of host benchmarks: load one artifact on one backend and time invocations.

Reads a JSON job on stdin: ``{"backend", "path", "threads", "warmup", "repetitions", "runs", "budget_s",
"input": {"shape", "dtype"}, "affinity": [cpus] | null}``; prints ``{"samples": [[ms, ...], ...], "env": {...}}``.
Each invocation is timed alone with ``perf_counter_ns`` (overhead ~0.1 µs), so per-sample statistics exist.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

from deploykit.measurement import time_invocations


def main() -> None:
    job = json.load(sys.stdin)
    if job.get("affinity"):
        os.sched_setaffinity(0, job["affinity"])
    invoke, env = load(job)
    reps = time_invocations(invoke, job["warmup"], job["repetitions"], job["runs"], job.get("budget_s"))
    env["affinity"] = sorted(os.sched_getaffinity(0))
    print(json.dumps({"samples": reps, "env": env}))


def load(job: dict):
    backend, path, threads = job["backend"], job["path"], job["threads"]
    shape, dtype = job["input"]["shape"], job["input"]["dtype"]
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * (20 if dtype.startswith("int") else 1)).astype(dtype)
    if backend == "litert-xnnpack":
        from importlib.metadata import version

        from ai_edge_litert.interpreter import Interpreter

        it = Interpreter(model_path=path, num_threads=threads)
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], x)
        return it.invoke, {
            "runtime": "ai-edge-litert " + version("ai-edge-litert"),
            "threads": threads,
            "delegate": "XNNPACK",
        }
    if backend == "onnxruntime":
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        providers = job.get("providers") or ["CPUExecutionProvider"]
        sess = ort.InferenceSession(path, so, providers=providers)
        name = sess.get_inputs()[0].name
        env = {
            "runtime": "onnxruntime " + ort.__version__,
            "threads": threads,
            "graph_optimization_level": "ORT_ENABLE_ALL",
            "providers": sess.get_providers(),
        }
        return (lambda: sess.run(None, {name: x})), env
    if backend == "pytorch":
        import torch

        torch.set_num_threads(threads)
        from deploykit.zoo import get_spec

        model = get_spec(job["model"]).build()
        if hasattr(model, "reparameterize"):
            model.reparameterize()
        t = torch.from_numpy(x)

        def run():
            with torch.inference_mode():
                model(t)

        return run, {"runtime": "torch " + torch.__version__, "threads": threads, "mode": "eager, inference_mode"}
    raise SystemExit(f"unknown backend {backend}")


if __name__ == "__main__":
    main()
