"""The AI Hub ledger: every model uploaded and every profile job submitted, written the moment the service
answers, so a bench or sweep that is interrupted (or times out waiting) collects the same job when run again
instead of paying for a new one.

One JSON object per line in ``<cache>/aihub-ledger.jsonl`` (:func:`deploykit.machine.cache_dir`); the last
line about a key wins. Appends are flushed and synced before the job is waited on; threads share one lock.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path

from ..machine import cache_dir

_lock = threading.Lock()


def path() -> Path:
    return cache_dir() / "aihub-ledger.jsonl"


def job_key(sha256: str, device: str, options: str) -> str:
    """One profile job per (file, device, options): the same file on the same device is never paid twice."""
    return hashlib.sha256(f"{sha256}\0{device}\0{options}".encode()).hexdigest()[:32]


def _entries() -> list[dict]:
    try:
        lines = path().read_text().splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut short by a crash mid-write: the entries before it still count
    return out


def _append(entry: dict) -> None:
    with _lock:
        path().parent.mkdir(parents=True, exist_ok=True)
        with open(path(), "a") as f:
            f.write(json.dumps({**entry, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}) + "\n")
            f.flush()
            os.fsync(f.fileno())


def job_for(key: str) -> str | None:
    """The job id submitted for this key and not since forgotten, or None."""
    job = None
    for e in _entries():
        if e.get("key") == key:
            job = e.get("job_id")  # None for a "forget" line
    return job


def remember_job(key: str, job_id: str, target: str) -> None:
    _append({"key": key, "job_id": job_id, "target": target})


def forget_job(key: str) -> None:
    """After a failed job: the next run submits afresh."""
    _append({"key": key, "job_id": None})


def model_for(sha256: str) -> str | None:
    model = None
    for e in _entries():
        if e.get("sha256") == sha256:
            model = e.get("model_id")
    return model


def remember_model(sha256: str, model_id: str) -> None:
    _append({"sha256": sha256, "model_id": model_id})


def forget_model(sha256: str) -> None:
    _append({"sha256": sha256, "model_id": None})
