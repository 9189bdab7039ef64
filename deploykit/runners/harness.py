"""Run a benchmark in a child process with a timeout, so a native crash or a hang becomes a failed Measurement.

The child is ``python -m deploykit.runners.host_worker`` with a JSON job on stdin; it prints one JSON line with
the samples. Anything else (a segfault in a delegate, a timeout, a Python error) is caught here and returned as
an error string with the child's stderr tail.
"""

from __future__ import annotations

import json
import subprocess
import sys


def run_child(job: dict, timeout: float) -> tuple[dict | None, str | None]:
    """Returns ``(result, None)`` or ``(None, error text)``."""
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "deploykit.runners.host_worker"],
            input=json.dumps(job),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout:.0f} s"
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        signal = f" (signal {-proc.returncode})" if proc.returncode < 0 else ""
        return None, f"benchmark process exited with {proc.returncode}{signal}: {tail}"
    for line in reversed(proc.stdout.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line), None
    return None, "benchmark process printed no result: " + proc.stderr.strip()[-500:]
