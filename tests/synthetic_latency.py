"""Synthetic latency samples with a known shift, for `deploykit compare`'s tests and scripts/compare_error_rates.py.

Each invocation takes ``base_ms × shift × drift × block × noise × outlier``:

- ``noise``: lognormal per invocation (σ 5%, what a quiet CPU runtime shows);
- ``outlier``: 1% of invocations take 1.5-4× as long (an interrupt, a page fault);
- ``block``: each block of invocations (a round's share, a repetition) is slowed as a whole by lognormal σ 2%, and
  5% of blocks by a neighbour's burst of +30%: what hits one block and not the next;
- ``session``: optionally, a state each session keeps while it is open (``slow_sessions`` of them 1.7× slow);
- ``drift``: the machine slows by ``drift`` over a run (a phone heating up, a CI host filling), and two separate runs
  differ by a further lognormal ``run_sigma`` (they ran at different times).
"""

from __future__ import annotations

import numpy as np

BASE_MS = 2.0


def _block(rng, n: int, factor: float) -> np.ndarray:
    block = np.exp(rng.normal(0, 0.02))
    if rng.random() < 0.05:
        block *= 1.3
    x = BASE_MS * factor * block * np.exp(rng.normal(0, 0.05, n))
    outliers = rng.random(n) < 0.01
    x[outliers] *= rng.uniform(1.5, 4.0, outliers.sum())
    return x


def interleaved(
    shift: float,
    seed: int,
    rounds: int = 15,
    runs: int = 50,
    drift: float = 0.2,
    slow_sessions: float = 0.0,
    fresh_sessions: bool = True,
):
    """Per-round block medians (base, new) of an A/B run, in a random order per round, as ``compare --ab`` takes.

    ``slow_sessions``: the share of sessions that land in a slow state and keep it while open (1.7×: a 2-thread
    session whose threads share one core, measured on this project's 2-core VMs); drawn for every round's fresh
    sessions, or once per run when ``fresh_sessions`` is false (the design not adopted)."""
    rng = np.random.default_rng(seed)
    base, new = [], []

    def state() -> float:  # no draw without session states: the other figures' random streams stay as they were
        return 1.7 if slow_sessions and rng.random() < slow_sessions else 1.0

    kept = (state(), state())
    for r in range(rounds):
        slow = 1 + drift * r / rounds
        states = (state(), state()) if fresh_sessions else kept
        sides = [(base, states[0]), (new, (1.0 + shift) * states[1])]
        if rng.random() < 0.5:
            sides.reverse()
        for out, factor in sides:
            out.append(float(np.median(_block(rng, runs, factor * slow))))
    return base, new


def separate_runs(
    shift: float, seed: int, repetitions: int = 5, runs: int = 200, drift: float = 0.2, run_sigma: float = 0.05
):
    """Repetition means (base, new) of two runs measured apart, as ``compare BASE NEW`` takes from the store, and
    every invocation of each (for the raw-sample test the decision log measured)."""
    rng = np.random.default_rng(seed)
    out = []
    for factor in (1.0, 1.0 + shift):
        level = factor * np.exp(rng.normal(0, run_sigma))
        reps = [_block(rng, runs, level * (1 + drift * r / repetitions)) for r in range(repetitions)]
        out.append(([float(x.mean()) for x in reps], np.concatenate(reps)))
    (base_means, base_raw), (new_means, new_raw) = out
    return base_means, new_means, base_raw, new_raw
