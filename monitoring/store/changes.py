"""`Changes`: what an upload changes in one table, the value that passes from ingest (which
computes it, `monitoring.ingest.changes`) to the store (which writes it)."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from monitoring.schemas import Kind


@dataclass(frozen=True)
class Changes:
    kind: Kind
    new: pl.DataFrame  # canonical columns
    changed: pl.DataFrame  # canonical columns, new values
    cells: pl.DataFrame  # patient_id, visit_date?, column, old_value, new_value
    unchanged: int

    @property
    def rows(self) -> int:
        return self.new.height + self.changed.height + self.unchanged


def count_changes(changes: list[Changes]) -> dict[str, dict[str, int]]:
    """kind → new / changed / unchanged / rows, summed over the files of an upload."""
    out: dict[str, dict[str, int]] = {}
    for change in changes:
        bucket = out.setdefault(change.kind, {"new": 0, "changed": 0, "unchanged": 0, "rows": 0})
        bucket["new"] += change.new.height
        bucket["changed"] += change.changed.height
        bucket["unchanged"] += change.unchanged
        bucket["rows"] += change.rows
    return out
