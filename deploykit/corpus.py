"""The corpus of published latencies (``deploykit/reference/published_latencies.csv``).

One row per (model, resolution, device, target, runtime, compute unit, precision, latency), each citing its
source (paper table, repository file at a commit, AI Hub job id) and how it was measured. The estimator fits
each target on its rows (``split`` = ``fit``); rows marked ``heldout`` are independent measurements kept out of
every fit and used only to report accuracy. In the store and in reports these rows are ``published``, never
``measured`` or ``estimated``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from .errors import DeploykitError
from .targets import Target

FILE = "published_latencies.csv"
SPLITS = ("fit", "heldout")


@dataclass(frozen=True)
class Row:
    model: str
    resolution: int
    device: str
    target: str
    runtime: str
    compute_unit: str
    precision: str
    latency_ms: float
    source: str
    ref: str
    method: str
    split: str

    @property
    def key(self) -> tuple[str, int]:
        return (self.model, self.resolution)


def commented_csv(text: str) -> list[dict]:
    """Rows of a CSV whose ``#`` lines say where its figures come from (deploykit/reference/*.csv)."""
    return list(csv.DictReader(line for line in text.splitlines() if line and not line.startswith("#")))


@lru_cache(maxsize=1)
def rows() -> tuple[Row, ...]:
    """Every corpus row, checked: positive latency, a known split, a citation."""
    text = resources.files("deploykit.reference").joinpath(FILE).read_text()
    out = []
    for i, rec in enumerate(commented_csv(text), start=1):
        try:
            r = Row(**{**rec, "resolution": int(rec["resolution"]), "latency_ms": float(rec["latency_ms"])})
        except (TypeError, ValueError) as e:
            raise DeploykitError(f"{FILE} row {i}: {e}") from None
        if not (r.latency_ms > 0 and r.split in SPLITS and r.ref and r.source):
            raise DeploykitError(f"{FILE} row {i}: needs a positive latency, a split in {SPLITS}, a source and a ref")
        out.append(r)
    return tuple(out)


def names_of(t: Target) -> set[str]:
    """What a corpus row's ``target`` may call this target: its name, backend, or the paper's target name."""
    names = {t.backend, (t.roofline or {}).get("paper_target")}
    if t.name:
        names.add(t.name)
    return {n for n in names if n}


def rows_for(t: Target, split: str = "fit") -> list[Row]:
    """The corpus rows measuring this target (same device profile, target and precision)."""
    names = names_of(t)
    return [r for r in rows() if r.split == split and r.device == t.device and r.precision == t.precision
            and r.target in names]  # fmt: skip
