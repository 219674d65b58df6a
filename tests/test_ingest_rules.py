"""Every rule of CONTRACT §1, each with a passing and a failing example."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from monitoring.errors import RejectedUploadError
from monitoring.ingest import ingest_files
from monitoring.store import Store

TODAY = date(2026, 11, 22)
PATIENT = {
    "patient_id": "P-001",
    "site": "A",
    "sex": "F",
    "age_at_infusion_years": "7",
    "product": "tisagenlecleucel",
    "infusion_date": "2024-01-10",
    "prior_hsct": "no",
    "prior_blinatumomab": "yes",
    "kmt2a_rearranged": "0",
    "baseline_bm_blasts_pct": "40",
    "hsct_date": "",
    "new_therapy_date": "",
    "last_contact_date": "2024-06-01",
    "death_date": "",
    "death_cause": "",
}
VISIT = {
    "patient_id": "P-001",
    "visit_date": "2024-02-07",
    "disease_status": "CR",
    "bm_blasts_pct": "1",
    "mrd_sample": "BM",
    "mrd_flow_fraction": "0",
    "mrd_ngs_fraction": "0.00001",
    "mrd_pcr_fraction": "",
    "bcell_pct_lymphocytes": "0.1",
    "bcell_per_ul": "2",
    "car_copies_per_ug": "15000",
    "car_pct_cd3": "4.5",
    "igg_mg_dl": "450",
    "ivig_within_30d": "false",
    "cd19_status": "",
    "relapse_site": "",
    "new_malignancy": "no",
    "comment": "all well",
}


def _csv(path: Path, rows: list[dict[str, str]]) -> Path:
    header = list(rows[0])
    lines = [",".join(header)] + [",".join(r[c] for c in header) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _upload(store: Store, tmp_path: Path, patient: dict[str, str], visit: dict[str, str] | None):
    files = [_csv(tmp_path / "patients.csv", [patient])]
    if visit is not None:
        files.append(_csv(tmp_path / "visits.csv", [visit]))
    return ingest_files(store, files, today=TODAY)


# (table, column, good value, bad value, words the problem must contain)
RULES = [
    ("patients", "patient_id", "CART-00017", "Jane Doe", "not a valid patient_id"),
    ("patients", "patient_id", "a.b_c-1", "x" * 41, "not a valid patient_id"),
    ("patients", "patient_id", "P-001", "", "required value missing"),
    ("patients", "sex", "m", "X", "unknown code"),
    ("patients", "age_at_infusion_years", "40", "41", "above the maximum 40"),
    ("patients", "age_at_infusion_years", "0", "-1", "below the minimum 0"),
    ("patients", "age_at_infusion_years", "7.5", "seven", "not a number"),
    ("patients", "infusion_date", "2024-01-10", "", "required value missing"),
    ("patients", "infusion_date", "2024-01-10", "2024-31-01", "day and month swapped"),
    ("patients", "prior_hsct", "YES", "maybe", "not a yes/no value"),
    ("patients", "prior_blinatumomab", "True", "2", "not a yes/no value"),
    ("patients", "kmt2a_rearranged", "1", "y", "not a yes/no value"),
    ("patients", "baseline_bm_blasts_pct", "100", "101", "above the maximum 100"),
    ("patients", "hsct_date", "2024-01-10", "2024-01-09", "before the infusion date"),
    ("patients", "new_therapy_date", "2024-05-01", "2023-12-31", "before the infusion date"),
    ("patients", "last_contact_date", "2024-06-01", "2024-01-01", "before the infusion date"),
    ("patients", "death_date", "2025-01-01", "2024-01-01", "before the infusion date"),
    ("patients", "death_cause", "Infection", "car crash", "unknown code"),
    ("visits", "patient_id", "P-001", "P-999", "unknown patient"),
    ("visits", "visit_date", "2023-11-11", "2023-11-10", "more than 60 days before the infusion"),
    ("visits", "visit_date", "2026-11-22", "2026-11-23", "in the future"),
    ("visits", "visit_date", "2024-02-07", "07/02/2024", "--date-format DMY"),
    ("visits", "disease_status", "cri", "remission", "unknown code"),
    ("visits", "bm_blasts_pct", "5", "150", "above the maximum 100"),
    ("visits", "mrd_sample", "pb", "CSF", "unknown code"),
    ("visits", "mrd_flow_fraction", "0.0001", "5", "was it entered as a percent? Use 0.05"),
    ("visits", "mrd_flow_fraction", "1e-4", "0.01%", "remove the % sign"),
    ("visits", "mrd_ngs_fraction", "0", "neg", "record 'not detected' as 0"),
    ("visits", "mrd_pcr_fraction", "0.5", "-0.1", "below the minimum 0"),
    ("visits", "bcell_pct_lymphocytes", "99", "100.5", "above the maximum 100"),
    ("visits", "bcell_per_ul", "0", "-3", "below the minimum 0"),
    ("visits", "car_copies_per_ug", "120000", "-1", "below the minimum 0"),
    ("visits", "car_pct_cd3", "0", "101", "above the maximum 100"),
    ("visits", "igg_mg_dl", "5000", "5001", "above the maximum 5000"),
    ("visits", "ivig_within_30d", "No", "sometimes", "not a yes/no value"),
    ("visits", "cd19_status", "Lineage_Switch", "CD19-", "unknown code"),
    ("visits", "relapse_site", "CNS", "liver", "unknown code"),
    ("visits", "new_malignancy", "0", "unknown", "not a yes/no value"),
]


@pytest.mark.parametrize(("table", "column", "good", "bad", "words"), RULES)
def test_rule_passes_good_and_blocks_bad(
    store: Store, tmp_path: Path, table, column, good, bad, words
):
    patient, visit = dict(PATIENT), dict(VISIT)
    target = patient if table == "patients" else visit
    if column == "death_date":
        patient["death_cause"] = "other"
    if column == "visit_date" and good.startswith("2026"):
        patient["last_contact_date"] = ""

    def set_value(value: str) -> None:
        target[column] = value
        if table == "patients" and column == "patient_id":
            visit["patient_id"] = value

    set_value(good)
    (tmp_path / "good").mkdir()
    ok = _upload(store, tmp_path / "good", patient, visit)
    assert ok.errors.height == 0

    set_value(bad)
    (tmp_path / "bad").mkdir()
    before = store.counts()
    with pytest.raises(RejectedUploadError) as caught:
        _upload(store, tmp_path / "bad", patient, visit)
    errors = caught.value.report.filter(pl.col("severity") == "error")
    hit = errors.filter(pl.col("problem").str.contains(words, literal=True))
    assert hit.height >= 1, errors.to_dicts()
    row = hit.row(0, named=True)
    assert row["file"] == f"{table}.csv"
    assert row["row"] == 2
    assert row["column"] in (column, "patient_id")
    assert store.counts() == before  # a rejected upload writes nothing


def test_mrd_sample_required_with_any_mrd_value(store: Store, tmp_path: Path):
    visit = dict(VISIT, mrd_sample="")
    with pytest.raises(RejectedUploadError) as caught:
        _upload(store, tmp_path, PATIENT, visit)
    errors = caught.value.report
    assert (
        errors.filter(pl.col("column") == "mrd_sample")["problem"]
        .str.contains("required when an MRD")
        .all()
    )
    # without any MRD value an empty mrd_sample is fine
    (tmp_path / "ok").mkdir()
    clean = dict(VISIT, mrd_sample="", mrd_flow_fraction="", mrd_ngs_fraction="")
    assert _upload(store, tmp_path / "ok", PATIENT, clean).errors.height == 0


def test_visit_after_death_is_blocked(store: Store, tmp_path: Path):
    patient = dict(PATIENT, death_date="2024-02-01", death_cause="relapse")
    with pytest.raises(RejectedUploadError) as caught:
        _upload(store, tmp_path, patient, VISIT)
    problems = caught.value.report["problem"].to_list()
    assert any("after the death date 2024-02-01" in p for p in problems)


def test_duplicate_key_inside_file_names_both_rows(store: Store, tmp_path: Path):
    files = [
        _csv(tmp_path / "patients.csv", [PATIENT]),
        _csv(tmp_path / "visits.csv", [VISIT, VISIT]),
    ]
    with pytest.raises(RejectedUploadError) as caught:
        ingest_files(store, files, today=TODAY)
    dup = caught.value.report.filter(pl.col("problem").str.contains("duplicate key"))
    assert dup["row"].to_list() == [2, 3]
    assert dup["value"].to_list() == ["P-001 2024-02-07"] * 2
    assert "rows 2, 3" in dup["problem"][0]


def test_duplicate_patient_key(store: Store, tmp_path: Path):
    with pytest.raises(RejectedUploadError) as caught:
        ingest_files(store, [_csv(tmp_path / "patients.csv", [PATIENT, PATIENT])], today=TODAY)
    assert caught.value.report.filter(pl.col("problem").str.contains("duplicate key")).height == 2


def test_visit_of_stored_patient_is_accepted(store: Store, tmp_path: Path):
    _upload(store, tmp_path, PATIENT, None)
    (tmp_path / "v").mkdir()
    result = ingest_files(store, [_csv(tmp_path / "v" / "visits.csv", [VISIT])], today=TODAY)
    assert result.counts()["visits"]["new"] == 1


def test_patients_upload_cannot_strand_stored_visits(store: Store, tmp_path: Path):
    _upload(store, tmp_path, PATIENT, VISIT)
    (tmp_path / "p").mkdir()
    moved = dict(PATIENT, death_date="2024-02-01", death_cause="relapse")
    with pytest.raises(RejectedUploadError) as caught:
        ingest_files(store, [_csv(tmp_path / "p" / "patients.csv", [moved])], today=TODAY)
    row = caught.value.report.row(0, named=True)
    assert row["file"] == "patients.csv" and row["row"] == 2 and row["patient_id"] == "P-001"
    assert "conflicts with a stored visit" in row["problem"]


def test_warnings_do_not_block(store: Store, tmp_path: Path):
    visit = dict(VISIT, ivig_within_30d="yes")
    visit["redcap_event_name"] = "day28_arm_1"
    result = _upload(store, tmp_path, PATIENT, visit)
    assert result.errors.height == 0
    problems = result.warnings["problem"].to_list()
    assert "unknown column: ignored" in problems
    assert any("within 30 days of IVIG" in p for p in problems)
    assert store.counts()["visits"] == 1


def test_every_problem_reported_at_once(store: Store, tmp_path: Path):
    bad_visit = dict(VISIT, disease_status="xx", mrd_flow_fraction="7", bm_blasts_pct="abc")
    with pytest.raises(RejectedUploadError) as caught:
        _upload(store, tmp_path, dict(PATIENT, sex="Q"), bad_visit)
    columns = set(caught.value.report["column"].to_list())
    assert {"sex", "disease_status", "mrd_flow_fraction", "bm_blasts_pct"} <= columns
    assert caught.value.report.columns == [
        "file",
        "row",
        "patient_id",
        "column",
        "value",
        "problem",
        "severity",
    ]


def test_dmy_and_mdy_date_formats(store: Store, tmp_path: Path):
    patient = dict(PATIENT, infusion_date="10/01/2024", last_contact_date="01.06.2024")
    path = _csv(tmp_path / "patients.csv", [patient])
    ingest_files(store, [path], date_format="DMY", today=TODAY)
    assert store.patients()["infusion_date"].to_list() == [date(2024, 1, 10)]
    (tmp_path / "m").mkdir()
    mdy = dict(PATIENT, patient_id="P-002", infusion_date="01/10/2024", last_contact_date="")
    ingest_files(
        store, [_csv(tmp_path / "m" / "patients.csv", [mdy])], date_format="MDY", today=TODAY
    )
    assert store.patients().filter(pl.col("patient_id") == "P-002")["infusion_date"][0] == date(
        2024, 1, 10
    )
