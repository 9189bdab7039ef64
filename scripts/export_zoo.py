"""Export every zoo model at its default resolution to each format and write docs/exports.md.

    .venv/bin/python scripts/export_zoo.py [--out /tmp/zoo-artifacts] [--models a,b] [--jobs onnx:fp32,...]

Long (about an hour on 2 cores): not part of the test suite. Rows append to a JSON-lines log as they finish, so
an interrupted run resumes where it stopped (the exporters' cache reuses finished artifacts too).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from deploykit.errors import DeploykitError
from deploykit.exporters.pipeline import ExportRequest, export
from deploykit.zoo import list_models

JOBS = ["onnx:fp32", "tflite:fp32", "tflite:int8", "tflite:int8-edgetpu", "coreml:fp16"]


def run(models, jobs, out: Path, log: Path) -> None:
    done = {(r["model"], r["job"]) for r in map(json.loads, log.read_text().splitlines())} if log.exists() else set()
    for name in models:
        for job in jobs:
            if (name, job) in done:
                continue
            fmt, precision = job.split(":")
            t = time.time()
            row = {"model": name, "job": job}
            try:
                r = export(ExportRequest(name, fmt, precision, out=out, calibration_samples=16, verify_samples=8))
                m = r.manifest
            except DeploykitError as e:
                from deploykit.artifact import read_manifest
                from deploykit.exporters.base import artifact_name
                from deploykit.zoo import get_spec

                spec = get_spec(name)
                m = read_manifest(out / artifact_name(name, spec.resolution, fmt, precision))
                row["error"] = str(e)
            if m is not None:
                row.update(
                    status=m.status,
                    fidelity=m.fidelity,
                    ops=m.ops,
                    compat={
                        k: {"summary": v["summary"], "findings": v["findings"][:60]} for k, v in m.compatibility.items()
                    },
                    size=m.size_bytes,
                    notes=m.notes,
                    options={k: v for k, v in m.options.items() if k in ("cleanup", "opset")},
                )
            row["seconds"] = round(time.time() - t, 1)
            with log.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(name, job, row.get("status"), row.get("error", ""), row["seconds"], flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="/tmp/zoo-artifacts")
    ap.add_argument("--models", default=None)
    ap.add_argument("--jobs", default=",".join(JOBS))
    ap.add_argument("--log", default="docs/exports.jsonl")
    a = ap.parse_args()
    models = a.models.split(",") if a.models else [s.name for s in list_models()]
    run(models, a.jobs.split(","), Path(a.out), Path(a.log))
