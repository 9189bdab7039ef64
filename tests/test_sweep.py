"""The sweep's serial executor: its exports made ahead, in parallel, before any benchmark runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploykit.artifact import read_manifest
from deploykit.measurement import Method
from deploykit.sweep import Job, SweepOptions, run_sweep

FAST = Method(warmup=1, repetitions=1, runs=3)
JOBS = [Job(m, "host", "host/onnxruntime/fp32", "measure") for m in ("mnv1_025", "mnv1_050")]


@pytest.mark.slow
def test_exports_made_ahead_in_two_processes_are_converted_verified_and_counted(tmp_path):
    """Two files, two worker processes: each file is written with its verified manifest before the serial pass,
    which reuses it; the summary counts them as converted now (not as reused from an earlier run)."""
    opts = SweepOptions(db=tmp_path / "r.db", out=tmp_path / "art", method=FAST, export_workers=2)
    summary = run_sweep(JOBS, opts)
    assert summary["ok"] == 2 and summary["exports"] == {"exported": 2, "reused": 0, "reused_from_cache": 0}
    for name in ("mnv1_025", "mnv1_050"):
        assert read_manifest(tmp_path / "art" / f"{name}-224-onnx-fp32.onnx").status == "verified"


def test_one_export_worker_exports_as_each_cell_runs(tmp_path, monkeypatch):
    from deploykit.exporters import parallel

    def no_pool(*_a, **_k):
        raise AssertionError("no worker processes with --export-workers 1")

    monkeypatch.setattr(parallel, "export_all", no_pool)
    opts = SweepOptions(db=tmp_path / "r.db", out=tmp_path / "art", method=FAST, export_workers=1)
    summary = run_sweep(JOBS[:1], opts)
    assert summary["ok"] == 1 and summary["exports"]["exported"] == 1
    assert Path(tmp_path / "art" / "mnv1_025-224-onnx-fp32.onnx").is_file()
