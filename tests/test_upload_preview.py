"""The Data page's dry run is a typed `UploadPreview`: counts, new rows and changed cells per table."""

from __future__ import annotations

import pickle

from monitoring.errors import RejectedUploadError
from monitoring.ingest import ingest_tables
from monitoring.ingest.preview import UploadPreview, preview_of, rejected_preview
from monitoring.ingest.read import read_bytes
from monitoring.store import Store
from tests.conftest import PATIENTS_HEADER, VISITS_HEADER

PATIENTS = "\n".join(
    [
        PATIENTS_HEADER,
        "P-001,A,F,7,tisagenlecleucel,2024-01-10,,,",
        "P-002,B,M,12.5,tisagenlecleucel,2024-02-10,,,",
    ]
).encode()
VISITS = "\n".join(
    [
        VISITS_HEADER,
        "P-001,2024-02-07,CR,1,BM,0,0,600,false",
        "P-002,2024-03-09,CR,1,BM,0,0,600,false",
    ]
).encode()


def _dry_run(store: Store, *files: tuple[str, bytes]) -> UploadPreview:
    raws = [read_bytes(content, name) for name, content in files]
    try:
        return preview_of(ingest_tables(store, raws, dry_run=True))
    except RejectedUploadError as exc:
        return rejected_preview(exc)


def test_preview_counts_new_and_changed_per_table_and_writes_nothing(store: Store) -> None:
    ingest_tables(store, [read_bytes(PATIENTS, "patients.csv")])
    changed_patients = PATIENTS.replace(b"P-002,B,M,12.5", b"P-002,B,M,13.5")
    preview = _dry_run(store, ("patients.csv", changed_patients), ("visits.csv", VISITS))

    assert not preview.rejected and preview.message == ""
    tables = {table.kind: table for table in preview.tables}
    assert (tables["patients"].new, tables["patients"].changed, tables["patients"].unchanged) == (
        0,
        1,
        1,
    )
    assert (tables["visits"].new, tables["visits"].changed, tables["visits"].unchanged) == (2, 0, 0)
    assert sorted(tables["visits"].new_rows["patient_id"].to_list()) == ["P-001", "P-002"]
    cell = tables["patients"].changed_cells.row(0, named=True)
    assert (cell["patient_id"], cell["column"]) == ("P-002", "age_at_infusion_years")
    assert store.visits().height == 0  # a dry run writes nothing
    # the dashboard caches the preview with st.cache_data, which pickles it
    assert pickle.loads(pickle.dumps(preview)).tables[1].new == 2


def test_a_refused_upload_previews_its_sentence_and_report(store: Store) -> None:
    bad = VISITS.replace(b"P-002,2024-03-09", b"P-999,2024-03-09")
    preview = _dry_run(store, ("patients.csv", PATIENTS), ("visits.csv", bad))

    assert preview.rejected and preview.tables == ()
    assert "visits.csv" in preview.message
    errors = preview.report.filter(preview.report["severity"] == "error")
    assert errors["patient_id"].to_list() == ["P-999"]
