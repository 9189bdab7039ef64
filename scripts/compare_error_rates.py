"""How often does `deploykit compare` give each verdict, for known shifts? Prints the Markdown tables of
docs/compare.md.

Synthetic samples (tests/synthetic_latency.py: lognormal noise, outliers, bursts that slow a whole block, a 20%
drift over each run, and for separate runs a further 5% between them) with shifts of 0, 3, 10 and 30% (and -10%),
judged at the default 5% threshold over many seeds:

- ``--ab``: the interleaved design and its sign test, at the default 21 rounds and at the minimum 9, and with
  sessions that keep a slow state while open, opened afresh every round (what it does) or once per run;
- stored runs: Mann-Whitney U on the repetition means (what `compare BASE NEW` does), and, for the decision log,
  the same test on every raw invocation (what it does not do).

Usage: .venv/bin/python scripts/compare_error_rates.py [--seeds 2000]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deploykit.compare import DEFAULT_ROUNDS, MIN_ROUNDS, VERDICTS, judge_paired, judge_unpaired, verdict  # noqa: E402
from tests.synthetic_latency import interleaved, separate_runs  # noqa: E402

SHIFTS = (0.0, 0.03, 0.10, 0.30, -0.10)


def raw_sample_verdict(base_raw, new_raw) -> str:
    """Mann-Whitney U on every invocation, ratio of medians against the threshold: the design not adopted."""
    from scipy.stats import mannwhitneyu

    p = mannwhitneyu(new_raw, base_raw).pvalue
    ratio = statistics.median(new_raw) / statistics.median(base_raw)
    significant = p < 0.05
    if significant and ratio >= 1.05:
        return "slower"
    if significant and ratio <= 1 / 1.05:
        return "faster"
    return "same" if significant or abs(math.log(ratio)) < math.log(1.05) else "inconclusive"


def rates(judge, seeds: int) -> dict[float, Counter]:
    return {shift: Counter(judge(shift, seed) for seed in range(seeds)) for shift in SHIFTS}


def table(title: str, by_shift: dict[float, Counter], seeds: int) -> str:
    lines = [f"**{title}** ({seeds} seeds per shift)", "", "| true shift | " + " | ".join(VERDICTS) + " |"]
    lines.append("|--:|" + "--:|" * len(VERDICTS))
    for shift, counts in by_shift.items():
        cells = " | ".join(f"{100 * counts[v] / seeds:.1f}%" for v in VERDICTS)
        lines.append(f"| {shift:+.0%} | {cells} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=2000)
    seeds = parser.parse_args().seeds
    designs = {
        f"--ab, {DEFAULT_ROUNDS} rounds (default)": lambda s, i: (
            judge_paired(*interleaved(s, i, DEFAULT_ROUNDS)).verdict
        ),
        f"--ab, {MIN_ROUNDS} rounds (minimum)": lambda s, i: judge_paired(*interleaved(s, i, MIN_ROUNDS)).verdict,
        f"--ab, {DEFAULT_ROUNDS} rounds, 40% of sessions land 1.7× slow, fresh sessions every round (what it does)": (
            lambda s, i: judge_paired(*interleaved(s, i, DEFAULT_ROUNDS, slow_sessions=0.4)).verdict
        ),
        f"--ab, {DEFAULT_ROUNDS} rounds, 40% of sessions land 1.7× slow, sessions kept for the run (not adopted)": (
            lambda s, i: (
                judge_paired(*interleaved(s, i, DEFAULT_ROUNDS, slow_sessions=0.4, fresh_sessions=False)).verdict
            )
        ),
        "stored runs, 5 repetitions each (U test on repetition means)": lambda s, i: (
            judge_unpaired(*separate_runs(s, i)[:2]).verdict
        ),
        "stored runs, U test on every raw invocation (not adopted)": lambda s, i: raw_sample_verdict(
            *separate_runs(s, i)[2:]
        ),
    }
    for title, judge in designs.items():
        print(table(title, rates(judge, seeds), seeds))
    assert verdict(1.0, 0.99, 1.01, 0.05) == "same"  # the rule itself, as a sanity check of the import


if __name__ == "__main__":
    main()
