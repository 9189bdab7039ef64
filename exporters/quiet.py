"""Silence converters (litert-torch, coremltools): their prints, tqdm bars and log lines would break
deploykit's own progress display. Used by the format modules around their converter calls."""

from __future__ import annotations

import logging
import os
import warnings


class quiet:
    """Silence the converters' progress prints and warnings (deploykit shows its own progress)."""

    def __enter__(self):
        self._level = logging.getLogger().level
        logging.getLogger().setLevel(logging.ERROR)
        self._warn = warnings.catch_warnings()
        self._warn.__enter__()
        warnings.simplefilter("ignore")
        self._fds = [os.dup(1), os.dup(2)]
        self._null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(self._null, 1)
        os.dup2(self._null, 2)
        return self

    def __exit__(self, *exc):
        os.dup2(self._fds[0], 1)
        os.dup2(self._fds[1], 2)
        for fd in (*self._fds, self._null):
            os.close(fd)
        self._warn.__exit__(*exc)
        logging.getLogger().setLevel(self._level)
        return False
