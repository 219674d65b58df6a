"""An upload of patients the store does not hold skips the comparison with stored rows (there
are none): every row is new (`changes.compute_changes`), no row is untouched
(`report.untouched_rows`), and the rows after the commit are the upload's own
(`committed_rows.rows_after_commit`). Each short path must give exactly what the general one
gives. Here every call of a real first ingest and of a second upload of new patients is checked
against the general path, on both backends; then the odd frames (a null key, a repeated key)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import monitoring.committed_rows as committed_rows
import monitoring.ingest as ingest
from monitoring.ingest import ingest_files
from monitoring.ingest.changes import _compared, compute_changes
from monitoring.ingest.read import ROW_COLUMN
from monitoring.ingest.report import _untouched_by_join, untouched_rows
from monitoring.schemas import Kind, polars_schema
from monitoring.store import Store
from monitoring.store.changes import Changes
from monitoring.synthetic import make_cohort, write_csv


def _same_changes(a: Changes, b: Changes) -> bool:
    return (
        a.kind == b.kind
        and a.unchanged == b.unchanged
        and all(
            x.equals(y) and x.schema == y.schema
            for x, y in ((a.new, b.new), (a.changed, b.changed), (a.cells, b.cells))
        )
    )


def test_every_call_of_new_patients_uploads_equals_the_general_path(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    short_paths: list[str] = []
    real_rows_after = committed_rows.rows_after_commit

    def changes(kind: Kind, incoming: pl.DataFrame, stored: pl.DataFrame) -> Changes:
        result = compute_changes(kind, incoming, stored)
        general = _compared(kind, incoming.select(result.new.columns), stored)
        assert _same_changes(result, general)
        short_paths.append(f"changes:{stored.is_empty()}")
        return result

    def untouched(kind: Kind, frame: pl.DataFrame, change: Changes) -> pl.Series:
        result = untouched_rows(kind, frame, change)
        assert result.equals(_untouched_by_join(kind, frame, change))
        return result

    def rows_after(*args: Any) -> tuple[pl.DataFrame, pl.DataFrame] | None:
        result = real_rows_after(*args)
        assert result is not None
        ids = args[-1].cast(pl.String).unique().implode()
        for rows in result:  # the general path filters them by the touched patients
            assert rows.filter(pl.col("patient_id").is_in(ids)).equals(rows)
        short_paths.append("rows")
        return result

    monkeypatch.setattr(ingest, "compute_changes", changes)
    monkeypatch.setattr(ingest, "untouched_rows", untouched)
    monkeypatch.setattr(committed_rows, "rows_after_commit", rows_after)
    cohort = make_cohort(40, seed=3)
    first = write_csv(cohort, tmp_path / "first")
    store = Store.open(store_url)
    try:
        result = ingest_files(store, first, user="t")
        assert result.counts()["visits"]["new"] == cohort.visits.height
        # new patients into a store that holds others: their stored rows are none either
        later = make_cohort(45, seed=3)
        new_ids = pl.col("patient_id").is_in(cohort.patients["patient_id"].implode()).not_()
        second = tmp_path / "second"
        second.mkdir()
        for name, frame in (("patients", later.patients), ("visits", later.visits)):
            frame.filter(new_ids).write_csv(
                second / f"{name}.csv",
                float_scientific=False,
                date_format="%Y-%m-%d",
                null_value="",
            )
        again = ingest_files(store, sorted(second.iterdir()), user="t")
        assert again.counts()["patients"]["new"] == 5
    finally:
        store.close()
    assert short_paths == ["changes:True", "changes:True", "rows"] * 2


def _typed(kind: Kind, rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=polars_schema(kind))


@pytest.mark.parametrize("patient_id", [None, "P-1"])
def test_a_null_or_repeated_key_takes_the_general_path_where_it_must(
    patient_id: str | None,
) -> None:
    kind: Kind = "visits"
    incoming = _typed(
        kind,
        [
            {"patient_id": "P-1", "visit_date": date(2024, 1, 2)},
            {"patient_id": patient_id, "visit_date": date(2024, 1, 2)},
        ],
    )
    stored = pl.DataFrame(schema=polars_schema(kind))
    change = compute_changes(kind, incoming, stored)
    assert _same_changes(change, _compared(kind, incoming, stored))
    frame = incoming.with_row_index(ROW_COLUMN, offset=2)
    assert untouched_rows(kind, frame, change).equals(_untouched_by_join(kind, frame, change))
    no_patients = pl.DataFrame(schema=polars_schema("patients"))
    rows = committed_rows.rows_after_commit(no_patients, stored, [change], incoming["patient_id"])
    if patient_id is None:  # the general path drops the row of no patient
        assert rows is not None and rows[1].height == 1
    else:  # a repeated key: the database decides, not this
        assert rows is None
