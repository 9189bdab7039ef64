"""Exports made in parallel: a sweep's files converted and verified in worker processes, one per core, before any
of its benchmarks runs, so that on a 2-core machine two conversions run at once (a conversion is mostly
single-threaded Python) and no benchmark ever shares the machine with one.

Nothing is skipped or trusted on the workers' word: each export writes its file, manifest and cache entry as a
serial export would, and the caller's serial pass then finds the file in its output folder (an export that failed
in a worker is tried again there, where its failure is said). The measured speed-up is in docs/decisions.md.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path


def workers_for(n_files: int) -> int:
    """Processes to export with: one per core (at most the number of files); 1 means export in the serial pass."""
    return max(1, min(n_files, os.cpu_count() or 1))


def export_all(requests: list, workers: int, on_done: Callable[[int, int], None] | None = None) -> set[Path]:
    """Export ``requests`` (ExportRequests) in ``workers`` processes; the paths converted and verified now."""
    import multiprocessing

    done: set[Path] = set()
    # spawn, not fork: the parent may hold torch's and the runtimes' threads, which a forked child cannot use
    ctx = multiprocessing.get_context("spawn")
    threads = max(1, (os.cpu_count() or 1) // workers)
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_limit_threads, initargs=(threads,)) as pool:
        futures = [pool.submit(_export_one, r) for r in requests]
        for i, future in enumerate(as_completed(futures), 1):
            path, fresh = future.result()
            if fresh:
                done.add(path)
            if on_done:
                on_done(i, len(requests))
    return done


def _limit_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)  # the workers share the cores: none may take them all


def _export_one(request) -> tuple[Path | None, bool]:
    """(the file, whether it was converted and verified now): a failure is left for the serial pass to say."""
    from deploykit.errors import DeploykitError

    from .pipeline import export

    try:
        r = export(request)
    except DeploykitError:
        return None, False
    return r.path, r.reused_from is None
