"""The reproducibility stamp every figure, table and download carries: where its numbers came
from. The dashboard's `components.Stamp` writes the same text (a test holds them together)."""

from __future__ import annotations

from datetime import date

# what the dashboard's sidebar filters describe when none is set (dashboard/filters.py)
ALL_PATIENTS = "filters: none (all patients)"


def stamp_text(data_version: int, as_of: date, filters: str = ALL_PATIENTS) -> str:
    """ "Data version 7 · evaluated 2026-06-30 · filters: none (all patients)"."""
    return f"Data version {data_version} · evaluated {as_of.isoformat()} · {filters}"
