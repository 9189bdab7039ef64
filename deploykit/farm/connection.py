"""Reaching a farm's head without hanging: every question a farm command asks a cluster it did not start
(``farm status``, ``farm join``'s version check, ``sweep --executor ray``'s plan) goes through :func:`ask`.

Ray's client cannot be bounded from inside its own process: ``ray.init`` against an address where nothing
answers retries for minutes, its C++ core keeps SIGINT/SIGTERM from ending the process while it waits, and a
crash of that core (a stale cluster file, a head that went away) prints its abort trace straight to fd 2. So
the question runs in a child process (``python -m deploykit.farm.answer QUESTION ADDRESS``): the parent
first checks that something listens at the address (a plain TCP connect, bounded), then waits for the child's
one JSON line at most ``timeout`` seconds, kills it on a timeout, Ctrl-C or SIGTERM, and turns the child's
stderr into one line. The child also ends itself shortly after the timeout, should the parent be killed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading

from ..errors import DeploykitError

DEFAULT_TIMEOUT_S = 10.0  # `--timeout` of the farm commands: seconds to reach the head and hear back
MAX_TIMEOUT_S = 600.0  # the most a user waits for an answer before concluding the head is not there
ANSWER = "deploykit-farm-answer "  # the child's result line on stdout; anything else there is Ray's noise
QUESTIONS = ("nodes", "status")
# Ray's own log prefix, "[2026-12-07 16:59:11,970 W 4573 4573] rpc_client.h:153: ": dropped from the summary
_RAY_LOG_PREFIX = re.compile(r"^\[[^\]]*\]\s*(\S+:\d+:\s*)?")
_CHECK_FAILED = re.compile(r"Check failed: .*? ([A-Z].*)")


class FarmUnreachable(DeploykitError):
    """The farm's head cannot be reached or does not answer: not the user's typing, a cluster deploykit cannot
    reach (one line, exit 1)."""

    exit_code = 1


class Interrupted(DeploykitError):
    """Ctrl-C (exit 130) or SIGTERM (143) while waiting for a farm: one line."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def split_address(address: str) -> tuple[str, int]:
    """``HEAD:PORT`` → (HEAD, PORT); anything else is the user's typing (exit 2)."""
    host, colon, port = address.rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise DeploykitError(f"--address {address!r}: give HEAD:PORT with a port 1-65535 (e.g. 10.0.0.5:6379)")
    return host.strip("[]"), int(port)


def check_timeout(timeout: float, option: str = "--timeout") -> float:
    if not 0 < timeout <= MAX_TIMEOUT_S:  # NaN too
        raise DeploykitError(f"{option} {timeout:g}: give seconds above 0 and at most {MAX_TIMEOUT_S:g}")
    return timeout


def probe(address: str, timeout: float) -> None:
    """Something listens at ``address`` (a TCP connect, at most ``timeout`` seconds), or one line, exit 1."""
    host, port = split_address(address)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except TimeoutError:
        raise FarmUnreachable(f"no farm at {address}: no answer within {timeout:g} s") from None
    except OSError as e:  # refused, no route, unknown host
        raise FarmUnreachable(f"no farm at {address}: {e.strerror or e}") from None


def ask(question: str, address: str | None, timeout: float = DEFAULT_TIMEOUT_S, env: dict | None = None):
    """The answer to ``question`` (one of :data:`QUESTIONS`) from the cluster at ``address`` (None: the Ray
    this host runs), as plain data; :class:`FarmUnreachable` when it does not come within ``timeout`` seconds.
    Ctrl-C and SIGTERM end the wait at once (:class:`Interrupted`), the child killed."""
    where = address or "this host"
    if address:
        probe(address, timeout)
    child = subprocess.Popen(
        [sys.executable, "-m", "deploykit.farm.answer", question, address or "", str(timeout)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        start_new_session=True,  # its own process group: killed whole, and the terminal's Ctrl-C is ours to handle
    )
    try:
        with _sigterm_interrupts():
            stdout, stderr = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise FarmUnreachable(f"no farm at {where}: no answer within {timeout:g} s") from None
    except KeyboardInterrupt as e:  # said here: Typer would end the command with 130 and no word
        how = ("terminated", 143) if isinstance(e, _Terminated) else ("interrupted", 130)
        raise Interrupted(f"{how[0]} while waiting for the farm at {where}", how[1]) from None
    finally:
        _kill(child)
    for line in stdout.splitlines():
        if line.startswith(ANSWER):
            said = json.loads(line[len(ANSWER) :])
            if "error" in said:
                raise FarmUnreachable(f"cannot use the farm at {where}: {said['error']}")
            return said["answer"]
    raise FarmUnreachable(f"no farm at {where}: Ray's client {summary(stderr, child.returncode)}")


def summary(stderr: str, returncode: int | None) -> str:
    """A crashed child's stderr (Ray's warnings, an abort with its C++ stack) in a few words: how it ended and
    its first fatal line, else its last line."""
    how = f"died of {signal.Signals(-returncode).name}" if returncode and returncode < 0 else f"exited {returncode}"
    lines = [_RAY_LOG_PREFIX.sub("", x).strip() for x in stderr.splitlines()]
    lines = [x for x in lines if x and not x.startswith("***")]
    fatal = [x for x in lines if "Check failed" in x or "Error" in x or "error" in x]
    said = (fatal or lines[-1:] or [""])[0]
    reason = _CHECK_FAILED.search(said)  # "… Check failed: has_token || x Token authentication is …": the sentence
    said = (reason.group(1) if reason else said)[:200]
    return f"{how}: {said}" if said else how


def _kill(child: subprocess.Popen) -> None:
    if child.poll() is None:
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    child.communicate()


class _sigterm_interrupts:
    """SIGTERM ends the wait like Ctrl-C (the default would end this process and leave the child behind)."""

    def __enter__(self):
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGTERM, _interrupt)

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the wait is."""


def _interrupt(signum, frame):
    raise _Terminated
