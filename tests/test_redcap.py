"""REDCap flat exports through a profile: round trip to the canonical store, records, checkboxes."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest

from monitoring.cli import main
from monitoring.errors import RejectedUploadError
from monitoring.ingest import ingest_files
from monitoring.ingest.mapping import map_file
from monitoring.ingest.profile import load_profile, read_profile
from monitoring.ingest.profiled import ingest_profiled_files
from monitoring.ingest.read import read_bytes
from monitoring.redcap_sample import redcap_exports, with_mistakes, with_not_detected_words
from monitoring.store import Store
from monitoring.synthetic import make_cohort, write_csv

PROFILE = Path(__file__).parent.parent / "sample_data" / "redcap" / "redcap.profile.toml"
AS_OF = "2026-06-30"


@pytest.fixture(scope="module")
def cohort_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("cohort")
    patients, visits = write_csv(make_cohort(60, seed=7), out)
    raw, label = redcap_exports(patients, visits)
    files = {"patients": patients, "visits": visits}
    for name, text in (("raw", with_not_detected_words(raw)), ("label", label)):
        files[name] = out / f"redcap_{name}.csv"
        files[name].write_text(text, encoding="utf-8")
    return files


def _derived(db: str, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """Durability tables and the alert queue of a store, as the command line prints them."""
    outputs = []
    for argv in (
        ["durability", "--endpoint", "efs", "--as-of", AS_OF, "--format", "csv"],
        ["durability", "--endpoint", "cir", "--as-of", AS_OF, "--format", "csv"],
        ["durability", "--endpoint", "bca", "--by", "product", "--as-of", AS_OF, "--format", "csv"],
        ["alerts", "--as-of", AS_OF, "--status", "all", "--format", "json"],
    ):
        assert main(["--db", db, *argv]) == 0
        outputs.append(capsys.readouterr().out)
    # first_seen_at is the commit time of the upload that first showed an alert: the one field
    # that differs between two stores by construction
    outputs[-1] = re.sub(r'"first_seen_at":"[^"]*"', '"first_seen_at":…', outputs[-1])
    return outputs


def test_round_trip_raw_and_label_give_the_canonical_store(
    cohort_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = read_profile(str(PROFILE))
    canonical_db = f"sqlite:///{tmp_path / 'canonical.db'}"
    canonical = Store.open(canonical_db)
    ingest_files(canonical, [cohort_files["patients"], cohort_files["visits"]])
    expected = (canonical.patients(), canonical.visits(), _derived(canonical_db, capsys))
    assert expected[1].height > 500 and "alert_id" in expected[2][3]
    for export in ("raw", "label"):
        db = f"sqlite:///{tmp_path / f'{export}.db'}"
        store = Store.open(db)
        result = ingest_profiled_files(store, [cohort_files[export]], profile)
        assert result.summary is not None and len(result.summary.upload_ids) == 2
        assert store.patients().equals(expected[0]), export
        assert store.visits().equals(expected[1]), export
        assert _derived(db, capsys) == expected[2], export
        canonical.close()
        store.close()


def test_reupload_of_a_redcap_export_changes_nothing_and_warns_nothing(
    cohort_files: dict[str, Path], tmp_path: Path
) -> None:
    profile = read_profile(str(PROFILE))
    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    first = ingest_profiled_files(store, [cohort_files["raw"]], profile)
    assert first.warnings.filter(pl.col("problem").str.starts_with("IgG measured")).height > 0
    again = ingest_profiled_files(store, [cohort_files["label"]], profile)
    assert again.counts()["visits"]["new"] == 0 and again.counts()["visits"]["changed"] == 0
    assert again.warnings.height == 0


def test_planted_mistakes_are_each_reported_in_source_terms(cohort_files: dict[str, Path]) -> None:
    profile = read_profile(str(PROFILE))
    text, mistakes = with_mistakes(cohort_files["raw"].read_text(encoding="utf-8"))
    mapped = map_file(read_bytes(text.encode(), "mistakes.csv"), profile)
    errors = mapped.problems.filter(pl.col("severity") == "error")
    assert errors.height == 3  # the fourth mistake (IgG text) is the canonical parser's
    records = {m.record for m in mistakes}
    assert set(errors["patient_id"].to_list()) <= records
    status = errors.filter(pl.col("column") == "disease_status").row(0, named=True)
    assert status["source_column"] == "status" and status["source_value"] == "7"


HEADER = "record_id,redcap_event_name,redcap_repeat_instrument,redcap_repeat_instance,"
SMALL_PROFILE = """layout = "redcap"
[patients]
patient_id = "record_id"
sex = { source = "sex", codes = { "1" = "F", "2" = "M" } }
infusion_date = "infusion_date"
[visits]
patient_id = "record_id"
visit_date = "assess_date"
relapse_site = { checkbox = "rs", codes = { "1" = "marrow", "2" = "cns", "3" = "testis" }, several = "combined" }
"""


def _small(rows: str, profile: str = SMALL_PROFILE):
    text = HEADER + "sex,infusion_date,assess_date,rs___1,rs___2,rs___3\n" + rows
    return map_file(read_bytes(text.encode(), "export.csv"), load_profile(profile))


def test_patient_fields_come_from_any_row_and_visits_from_dated_rows() -> None:
    mapped = _small(
        "A1,enrol_arm_1,,,1,2024-01-10,,,,\n"
        "A1,follow_arm_1,assessment,1,,,2024-02-10,0,0,0\n"
        "A1,follow_arm_1,assessment,2,,,2024-03-10,1,0,0\n"
        "A1,follow_arm_1,assessment,3,,,2024-04-10,Checked,Checked,Unchecked\n"
        "A1,outcome_arm_1,,,1,,,,,\n"
    )
    assert mapped.problems.height == 0
    patients, visits = mapped.tables
    assert patients.frame.drop("__row").rows() == [("A1", "F", "2024-01-10")]
    # none / one / several ticked
    assert visits.frame.select("visit_date", "relapse_site").rows() == [
        ("2024-02-10", None),
        ("2024-03-10", "marrow"),
        ("2024-04-10", "combined"),
    ]
    assert visits.frame["__row"].to_list() == [3, 4, 5]


def test_two_rows_of_one_record_that_disagree_are_refused_naming_both() -> None:
    mapped = _small("A1,enrol_arm_1,,,1,2024-01-10,,,,\nA1,outcome_arm_1,,,2,,,,,\n")
    (error,) = mapped.problems.to_dicts()
    assert error["row"] == 3 and error["column"] == "sex" and error["patient_id"] == "A1"
    assert error["problem"].startswith("rows 2 and 3 of record A1 disagree on sex: 'F' (row 2)")
    assert error["source_column"] == "sex" and error["source_value"] == "2"


def test_several_ticked_without_a_several_value_is_refused() -> None:
    profile = SMALL_PROFILE.replace(', several = "combined"', "")
    mapped = _small("A1,enrol_arm_1,,,1,2024-01-10,2024-01-10,1,1,0\n", profile)
    (error,) = mapped.problems.to_dicts()
    assert "several boxes of 'rs' are ticked" in error["problem"]
    assert error["source_value"] == "rs___1, rs___2"


def test_unknown_checkbox_code_and_bad_tick_are_refused() -> None:
    text = (
        HEADER + "sex,infusion_date,assess_date,rs___1,rs___9\nA1,e,,,1,2024-01-10,2024-01-11,2,0\n"
    )
    mapped = map_file(read_bytes(text.encode(), "x.csv"), load_profile(SMALL_PROFILE))
    problems = sorted(mapped.problems["problem"].to_list())
    assert problems[0].startswith("a checkbox is ticked (1, Checked) or not")
    assert problems[1].startswith("unknown code '9' of the checkbox group 'rs'")


def test_visit_values_without_a_date_are_refused() -> None:
    mapped = _small("A1,enrol_arm_1,,,1,2024-01-10,,1,0,0\n")
    (error,) = mapped.problems.to_dicts()
    assert (
        error["column"] == "visit_date" and "(relapse_site) but no visit date" in error["problem"]
    )


def test_rejected_redcap_upload_writes_neither_table(tmp_path: Path) -> None:
    text = HEADER + "sex,infusion_date,assess_date,rs___1,rs___2,rs___3\n"
    text += "A1,e,,,1,2024-01-10,,,,\nA1,f,a,1,,,2024-02-10,0,0,0\nA2,e,,,9,2024-01-10,,,,\n"
    path = tmp_path / "x.csv"
    path.write_text(text, encoding="utf-8")
    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    with pytest.raises(RejectedUploadError) as caught:
        ingest_profiled_files(store, [path], load_profile(SMALL_PROFILE))
    assert store.counts() == {"patients": 0, "visits": 0, "uploads": 0}
    row = caught.value.report.filter(pl.col("severity") == "error").row(0, named=True)
    assert (row["file"], row["row"], row["column"], row["source_value"]) == ("x.csv", 4, "sex", "9")
