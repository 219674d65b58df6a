"""An upload reads only the stored rows of the patients it touches, on both backends."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from monitoring.errors import RejectedUploadError
from monitoring.ingest import ingest_files
from monitoring.store import Store
from tests.conftest import PATIENTS_HEADER, VISITS_HEADER, write_csv

TODAY = date(2026, 11, 22)
N = 12


def _store_of_many(store: Store, folder: Path) -> None:
    patients = [f"P-{i:03d},A,F,7,tisagenlecleucel,2024-01-10,,," for i in range(N)]
    visits = [f"P-{i:03d},2024-02-07,CR,1,BM,0,0.1,450,no" for i in range(N)]
    ingest_files(
        store,
        [
            write_csv(folder / "patients.csv", PATIENTS_HEADER, *patients),
            write_csv(folder / "visits.csv", VISITS_HEADER, *visits),
        ],
        today=TODAY,
    )


def test_snapshot_of_some_patients_is_the_whole_snapshot_filtered(store: Store, tmp_path: Path):
    _store_of_many(store, tmp_path)
    version, patients, visits = store.snapshot()
    ids = pl.Series(["P-003", "P-007", "P-007", None, "unknown"])
    some_version, some_patients, some_visits = store.snapshot_of(ids)
    assert some_version == version
    keep = pl.col("patient_id").is_in(["P-003", "P-007"])
    assert some_patients.equals(patients.filter(keep))
    assert some_visits.equals(visits.filter(keep))
    assert store.snapshot_of(pl.Series(["nobody"], dtype=pl.String))[1].height == 0


def test_delta_upload_validates_and_diffs_without_reading_the_store(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    _store_of_many(store, tmp_path)
    read_patients: list[int] = []
    original = Store.snapshot_of

    def spy(self: Store, ids: pl.Series) -> tuple[int, pl.DataFrame, pl.DataFrame]:
        result = original(self, ids)
        read_patients.append(result[1].height)
        return result

    monkeypatch.setattr(Store, "snapshot", lambda self: pytest.fail("read the whole store"))
    monkeypatch.setattr(Store, "snapshot_of", spy)
    delta = write_csv(
        tmp_path / "delta.csv",
        VISITS_HEADER,
        "P-001,2024-02-07,CR,1,BM,0,0.1,470,no",  # changed
        "P-001,2024-03-07,CR,,,,,,",  # new
        "P-002,2024-02-07,CR,1,BM,0,0.1,450,no",  # unchanged
    )
    result = ingest_files(store, [delta], today=TODAY)
    assert result.counts()["visits"] == {"new": 1, "changed": 1, "unchanged": 1, "rows": 3}
    assert read_patients == [2]
    # the cross-table rules still see the touched patients' stored rows
    death = write_csv(
        tmp_path / "death.csv",
        PATIENTS_HEADER,
        "P-001,A,F,7,tisagenlecleucel,2024-01-10,,2024-02-20,relapse",
    )
    with pytest.raises(RejectedUploadError) as rejected:
        ingest_files(store, [death], today=TODAY)
    assert "conflicts with a stored visit" in " ".join(rejected.value.report["problem"].to_list())
    unknown = write_csv(tmp_path / "unknown.csv", VISITS_HEADER, "P-999,2024-02-07,CR,,,,,,")
    with pytest.raises(RejectedUploadError):
        ingest_files(store, [unknown], today=TODAY)
