"""The core's errors. The CLI maps them to exit codes, the dashboard to one message.

LtfuError
├── UsageError            bad arguments or an unusable request        → exit 2
├── UnreadableFileError   empty, binary, wrong type, too large        → exit 2
├── RejectedUploadError   blocking validation errors (carries report) → exit 1
├── StoreBusyError        the store stayed locked past the bounded wait
├── NotFoundError         an alert, patient or user that does not exist
└── PermissionDeniedError a role may not do this
"""

from __future__ import annotations

from typing import Any


class LtfuError(Exception):
    """Base of every error the core raises on purpose."""

    exit_code = 2


class UsageError(LtfuError):
    exit_code = 2


class UnreadableFileError(LtfuError):
    exit_code = 2


class RejectedUploadError(LtfuError):
    """An upload with blocking errors; `report` is the validation report."""

    exit_code = 1

    def __init__(self, message: str, report: Any = None) -> None:
        super().__init__(message)
        self.report = report


class StoreBusyError(LtfuError):
    exit_code = 1


class NotFoundError(LtfuError):
    exit_code = 2


class PermissionDeniedError(LtfuError):
    exit_code = 2
