"""Ingest through a mapping profile: read → map (profile) → the canonical ingest → one report
that names both the canonical column and the source column and value.

All files of one call, and both tables of a REDCap file, are one all-or-nothing upload.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from monitoring.errors import RejectedUploadError
from monitoring.ingest import IngestResult, ingest_tables
from monitoring.ingest.mapping import (
    SOURCE_REPORT_COLUMNS,
    MappedFile,
    annotate,
    map_file,
)
from monitoring.ingest.profile import Profile, ProfileError
from monitoring.ingest.read import RawTable, read_table
from monitoring.store import Store


def _sorted(report: pl.DataFrame) -> pl.DataFrame:
    return report.select(SOURCE_REPORT_COLUMNS).sort(
        ["severity", "file", "row", "column"], nulls_last=True, maintain_order=True
    )


def check_reviewed(profile: Profile) -> None:
    pending = profile.to_review()
    if pending:
        raise ProfileError(
            f"{profile.name}: {len(pending)} mapping(s) are still marked review = true "
            f"({', '.join(pending[:6])}{' …' if len(pending) > 6 else ''}); check each with "
            "`ltfu profile check`, then remove the mark."
        )


@dataclass(frozen=True)
class ProfiledUpload:
    files: list[MappedFile]

    @property
    def tables(self) -> list[RawTable]:
        return [t for f in self.files for t in f.tables]

    @property
    def problems(self) -> pl.DataFrame:
        return pl.concat([f.problems for f in self.files])


def map_raws(raws: Sequence[RawTable], profile: Profile) -> ProfiledUpload:
    return ProfiledUpload([map_file(raw, profile) for raw in raws])


def ingest_profiled_tables(
    store: Store,
    raws: Sequence[RawTable],
    profile: Profile,
    *,
    dry_run: bool = False,
    user: str = "cli",
    today: date | None = None,
) -> IngestResult:
    check_reviewed(profile)
    upload = map_raws(raws, profile)
    mapping_problems = upload.problems
    blocked = mapping_problems.filter(pl.col("severity") == "error").height > 0
    rejected = False
    result: IngestResult | None = None
    try:
        result = ingest_tables(
            store,
            upload.tables,
            date_format=profile.date_format,
            dry_run=dry_run or blocked,
            user=user,
            today=today,
        )
        report = result.report
    except RejectedUploadError as exc:
        rejected = True
        report = exc.report
    report = annotate(report, upload.files, profile)
    # a cell the profile could not convert is reported once, by the profile, in source terms
    failed = mapping_problems.filter(pl.col("row") != 1).select("file", "row", "column").unique()
    report = report.join(failed, on=["file", "row", "column"], how="anti")
    report = _sorted(pl.concat([mapping_problems, report]))
    errors = report.filter(pl.col("severity") == "error")
    if rejected or blocked or errors.height:
        files = errors["file"].unique(maintain_order=True).to_list()
        raise RejectedUploadError(
            f"Upload rejected: {errors.height} blocking problem(s) in {', '.join(files)}. "
            "Nothing was written. Fix the rows listed (or the profile) and upload again.",
            report,
        )
    assert result is not None
    return IngestResult(report, result.changes, result.summary)


def ingest_profiled_files(
    store: Store,
    paths: Sequence[str | Path],
    profile: Profile,
    *,
    dry_run: bool = False,
    user: str = "cli",
    sheet: str | None = None,
    today: date | None = None,
) -> IngestResult:
    raws = [read_table(p, sheet=sheet) for p in paths]
    return ingest_profiled_tables(store, raws, profile, dry_run=dry_run, user=user, today=today)
