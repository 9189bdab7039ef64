"""The sweep: its plan is plain data, a run resumes where it stopped, and its summary has one shape for every
executor (the Ray executor's cluster tests are in test_farm.py)."""

from __future__ import annotations

import json
from pathlib import Path

from deploykit.store import Store
from deploykit.sweep import SweepSummary
from tests.conftest import invoke


def test_the_summary_json_is_flat_and_the_same_for_every_executor():
    counts = {"ok": 3, "failed": 1, "unsupported": 0, "device-unavailable": 0, "noisy": 1}
    cell = {"model": "m", "target": "t", "error": "x"}
    s = SweepSummary(jobs=5, skipped=1, ran=4, counts=counts, failed_cells=[cell])
    assert list(s.to_dict()) == ["jobs", "skipped", "ran", *counts, "failed_cells"]  # the shape --json always had
    assert s.count("ok") == 3 and s.count("no such status") == 0
    s.exports, s.report = {"exported": 1, "reused": 0, "reused_from_cache": 0}, "r.html"
    assert s.to_dict()["exports"]["exported"] == 1 and s.to_dict()["report"] == "r.html"


def test_sweep_is_resumable_and_serialisable(tmp_path):
    db = tmp_path / "s.db"
    plan = invoke("sweep", "--models", "mnv4_conv_s,mnv2_100", "--devices", "pixel7,s23", "--plan")
    assert plan.returncode == 0, plan.stderr
    jobs = json.loads(plan.stdout)
    assert jobs and all(j["mode"] == "estimate" for j in jobs)
    from deploykit.sweep import Job

    assert [Job.from_dict(j).to_dict() for j in jobs] == jobs
    first = invoke(
        "sweep",
        "--models",
        "mnv4_conv_s,mnv2_100",
        "--devices",
        "pixel7,s23",
        "--db",
        str(db),
        "--json",
        "--report",
        str(tmp_path / "r.html"),
    )
    assert first.returncode == 0, first.stderr
    a = json.loads(first.stdout)
    assert a["ran"] == len(jobs) and a["skipped"] == 0 and Path(a["report"]).exists()
    again = json.loads(
        invoke("sweep", "--models", "mnv4_conv_s,mnv2_100", "--devices", "pixel7,s23", "--db", str(db), "--json").stdout
    )
    assert again["ran"] == 0 and again["skipped"] == len(jobs)
    with Store(db) as s:
        provs = {r.provenance for r in s.query()}
    assert provs == {"estimated", "published"}
