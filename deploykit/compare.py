"""Did a change make a model slower? Two runs of the same cells, judged: ratio, 95% interval, test, verdict.

Two designs, each with the rank statistics that fit it (docs/compare.md says why, with measured error rates):

- **Interleaved A/B** (``deploykit compare --ab``, :mod:`deploykit.interleave`): rounds that each time both files
  back to back in a random order. A round gives one paired observation, the log of the ratio of its two blocks'
  medians; drift, heat and neighbours that last longer than a round hit both files and cancel. Judged by the sign
  test, with the median ratio and the exact order-statistic interval that inverts the same test (the two never
  disagree): a round disturbed as a whole (a neighbour's burst during one file's block) moves neither, where a
  Wilcoxon/Hodges-Lehmann interval widens past the threshold (docs/decisions.md has the measured rates).
- **Stored runs** (``deploykit compare BASE NEW``): two runs measured apart. The independent units are the
  repetitions, not the invocations: the invocations of one repetition share the machine's state of that moment
  (the clock, the caches, a neighbour), so treating thousands of them as independent makes any drift between two
  runs "significant". Mann-Whitney U on the log repetition means, with the Hodges-Lehmann shift and its exact rank
  (Moses) interval. Drift between the two runs is not controlled, and every verdict says so.

A change counts when it is significant *and* at least the minimum effect: ``slower`` when the interval lies wholly
above 1 and the estimate is at least ``1 + threshold``; ``faster`` mirrored (at most ``1 / (1 + threshold)``);
``same`` when the estimate is within the threshold and either significant or with an interval inside the
threshold band; otherwise ``inconclusive`` (the interval is too wide to tell), as it is with too few samples, a
noisy row, rows of different machines, or estimated and published rows (shown, never judged as measurements).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from functools import cache

from .measurement import Measurement

SLOWER, FASTER, SAME, INCONCLUSIVE = "slower", "faster", "same", "inconclusive"
VERDICTS = (SLOWER, FASTER, SAME, INCONCLUSIVE)
DEFAULT_THRESHOLD = 0.05
MIN_ROUNDS = 9  # of an interleaved run: Google Benchmark's compare.py asks as many for its U test; a sign test needs 6
DEFAULT_ROUNDS = 21  # 15 left 9% of no-change runs inconclusive on synthetic bursts, 21 left 2.5% (decisions.md)
DEFAULT_WARMUP = 20  # invocations of each session of an interleaved run before its block is timed
DEFAULT_TIMEOUT_S = 300.0  # for any one block of an interleaved run (or the opening of a session)
ALPHA = 0.05  # two-sided: 95% intervals
EXACT_UP_TO = 60  # samples per side below which the rank statistics' null distributions are counted exactly

PAIRED_METHOD = "interleaved rounds: sign test on per-round log ratios, median with its exact 95% interval"
UNPAIRED_METHOD = "separate runs: Mann-Whitney U on log repetition means, Hodges-Lehmann 95% interval"

# What tells two machines (or two runtimes) apart in a measured row's env; a hostname is not among them (a CI
# runner's changes every run while its hardware does not)
FINGERPRINT = ("cpu_model", "logical_cpus", "machine", "system", "device", "runtime", "threads", "delegate")


@dataclass
class Judgement:
    """A verdict and what it rests on. Ratios are new / base: above 1 is slower."""

    verdict: str
    ratio: float | None = None  # the median per-round ratio (paired), the Hodges-Lehmann ratio (separate runs)
    low: float | None = None  # its 95% interval
    high: float | None = None
    p_value: float | None = None
    confidence: float | None = None  # the exact interval's own coverage (≥ 95%; rank intervals move in steps)
    samples: tuple[int, int] = (0, 0)  # rounds (paired) or repetitions per side (separate runs)
    method: str = ""
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


# --- the null distributions of the two tests, counted exactly for small samples


def _binomial_counts(n: int) -> tuple[int, ...]:
    """How many of the 2**n sign patterns have k positive signs, k = 0 .. n (the sign test's null)."""
    return tuple(math.comb(n, k) for k in range(n + 1))


@cache
def _rank_sum_counts(m: int, n: int) -> tuple[int, ...]:
    """How many of the C(m+n, m) orderings give each Mann-Whitney U = 0 .. m*n (counts by number of inversions)."""
    # f[j][u]: orderings of j "new" among i "base" items; built up one item at a time (the q-binomial recurrence)
    rows = [[1] for _ in range(n + 1)]
    for i in range(1, m + 1):
        new_rows = [[1]]
        for j in range(1, n + 1):
            left, up = new_rows[j - 1], rows[j]
            size = i * j + 1
            row = [0] * size
            for u, c in enumerate(up):  # the last item is a base one: no new inversions
                row[u] += c
            for u, c in enumerate(left):  # the last item is a new one: it passes all i base items
                row[u + i] += c
            new_rows.append(row)
        rows = new_rows
    return tuple(rows[n])


def _lower_tail(counts: tuple[int, ...], stat: float) -> float:
    total = sum(counts)
    return sum(counts[: int(math.floor(stat + 1e-9)) + 1]) / total


def _critical_rank(counts: tuple[int, ...], alpha: float) -> int | None:
    """The largest c with P(S ≤ c - 1) ≤ alpha/2: the interval runs from the c-th smallest to the c-th largest of
    the sorted values (paired differences, or pairwise differences). None when no interval reaches 1 - alpha."""
    total, cumulative, c = sum(counts), 0, 0
    for count in counts:
        if (cumulative + count) / total > alpha / 2:
            break
        cumulative += count
        c += 1
    return c if c >= 1 else None


def _normal_critical_rank(mean: float, var: float, alpha: float) -> int:
    from statistics import NormalDist

    return max(1, int(math.floor(mean - NormalDist().inv_cdf(1 - alpha / 2) * math.sqrt(var))))


def _normal_p(stat: float, mean: float, var: float) -> float:
    from statistics import NormalDist

    if var <= 0:
        return 1.0
    z = (abs(stat - mean) - 0.5) / math.sqrt(var)  # continuity correction
    return min(1.0, 2 * (1 - NormalDist().cdf(max(z, 0.0))))


# --- the two estimators with their intervals and tests, on log times


def paired(log_ratios: list[float], alpha: float = ALPHA) -> tuple[float, float, float, float, float] | None:
    """Median of the per-round log ratios, its exact 95% interval (order statistics of the binomial) and the
    two-sided sign-test p, with the interval's coverage; None with too few rounds for any 95% interval."""
    d = sorted(log_ratios)
    n = len(d)
    counts = _binomial_counts(n)
    c = _critical_rank(counts, alpha)
    if c is None:
        return None
    nonzero = [x for x in d if x != 0]  # a round with no difference says nothing about the direction
    positive = sum(x > 0 for x in nonzero)
    tail = _binomial_counts(len(nonzero))
    p = min(1.0, 2 * min(_lower_tail(tail, positive), _lower_tail(tail, len(nonzero) - positive))) if nonzero else 1.0
    return _median(d), d[c - 1], d[n - c], p, 1 - 2 * _lower_tail(counts, c - 1)


def unpaired(
    base: list[float], new: list[float], alpha: float = ALPHA
) -> tuple[float, float, float, float, float] | None:
    """Hodges-Lehmann shift new - base, its exact 95% interval and the two-sided Mann-Whitney p (log space), with
    the interval's coverage; None with too few samples for any 95% interval."""
    m, n = len(base), len(new)
    diffs = sorted(y - x for x in base for y in new)
    ranks = _ranks(list(base) + list(new))
    u = sum(ranks[m:]) - n * (n + 1) / 2  # pairs where new > base (ties count half)
    if max(m, n) <= EXACT_UP_TO:
        counts = _rank_sum_counts(m, n)
        c = _critical_rank(counts, alpha)
        if c is None:
            return None
        coverage = 1 - 2 * _lower_tail(counts, c - 1)
        p = min(1.0, 2 * min(_lower_tail(counts, u), _lower_tail(counts, m * n - u)))
    else:
        mean, var = m * n / 2, m * n * (m + n + 1) / 12
        c, coverage = _normal_critical_rank(mean, var, alpha), 1 - alpha
        p = _normal_p(u, mean, var)
    return _median(diffs), diffs[c - 1], diffs[len(diffs) - c], p, coverage


def _ranks(values: list[float]) -> list[float]:
    """1-based ranks, ties sharing their mid-rank."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def _median(sorted_values: list[float]) -> float:
    n = len(sorted_values)
    return sorted_values[n // 2] if n % 2 else (sorted_values[n // 2 - 1] + sorted_values[n // 2]) / 2


# --- verdicts


def verdict(ratio: float, low: float, high: float, threshold: float) -> str:
    """The rule in the module docstring, on ratios (new / base)."""
    up, down = 1 + threshold, 1 / (1 + threshold)
    if low > 1 and ratio >= up:
        return SLOWER
    if high < 1 and ratio <= down:
        return FASTER
    significant = low > 1 or high < 1
    if down < ratio < up and (significant or (down <= low and high <= up)):
        return SAME
    return INCONCLUSIVE


def judge_paired(base_rounds: list[float], new_rounds: list[float], threshold: float = DEFAULT_THRESHOLD) -> Judgement:
    """Rounds of an interleaved run: each side's per-round median time (ms), in round order."""
    j = Judgement(INCONCLUSIVE, samples=(len(base_rounds), len(new_rounds)), method=PAIRED_METHOD)
    pairs = [(b, n) for b, n in zip(base_rounds, new_rounds) if b > 0 and n > 0]
    result = paired([math.log(n / b) for b, n in pairs]) if pairs else None
    if result is None:
        j.reasons.append(f"{len(pairs)} rounds are too few for a 95% interval (at least 6)")
        return j
    return _judged(j, result, threshold)


def judge_unpaired(base_reps: list[float], new_reps: list[float], threshold: float = DEFAULT_THRESHOLD) -> Judgement:
    """Two separate runs: each side's repetition means (ms)."""
    j = Judgement(INCONCLUSIVE, samples=(len(base_reps), len(new_reps)), method=UNPAIRED_METHOD)
    base = [math.log(x) for x in base_reps if x > 0]
    new = [math.log(x) for x in new_reps if x > 0]
    result = unpaired(base, new) if base and new else None
    if result is None:
        j.reasons.append(
            f"{len(base)} and {len(new)} repetitions are too few for a 95% interval (at least 4 and 4; bench's"
            " default is 5)"
        )
        return j
    return _judged(j, result, threshold)


def _judged(j: Judgement, result: tuple, threshold: float) -> Judgement:
    estimate, low, high, p, coverage = result
    j.ratio, j.low, j.high, j.p_value, j.confidence = math.exp(estimate), math.exp(low), math.exp(high), p, coverage
    j.verdict = verdict(j.ratio, j.low, j.high, threshold)
    if j.verdict == INCONCLUSIVE:
        j.reasons.append(f"too noisy to tell: the interval {j.low:.3f}-{j.high:.3f} reaches past ±{threshold:.0%}")
    return j


# --- stored runs


@dataclass
class CellComparison:
    """One cell present in both runs, and what its two rows say."""

    model: str
    resolution: int
    device: str
    target: str
    precision: str
    base: Measurement
    new: Measurement
    judgement: Judgement

    def to_dict(self) -> dict:
        row = {k: getattr(self, k) for k in ("model", "resolution", "device", "target", "precision")}
        row["input_shapes"] = self.new.env.get("input_shapes")
        for side in ("base", "new"):
            m = getattr(self, side)
            row[side] = {
                "id": m.id,
                "label": m.label,
                "provenance": m.provenance,
                "median_ms": m.median_ms,
                "quality": m.quality,
                "created": m.created,
            }
        return {**row, **self.judgement.to_dict()}


def cell_key(m: Measurement) -> tuple:
    """A cell: model, resolution, device, target, precision, and what tells rows of one target apart (the input
    shapes a file was fed, a `bench --threads` count)."""
    shapes = json.dumps(m.env.get("input_shapes") or {}, sort_keys=True)
    return m.model, m.resolution, m.device, m.target, m.precision, shapes, m.env.get("threads_requested")


def latest_per_cell(rows: list[Measurement]) -> dict[tuple, Measurement]:
    """The newest row of each cell (a run re-measured under one label counts once, as its last result)."""
    out: dict[tuple, Measurement] = {}
    for m in sorted(rows, key=lambda m: m.id or 0):
        if m.status == "ok" and m.median_ms is not None:
            out[cell_key(m)] = m
    return out


def fingerprint(m: Measurement) -> dict:
    return {k: m.env[k] for k in FINGERPRINT if k in m.env}


def machine_differences(base: Measurement, new: Measurement) -> list[str]:
    a, b = fingerprint(base), fingerprint(new)
    return [f"{k}: {_short(a.get(k))} vs {_short(b.get(k))}" for k in FINGERPRINT if a.get(k) != b.get(k)]


def _short(value) -> str:
    if value is None:
        return "none"
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def compare_rows(
    base_rows: list[Measurement],
    new_rows: list[Measurement],
    threshold: float = DEFAULT_THRESHOLD,
    across_machines: bool = False,
) -> list[CellComparison]:
    """Every cell with an ok row in both runs, judged (measured rows only; others shown, not tested)."""
    base, new = latest_per_cell(base_rows), latest_per_cell(new_rows)
    out = []
    for key in [k for k in new if k in base]:
        b, n = base[key], new[key]
        out.append(CellComparison(*key[:5], base=b, new=n, judgement=judge_rows(b, n, threshold, across_machines)))
    return out


def judge_rows(base: Measurement, new: Measurement, threshold: float, across_machines: bool) -> Judgement:
    """Two stored rows of one cell: judged on their repetition means, unless something rules a test out."""
    not_measured = [m.provenance for m in (base, new) if m.provenance != "measured"]
    if not_measured:
        j = Judgement(INCONCLUSIVE, ratio=new.median_ms / base.median_ms, method="not tested")
        j.reasons.append(f"{not_measured[0]} rows are shown, never judged as measurements")
        return j
    j = judge_unpaired(base.stats.rep_means if base.stats else [], new.stats.rep_means if new.stats else [], threshold)
    differences = machine_differences(base, new)
    if differences and not across_machines:
        j.verdict = INCONCLUSIVE
        j.reasons.insert(0, "measured on different machines (" + "; ".join(differences) + "): --across-machines")
    elif differences:
        j.reasons.append("measured on different machines (" + "; ".join(differences) + ")")
    noisy = [side for side, m in (("base", base), ("new", new)) if m.quality == "noisy"]
    if noisy:
        j.verdict = INCONCLUSIVE
        j.reasons.insert(0, f"the {' and '.join(noisy)} {'row is' if len(noisy) == 1 else 'rows are'} noisy")
    return j


def exit_status(judgements: list[Judgement]) -> int:
    """For CI: 1 when any cell is significantly slower beyond the threshold, else 0."""
    return 1 if any(j.verdict == SLOWER for j in judgements) else 0


# --- which rows a run is


@dataclass
class Run:
    """The rows one side of ``compare BASE NEW`` names: a label in a database, or a whole database."""

    spec: str
    db: str
    label: str | None
    rows: list[Measurement]

    @property
    def name(self) -> str:
        return f"{self.label} ({self.db})" if self.label else self.db


def load_run(spec: str, db: str, model: str | None = None, device: str | None = None, target: str | None = None) -> Run:
    """``LABEL`` (a run label in ``db``), ``FILE`` (every row of another database) or ``FILE@LABEL``."""
    from pathlib import Path

    from .errors import DeploykitError
    from .store import Store

    if "@" in spec:
        db, label = spec.rsplit("@", 1)
    elif Path(spec).is_file():
        db, label = spec, None
    else:
        label = spec
    with Store.existing(db) as store:
        labels = store.labels()
        if label is not None and label not in labels:
            known = ", ".join(list(labels)[-8:]) or "none: `bench`/`sweep --label NAME` attach one"
            raise DeploykitError(f"no run labelled {label!r} in {db}", hint=f"labels there: {known}")
        rows = store.query(label=label, model=model, device=device, target=target)
    return Run(spec, db, label, rows)


DRIFT_WARNING = (
    "separate runs: drift between them (the clock, heat, neighbours) is not controlled;"
    " `deploykit compare --ab BASE_FILE NEW_FILE --device D` times both files interleaved and controls it"
)


def runs_report(
    base: str, new: str, db: str, threshold: float = DEFAULT_THRESHOLD, across_machines: bool = False, **filters
) -> dict:
    """``compare BASE NEW`` as one dict: what ``--json`` prints, ``--markdown`` and the HTML report render."""
    from .errors import DeploykitError

    runs = [load_run(spec, db, **filters) for spec in (base, new)]
    cells = compare_rows(runs[0].rows, runs[1].rows, threshold, across_machines)
    if not cells:
        sizes = ", ".join(f"{r.name}: {len(latest_per_cell(r.rows))} ok cells" for r in runs)
        raise DeploykitError(
            f"no cell has an ok row in both runs ({sizes})",
            hint="a cell is a model × resolution × target; check the filters",
        )
    counts = dict.fromkeys(VERDICTS, 0)
    for c in cells:
        counts[c.judgement.verdict] += 1
    return {
        "mode": "runs",
        "base": runs[0].name,
        "new": runs[1].name,
        "threshold": threshold,
        "method": UNPAIRED_METHOD,
        "warnings": [DRIFT_WARNING],
        "counts": counts,
        "cells": [_report_cell(c) for c in cells],
    }


def _report_cell(c: CellComparison) -> dict:
    from .reports.html import row_label  # the report's own name for a row: shapes and thread count included

    d = c.to_dict()
    return {"cell": f"{row_label(c.new)} on {d['target']}", "base_ms": c.base.median_ms, "new_ms": c.new.median_ms, **d}
