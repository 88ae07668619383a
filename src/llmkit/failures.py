"""The failures checks raise (no torch import: the sandbox's launch code and the CLI need them)."""

from __future__ import annotations


class CheckFailure(AssertionError):
    """A check failed; the message is the whole story for the learner."""

    def __init__(self, message: str, hint: str | None = None):
        if hint:
            message = f"{message}\nHint: {hint}"
        super().__init__(message)


class BannedCallError(CheckFailure):
    """Learner code reached a banned library function at run time."""
