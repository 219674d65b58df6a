"""The one place that turns the core's errors (monitoring/errors.py) into exit statuses:
0 done, 1 rejected input, 2 usage or unreadable file (CONTRACT.md §5)."""

from __future__ import annotations

from monitoring.errors import (
    BackupRefusedError,
    ConfigError,
    ExportUnavailableError,
    LtfuError,
    NotFoundError,
    PermissionDeniedError,
    RejectedUploadError,
    SignInError,
    StoreBusyError,
    StoreWriteError,
    UnreadableFileError,
    UsageError,
)

DONE = 0
REJECTED = 1
USAGE = 2

EXIT_CODES: dict[type[LtfuError], int] = {
    RejectedUploadError: REJECTED,
    StoreBusyError: REJECTED,
    StoreWriteError: REJECTED,
    SignInError: REJECTED,
    UsageError: USAGE,
    ConfigError: USAGE,
    ExportUnavailableError: USAGE,
    UnreadableFileError: USAGE,
    BackupRefusedError: USAGE,
    NotFoundError: USAGE,
    PermissionDeniedError: USAGE,
    LtfuError: USAGE,
}


def exit_code(error: LtfuError) -> int:
    """The status of the nearest class in the error's ancestry (a new subclass inherits it)."""
    for cls in type(error).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return USAGE
