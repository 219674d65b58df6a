"""The only module that talks to the database. See `Store`."""

from monitoring.store.store import Store, UploadSummary

__all__ = ["Store", "UploadSummary"]
