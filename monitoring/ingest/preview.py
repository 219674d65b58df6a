"""What an upload would do, before anything is written: the typed dry-run result the Data page shows.

The dashboard caches it (`st.cache_data` pickles it), so it holds only frames and plain values.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from monitoring.errors import RejectedUploadError
from monitoring.ingest import IngestResult
from monitoring.ingest.validate import empty_report
from monitoring.schemas import Kind
from monitoring.store.changes import Changes


@dataclass(frozen=True)
class TablePreview:
    """One table of the upload (patients or visits), summed over its files."""

    kind: Kind
    new: int
    changed: int
    unchanged: int
    new_rows: pl.DataFrame  # canonical columns of the rows that would be added
    changed_cells: pl.DataFrame  # patient_id, visit_date?, column, old_value, new_value


@dataclass(frozen=True)
class UploadPreview:
    rejected: bool
    message: str  # the refusal's sentence; empty when the upload can be committed
    report: pl.DataFrame  # file, row, patient_id, column, value, problem, severity
    tables: tuple[TablePreview, ...]


def _table(kind: Kind, changes: list[Changes]) -> TablePreview:
    return TablePreview(
        kind=kind,
        new=sum(change.new.height for change in changes),
        changed=sum(change.changed.height for change in changes),
        unchanged=sum(change.unchanged for change in changes),
        new_rows=pl.concat([change.new for change in changes], how="diagonal_relaxed"),
        changed_cells=pl.concat([change.cells for change in changes], how="diagonal_relaxed"),
    )


def preview_of(result: IngestResult) -> UploadPreview:
    """The preview of a dry run that passed validation."""
    by_kind: dict[Kind, list[Changes]] = {}
    for _name, _sha, change in result.changes:
        by_kind.setdefault(change.kind, []).append(change)
    return UploadPreview(
        rejected=False,
        message="",
        report=result.report,
        tables=tuple(_table(kind, changes) for kind, changes in by_kind.items()),
    )


def rejected_preview(exc: RejectedUploadError) -> UploadPreview:
    """The preview of an upload that validation refused: its sentence and its report, no tables."""
    report = exc.report if isinstance(exc.report, pl.DataFrame) else empty_report()
    return UploadPreview(rejected=True, message=str(exc), report=report, tables=())
