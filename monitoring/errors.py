"""The core's errors. The CLI maps them to exit codes (monitoring/cli/exit_codes.py), the dashboard
to one message.

LtfuError
├── UsageError            bad arguments or an unusable request        → exit 2
├── UnreadableFileError   empty, binary, wrong type, too large        → exit 2
│   └── BackupRefusedError a backup that failed verification, or a restore rolled back
├── RejectedUploadError   blocking validation errors (carries report) → exit 1
├── StoreBusyError        the store stayed locked past the bounded wait → exit 1
├── StoreWriteError       the database refused a write (the sentence carries no data) → exit 1
├── NotFoundError         an alert, patient or user that does not exist → exit 2
├── PermissionDeniedError a role may not do this                      → exit 2
├── SignInError           a sign-in that did not succeed              → exit 1
├── ConfigError           ltfu.toml cannot be used (names key and file) → exit 2
└── ExportUnavailableError a figure cannot be exported (kaleido has no Chromium) → exit 2
"""

from __future__ import annotations

from typing import Any


class LtfuError(Exception):
    """Base of every error the core raises on purpose."""


class UsageError(LtfuError):
    pass


class UnreadableFileError(LtfuError):
    pass


class BackupRefusedError(UnreadableFileError):
    """A backup that failed verification, or a restore that was rolled back (exit 2)."""


class RejectedUploadError(LtfuError):
    """An upload with blocking errors; `report` is the validation report."""

    def __init__(self, message: str, report: Any = None) -> None:
        super().__init__(message)
        self.report = report


class StoreBusyError(LtfuError):
    pass


class StoreWriteError(LtfuError):
    """A database error during a write, as one sentence without SQL, values or paths."""


class NotFoundError(LtfuError):
    pass


class PermissionDeniedError(LtfuError):
    pass


class SignInError(LtfuError):
    """A sign-in that did not succeed; the message is safe to show."""


class ConfigError(LtfuError):
    """The site settings file cannot be used; the message names the file and the key."""


class ExportUnavailableError(LtfuError):
    """kaleido could not produce an image (no Chromium, or it failed to start)."""
