"""Errors a user can cause.

Every mistake a user can make (an unknown model name, a resolution the architecture cannot take, a bad
weights file) raises a :class:`DeploykitError`. The CLI prints its one-line message and hint and exits
with status 2, never a traceback. Bugs in deploykit itself stay ordinary exceptions.
"""

from __future__ import annotations

import re

# Terminal control sequences (colour, cursor movement) that libraries' own messages carry when they think they
# talk to a terminal: CSI sequences like ESC[96m, OSC sequences like hyperlinks, and lone ESC/BEL bytes.
_TERMINAL_CONTROL = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|[\x1b\x07]")


def plain_text(text: str) -> str:
    """``text`` without terminal control sequences: a converter's coloured error, stored or printed, reads as text."""
    return _TERMINAL_CONTROL.sub("", text)


class DeploykitError(Exception):
    """A user-caused error: one line of message plus an optional hint on how to fix it."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None):
        # One line: the CLI prints exactly this, so newlines would break the contract.
        self.message = " ".join(plain_text(message).split())
        self.hint = " ".join(plain_text(hint).split()) if hint else None
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} (hint: {self.hint})"


class UnknownModelError(DeploykitError):
    """A model name that neither a canonical name nor an alias resolves."""


class ResolutionError(DeploykitError):
    """An input resolution the architecture cannot take."""


class WeightsError(DeploykitError):
    """A weights file that cannot be read or does not fit the model (missing/extra/mis-shaped keys)."""


class Interrupted(DeploykitError):
    """Ctrl-C during a command that keeps what it finished: the message says what is kept (exit status 130)."""

    exit_code = 130


class FileError(DeploykitError):
    """A file deploykit cannot read or run (not the user's typing, but the file): one line, exit status 1."""

    exit_code = 1
