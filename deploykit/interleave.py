"""``deploykit compare --ab``: two files timed in interleaved rounds on one device, judged on paired differences.

Two runs measured minutes or hours apart differ by drift alone (identical runs on this project's 2-core VMs differ
by up to 25%); a phone heats up. Here every round opens a fresh session of each file, warms both up and times a
block of each, back to back, in an order drawn afresh for the round: whatever changes slower than a round (clock,
heat, a neighbour's job) hits both alike, and the paired per-round ratios cancel it; whatever a session brings
with it (where the scheduler put its threads) is drawn again each round. The rounds are judged by
:func:`deploykit.compare.judge_paired`.

Sessions run where ``bench`` runs them: host runtimes in a child process each (``backends/_serve.py``: a native
crash is one line, not a dead deploykit), in-process backends (Core ML, an Edge TPU) here, and remote tools
(``benchmark_model`` over adb) one tool invocation per block.
"""

from __future__ import annotations

import json
import math
import random
import select
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import quality
from .backends.base import Artifact, Backend, BackendError
from .backends.harness import child_job, time_invocations
from .compare import (
    DEFAULT_ROUNDS,
    DEFAULT_THRESHOLD,
    DEFAULT_TIMEOUT_S,
    DEFAULT_WARMUP,
    MIN_ROUNDS,
    Judgement,
    judge_paired,
)
from .devices import backend_of, device_for
from .errors import DeploykitError
from .events import Listener
from .measurement import Method
from .targets import Target

DEFAULT_BLOCK_S = 0.2  # seconds the slower file runs per round: enough invocations for a stable block median


@dataclass
class ABRequest:
    base: Path
    new: Path
    device: str
    backends: list[str] | None = None
    rounds: int = DEFAULT_ROUNDS
    runs: int | None = None  # invocations per file per round; None: as many as fill block_s
    warmup: int = DEFAULT_WARMUP
    threads: int | None = None  # every CPU session at this count (bench's --threads); None: the target's own
    block_s: float = DEFAULT_BLOCK_S
    threshold: float = DEFAULT_THRESHOLD
    seed: int | None = None  # the round orders' seed (drawn and reported when not given)
    timeout_s: float = DEFAULT_TIMEOUT_S
    profiles: Path | None = None
    backend_options: dict = field(default_factory=dict)
    input_shapes: dict = field(default_factory=dict)


@dataclass
class ABResult:
    """One pair of targets: each round's block medians (ms), the order they ran in, and the judgement."""

    device: str
    base_file: str
    new_file: str
    base_target: str
    new_target: str
    runs: int  # invocations per file per round
    seed: int
    order: list[str]  # per round, "AB" or "BA" (A = base)
    base_ms: list[float]
    new_ms: list[float]
    judgement: Judgement
    wall_s: float
    interference: dict  # this machine's readings over the whole run (deploykit.quality)
    env: dict  # the two sessions' runtime descriptions
    note: str | None = None

    @property
    def base_median(self) -> float:
        return statistics.median(self.base_ms)

    @property
    def new_median(self) -> float:
        return statistics.median(self.new_ms)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["judgement"] = self.judgement.to_dict()
        d["base_median_ms"], d["new_median_ms"] = self.base_median, self.new_median
        return d


def plan_ab(req: ABRequest) -> list[tuple[Artifact, Target, Artifact, Target, object, str | None]]:
    """The pairs of targets to run on, each file on a target of its own format and precision (bench's rules), paired
    by backend; two files of different formats are paired on each one's first target, and it is said."""
    from .bench import BenchRequest, plan

    sides = []
    for path in (req.base, req.new):
        breq = BenchRequest(
            device=req.device,
            models=[],
            artifact=path,
            backends=req.backends,
            profiles=req.profiles,
            backend_options=req.backend_options,
            input_shapes=req.input_shapes,
            threads=[req.threads] if req.threads else None,
        )
        profile, targets, reach = plan(breq)
        sides.append((breq.user_file, targets, reach))
    (a, a_targets, reach), (b, b_targets, _) = sides
    by_backend = {t.backend: t for t in b_targets}
    pairs = [(a, t, b, by_backend[t.backend], reach, None) for t in a_targets if t.backend in by_backend]
    if not pairs:
        note = f"different runtimes: {a_targets[0].id} against {b_targets[0].id}"
        pairs = [(a, a_targets[0], b, b_targets[0], reach, note)]
    return pairs


def run_ab(req: ABRequest, listener: Listener | None = None) -> list[ABResult]:
    if req.rounds < MIN_ROUNDS:
        raise DeploykitError(f"--rounds {req.rounds}: give at least {MIN_ROUNDS}")
    listener = listener or Listener()
    pairs = plan_ab(req)
    listener.planned(len(pairs) * req.rounds, title=f"{req.base.name} vs {req.new.name} on {req.device}")
    return [_run_pair(req, *pair, listener) for pair in pairs]


def _run_pair(req, a: Artifact, ta: Target, b: Artifact, tb: Target, reach, note, listener: Listener) -> ABResult:
    seed = req.seed if req.seed is not None else random.SystemRandom().randrange(2**31)
    rng = random.Random(seed)
    files = ((backend_of(ta), a, ta, device_for(reach, ta)), (backend_of(tb), b, tb, device_for(reach, tb)))
    times: tuple[list[float], list[float]] = ([], [])
    order, env, runs = [], {}, req.runs
    before, t0 = quality.snapshot(), time.perf_counter()
    for r in range(req.rounds):
        first = rng.randrange(2)
        order.append("AB" if first == 0 else "BA")
        listener.started(f"round {r + 1}/{req.rounds} on {ta.id}: opening both files")
        sides: list = [None, None]
        try:
            # Fresh sessions every round: a session keeps a speed of its own while it is open (where the scheduler
            # put its threads); kept for the whole run, that is one draw shared by every round, which the rounds
            # read as a difference between the files. Drawn per round, it is noise between rounds, which the sign
            # test allows for (docs/decisions.md, "fresh sessions every round").
            for i in (first, 1 - first):
                backend, artifact, target, device = files[i]
                sides[i] = _open(backend, artifact, target, device, req)
            if runs is None:
                runs = _runs_per_block(sides, req.block_s)
            env = env or {"base": sides[0].env, "new": sides[1].env}
            listener.started(f"round {r + 1}/{req.rounds} on {ta.id}")
            for i in (first, 1 - first):
                times[i].append(statistics.median(sides[i].block(runs)))
        finally:
            for side in sides:
                if side is not None:
                    side.close()
        listener.step()
    wall = time.perf_counter() - t0
    # every session's process is closed and reaped by now: the snapshot counts its CPU time as this run's own
    readings = quality.readings(before, quality.snapshot(), wall)
    return ABResult(
        device=req.device,
        base_file=str(req.base),
        new_file=str(req.new),
        base_target=ta.id,
        new_target=tb.id,
        runs=runs,
        seed=seed,
        order=order,
        base_ms=times[0],
        new_ms=times[1],
        judgement=judge_paired(times[0], times[1], req.threshold),
        wall_s=wall,
        interference=readings.to_dict(),
        env=env,
        note=note,
    )


def _runs_per_block(sides: list, block_s: float) -> int:
    """As many invocations as fill ``block_s`` on the slower file, from a short probe of each (5 to 100,000)."""
    slowest = max(statistics.median(side.block(5)) for side in sides)
    return max(5, min(100_000, math.ceil(block_s * 1000 / max(slowest, 1e-6))))


def _open(backend: Backend, artifact: Artifact, target: Target, device, req: ABRequest):
    if backend.remote:
        return _RemoteSide(backend, artifact, target, device, req.warmup)
    if backend.isolate:
        return _ChildSide(backend, artifact, target, req.warmup, req.timeout_s)
    return _InProcessSide(backend, artifact, target, req.warmup)


class _InProcessSide:
    def __init__(self, backend: Backend, artifact: Artifact, target: Target, warmup: int):
        self.session = backend.open(artifact, target)
        self.env, self.delegate = self.session.env, self.session.delegate
        time_invocations(self.session.run, Method(warmup=warmup, repetitions=0, runs=0))

    def block(self, runs: int) -> list[float]:
        return time_invocations(self.session.run, Method(warmup=0, repetitions=1, runs=runs))[0]

    def close(self) -> None:
        pass


class _RemoteSide:
    """A device that times itself (``benchmark_model``): one tool run per block, its mean the block's time."""

    def __init__(self, backend: Backend, artifact: Artifact, target: Target, device, warmup: int):
        self.backend, self.artifact, self.target, self.device, self.warmup = backend, artifact, target, device, warmup
        self.env: dict = {}

    def block(self, runs: int) -> list[float]:
        method = Method(warmup=self.warmup, repetitions=1, runs=runs)
        stats, self.env, _ = self.backend.measure(self.artifact, self.target, method, self.device)
        return [stats.median_ms]

    def close(self) -> None:
        pass


class _ChildSide:
    """A session in its own process (``backends/_serve.py``), asked for one block at a time."""

    def __init__(self, backend: Backend, artifact: Artifact, target: Target, warmup: int, timeout_s: float):
        self.timeout_s, self.name = timeout_s, artifact.path.name if artifact.path else artifact.model
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "deploykit.backends._serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
        )
        # the harness's own job (backends/_serve.py reads the method's warm-up; blocks are asked for one by one)
        job = child_job(backend, artifact, target, Method(warmup=warmup, repetitions=0, runs=0))
        ready = self._ask(job)
        self.env, self.delegate = ready["env"], ready["delegate"]

    def block(self, runs: int) -> list[float]:
        return self._ask({"runs": runs})["samples"]

    def _ask(self, payload: dict) -> dict:
        try:
            self.proc.stdin.write(json.dumps(payload, default=str) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass  # it died: what it said is read below
        ready, _, _ = select.select([self.proc.stdout], [], [], self.timeout_s)
        if not ready:
            self.close()
            raise BackendError(f"{self.name}: no answer within {self.timeout_s:g} s")
        line = self.proc.stdout.readline()
        answer = json.loads(line) if line.startswith("{") else None
        if answer is None:
            self.proc.wait(timeout=10)
            self.stderr.seek(0)
            tail = " ".join(self.stderr.read().strip().splitlines()[-3:])
            raise BackendError(f"{self.name}: the benchmark process exited with {self.proc.returncode}: {tail}")
        if "error" in answer:
            raise BackendError(f"{self.name}: {answer['error']}")
        return answer

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()
