"""The only module that talks to the database. See `Store`.

`Store` is imported on first use, so that a light module of this package (`private_files`)
does not bring SQLAlchemy and polars into a command that never opens the store (`ltfu --help`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from monitoring.store.store import Store, UploadSummary

__all__ = ["Store", "UploadSummary"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from monitoring.store import store

        return getattr(store, name)
    raise AttributeError(f"module 'monitoring.store' has no attribute {name!r}")
