"""Listeners: how long-running work (bench, sweep, export on demand) reports progress. Ground floor.

As in TFLite's benchmark tool, the work calls a listener at fixed points and knows nothing about how progress is
shown: the CLI's progress bar is one listener, a test's recorder another, the farm's driver a third.
Every method has a do-nothing default, so a listener overrides only what it shows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .measurement import Measurement


class Listener:
    def planned(self, total: int, skipped: int = 0, title: str = "") -> None:
        """The work is known: ``total`` cells to run, ``skipped`` already done."""

    def started(self, label: str) -> None:
        """One cell (a model on a target) starts."""

    def finished(self, m: Measurement) -> None:
        """One cell finished (ok, failed or unsupported) and is stored."""

    def step(self) -> None:
        """One unit of planned work done that is not a stored cell (a round of an interleaved A/B run)."""

    def warn(self, text: str) -> None:
        """Something the user should see that does not stop the work."""


class Recorder(Listener):
    """Keeps what it is told: the finished Measurements and the warnings."""

    def __init__(self) -> None:
        self.results: list[Measurement] = []
        self.warnings: list[str] = []
        self.labels: list[str] = []

    def started(self, label: str) -> None:
        self.labels.append(label)

    def finished(self, m: Measurement) -> None:
        self.results.append(m)

    def warn(self, text: str) -> None:
        self.warnings.append(text)
