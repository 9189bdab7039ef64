"""The results store: concurrent writers lose nothing, a newer schema is refused (the CLI's reading and importing
of it are in test_results.py; migrations of older databases in test_report.py)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from deploykit.errors import DeploykitError
from deploykit.measurement import LatencyStats, Measurement
from deploykit.store import SCHEMA_VERSION, Store

HERE = Path(__file__).parent


def _m(i):
    return Measurement(
        model=f"m{i}",
        resolution=224,
        format="tflite",
        precision="int8",
        target="host/x/int8",
        device="host",
        backend="x",
        median_ms=float(i),
        stats=LatencyStats.from_samples([[float(i)] * 3]),
        samples_ms=[float(i)] * 3,
    )


WRITER = """
import sys
from deploykit.store import Store
from tests.test_store import _m
with Store(sys.argv[1]) as s:
    for i in range(int(sys.argv[2]), int(sys.argv[2]) + 60):
        s.add(_m(i))
"""


def test_two_writers_lose_nothing(tmp_path):
    db = tmp_path / "c.db"
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(db), str(k * 1000)], cwd=HERE.parent) for k in range(2)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    with Store(db) as s:
        rows = s.query(samples=True)
        assert len(rows) == 120 and len({r.model for r in rows}) == 120
        assert rows[0].samples_ms == [rows[0].median_ms] * 3 and s.schema_version() == SCHEMA_VERSION
        assert rows[0].stats.n == 3 and isinstance(rows[0], Measurement)
    assert sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_newer_schema_is_refused(tmp_path):
    db = tmp_path / "n.db"
    Store(db).close()
    sqlite3.connect(db).execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(DeploykitError, match="newer than this deploykit"):
        Store(db)
