"""Ingest: read → parse → validate → compare with the store → one all-or-nothing write.

`ingest_files` never prints and never exits; it returns an `IngestResult` or raises
`RejectedUploadError` (blocking problems; carries the report) / `UnreadableFileError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from monitoring.errors import RejectedUploadError, StoreBusyError
from monitoring.ingest.changes import Changes, compute_changes, count_changes
from monitoring.ingest.parse import DateFormat
from monitoring.ingest.read import ROW_COLUMN, RawTable, read_table
from monitoring.ingest.report import drop_untouched_warnings, untouched_rows
from monitoring.ingest.site_scope import hide_outside_patients, scope_problems
from monitoring.ingest.validate import (
    REPORT_COLUMNS,
    ParsedFile,
    cross_table_problems,
    empty_report,
    parse_file,
)
from monitoring.schemas import Kind

if TYPE_CHECKING:  # SQLAlchemy is not imported by the reader worker, a submodule's process
    from monitoring.store import Store, UploadSummary

__all__ = ["IngestResult", "ingest_files", "ingest_tables", "read_table"]
_SNAPSHOT_ATTEMPTS = 20


@dataclass(frozen=True)
class IngestResult:
    report: pl.DataFrame  # file, row, patient_id, column, value, problem, severity
    changes: list[tuple[str, str, Changes]]
    summary: UploadSummary | None  # None for a dry run

    @property
    def errors(self) -> pl.DataFrame:
        return self.report.filter(pl.col("severity") == "error")

    @property
    def warnings(self) -> pl.DataFrame:
        return self.report.filter(pl.col("severity") == "warning")

    def counts(self) -> dict[str, dict[str, int]]:
        return count_changes([change for _name, _sha, change in self.changes])


def _change_warnings(name: str, change: Changes) -> pl.DataFrame:
    if not change.cells.height:
        return empty_report()
    return change.cells.select(
        pl.lit(name).alias("file"),
        pl.lit(None, pl.Int64).alias("row"),
        "patient_id",
        "column",
        pl.col("new_value").alias("value"),
        pl.concat_str(
            pl.lit("changed since the stored version: "),
            pl.col("old_value").fill_null("(empty)"),
            pl.lit(" → "),
            pl.col("new_value").fill_null("(empty)"),
            pl.when(pl.col("visit_date").is_not_null())
            .then(
                pl.concat_str(pl.lit(" (visit "), pl.col("visit_date").cast(pl.String), pl.lit(")"))
            )
            .otherwise(pl.lit("")),
        ).alias("problem"),
        pl.lit("warning").alias("severity"),
    )


def ingest_tables(
    store: Store,
    raws: Sequence[RawTable],
    *,
    kind: Kind | None = None,
    date_format: DateFormat = "ISO",
    dry_run: bool = False,
    user: str = "cli",
    today: date | None = None,
) -> IngestResult:
    parsed = [parse_file(raw, kind=kind, date_format=date_format) for raw in raws]
    return _ingest_parsed(store, parsed, dry_run=dry_run, user=user, today=today)


def _ingest_parsed(
    store: Store,
    parsed: list[ParsedFile],
    *,
    dry_run: bool,
    user: str,
    today: date | None,
) -> IngestResult:
    # Validation and diff read a snapshot without the write lock (readers are not blocked);
    # the write re-checks the snapshot's version under the lock and a changed store means
    # validating and diffing again, so two uploads of the same cell each record a true history.
    from monitoring.store.store import SnapshotChangedError

    for _attempt in range(_SNAPSHOT_ATTEMPTS):
        try:
            result, stored = _validate_and_store(
                store, parsed, dry_run=dry_run, user=user, today=today
            )
        except SnapshotChangedError:
            continue
        # the typed files are no longer needed: the first-seen evaluation below holds the store
        parsed.clear()
        summary = result.summary
        if summary is not None and summary.upload_ids:
            from monitoring.committed_rows import rows_after_commit
            from monitoring.first_seen import record_upload

            changes = [c for _n, _s, c in result.changes]
            touched = pl.concat(
                [c.new.select("patient_id") for c in changes]
                + [c.changed.select("patient_id") for c in changes]
            )["patient_id"].unique()
            rows = rows_after_commit(*stored, changes, touched)  # no second read of the store
            record_upload(
                store,
                summary.upload_ids[-1],
                touched,
                rows=rows,
                clinical_version=summary.clinical_version,
            )
        return result
    raise StoreBusyError(
        f"The store changed under this upload {_SNAPSHOT_ATTEMPTS} times in a row (other uploads "
        "kept landing); nothing was written. Try again in a minute."
    )


def _validate_and_store(
    store: Store,
    parsed: list[ParsedFile],
    *,
    dry_run: bool,
    user: str,
    today: date | None,
) -> tuple[IngestResult, tuple[pl.DataFrame, pl.DataFrame]]:
    # only the stored rows of the patients this upload touches (cost follows the upload)
    touched = pl.concat(
        [
            f.frame.get_column("patient_id").cast(pl.String)
            for f in parsed
            if "patient_id" in f.frame.columns
        ]
        or [pl.Series([], dtype=pl.String)]
    )
    # read without the account's site scope: another site's patient must be seen to be refused
    version, stored_patients, stored_visits = store.unscoped().snapshot_of(touched)
    problems = [f.problems for f in parsed]
    cross = cross_table_problems(
        parsed, stored_patients, stored_visits, today=today or date.today()
    )
    # checks against another site's stored rows would quote them: only the scope's refusal
    problems.append(hide_outside_patients(cross, stored_patients, store.scope))
    problems.append(scope_problems(parsed, stored_patients, store.scope))
    report = _sorted(pl.concat(problems))
    changes: list[tuple[str, str, Changes]] = []
    for f in parsed:
        stored = stored_patients if f.kind == "patients" else stored_visits
        change = compute_changes(f.kind, f.frame.drop(ROW_COLUMN), stored)
        changes.append((f.name, f.sha256, change))
        # warnings only for rows this upload adds or changes, rejected or not
        report = drop_untouched_warnings(
            report, f.name, f.kind, untouched_rows(f.kind, f.frame, change)
        )
    if report.filter(pl.col("severity") == "error").height:
        raise RejectedUploadError(_rejection_sentence(report), report)
    changed = [_change_warnings(name, change) for name, _sha, change in changes]
    if any(warnings.height for warnings in changed):  # (else sorted already: filters keep order)
        report = _sorted(pl.concat([report, *changed]))
    summary = None if dry_run else store.apply_upload(changes, user=user, expected_version=version)
    return IngestResult(report, changes, summary), (stored_patients, stored_visits)


def ingest_files(
    store: Store,
    paths: Sequence[str | Path],
    *,
    kind: Kind | None = None,
    date_format: DateFormat = "ISO",
    dry_run: bool = False,
    user: str = "cli",
    sheet: str | None = None,
    today: date | None = None,
) -> IngestResult:
    from monitoring.ingest.read_typed import read_typed

    # typed in the reader worker; a file whose typing raised there comes back as text cells
    reads = [read_typed(p, sheet=sheet, kind=kind, date_format=date_format) for p in paths]
    # each file's text cells go as soon as it is parsed: only the typed frames stay
    parsed: list[ParsedFile] = []
    while reads:
        first = reads.pop(0)
        if isinstance(first, RawTable):
            first = parse_file(first, kind=kind, date_format=date_format)
        parsed.append(first)
    return _ingest_parsed(store, parsed, dry_run=dry_run, user=user, today=today)


def _sorted(report: pl.DataFrame) -> pl.DataFrame:
    return report.select(REPORT_COLUMNS).sort(
        ["severity", "file", "row", "column"], nulls_last=True, maintain_order=True
    )


def _rejection_sentence(report: pl.DataFrame) -> str:
    errors = report.filter(pl.col("severity") == "error")
    files = errors["file"].unique(maintain_order=True).to_list()
    return (
        f"Upload rejected: {errors.height} blocking problem(s) in {', '.join(files)}. "
        "Nothing was written. Fix the rows listed and upload again."
    )
