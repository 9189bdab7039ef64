"""The child side of :func:`deploykit.farm.connection.ask`: ``python -m deploykit.farm.answer QUESTION ADDRESS
TIMEOUT`` connects to the head, answers one question in one JSON line on stdout, and exits. A module of its own
so that the asking side (imported by the executor) never imports what the answer needs (the node's status,
which reads the executor's in-flight record)."""

from __future__ import annotations

import json
import os
import sys

from .connection import ANSWER, QUESTIONS


def _answer(question: str, address: str | None):
    import logging

    import ray

    # no RAY_AUTH_MODE of ours: Ray turns token authentication on when this host holds a token, and forcing it
    # without one made Ray's core abort with a C++ stack trace
    ray.init(address=address or "auto", logging_level=logging.ERROR, log_to_driver=False)
    try:
        if question == "nodes":
            return ray.nodes()
        from .node import status_here

        return status_here(ray)
    finally:
        ray.shutdown()


def main(argv: list[str]) -> None:
    import faulthandler

    question, address, timeout = argv[0], argv[1] or None, float(argv[2])
    # should the parent be killed before it can kill us: end anyway, a little after it would have
    faulthandler.dump_traceback_later(timeout + 5, exit=True, file=open(os.devnull, "w"))  # noqa: SIM115
    if question not in QUESTIONS:
        said = {"error": f"unknown question {question!r}"}
    else:
        try:
            said = {"answer": _answer(question, address)}
        except Exception as e:  # unreachable head, bad token, version mismatch: Ray's own words, one line
            lines = [x.strip() for x in str(e).splitlines() if x.strip()]
            said = {"error": (lines[-1] if lines else type(e).__name__)[:300]}
    print(ANSWER + json.dumps(said, default=str), flush=True)
    os._exit(0)  # the answer is out: Ray's exit handlers must not keep the parent waiting


if __name__ == "__main__":
    main(sys.argv[1:])
