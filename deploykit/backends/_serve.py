"""The child-process side of an interleaved A/B run (:mod:`deploykit.interleave`): one session, kept open, timing
blocks of invocations on request.

The first stdin line is the job (as :func:`deploykit.backends.harness.run_child` writes it; its method's warm-up
is run once). The
child opens the session, warms it up and answers ``{"ready": true, "env", "delegate"}`` (or ``{"error": line}``);
then each ``{"runs": N}`` line is answered with ``{"samples": [ms, ...]}`` until stdin closes. The session stays
open for its round: a round must time the model, not its loading, and both files are as warm as each other.
"""

from __future__ import annotations

import json
import os
import sys
import time

from deploykit.backends import base
from deploykit.backends.worker import artifact_of, pinned_target
from deploykit.errors import DeploykitError
from deploykit.measurement import Method


def say(payload: dict) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


def main() -> None:
    job = json.loads(sys.stdin.readline())
    target, artifact = pinned_target(job), artifact_of(job)
    try:
        session = base.get(job["plugin"]).open(artifact, target)
        for _ in range(Method(**job["method"]).warmup):
            session.run()
    except DeploykitError as e:  # the runtime refused the file: one line, as the timed worker says it
        say({"error": str(e)})
        return
    say(
        {
            "ready": True,
            "env": {**session.env, "affinity": sorted(os.sched_getaffinity(0))},
            "delegate": session.delegate,
        }
    )
    for line in sys.stdin:
        runs = json.loads(line)["runs"]
        samples = []
        for _ in range(runs):
            t0 = time.perf_counter_ns()
            session.run()
            samples.append((time.perf_counter_ns() - t0) / 1e6)
        say({"samples": samples})


if __name__ == "__main__":
    main()
