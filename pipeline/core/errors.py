"""The failures the pipeline reports on purpose (pipeline/base.py prints them without a traceback)."""

from __future__ import annotations


class ExpectedFailure(RuntimeError):
    """A failure the pipeline reports on purpose: the input or a check says no, not the code.

    Its message names what failed (file and line, rule, table) and `hint` says what to
    do; runs show both as one message, without a traceback. Retrying can not help.
    Any exception class with `retryable = False` (and, best, a `hint`) is treated the same.
    """

    retryable = False
    hint = "correct what the message names, then run the date again"

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        if hint:
            self.hint = hint


class PermanentFailure(ExpectedFailure):
    hint = "see the task's first failure above; it is not retried within this run"
