"""The committed REDCap and lab samples are what the script writes, and each loads as the README
shows (clean exports accepted, the planted mistakes reported in source terms)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import polars as pl
import pytest

from monitoring.errors import RejectedUploadError
from monitoring.ingest import ingest_files
from monitoring.ingest.profile import read_profile
from monitoring.ingest.profiled import ingest_profiled_files
from monitoring.store import Store

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_data"


def test_committed_samples_match_the_generator() -> None:
    spec = importlib.util.spec_from_file_location(
        "make", ROOT / "scripts" / "make_redcap_samples.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for path, content in module.build().items():
        assert path.read_bytes() == content, f"{path} differs: run scripts/make_redcap_samples.py"


def test_mistakes_export_is_rejected_naming_source_columns(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    profile = read_profile(str(SAMPLES / "redcap" / "redcap.profile.toml"))
    with pytest.raises(RejectedUploadError) as caught:
        ingest_profiled_files(store, [SAMPLES / "redcap" / "export_with_mistakes.csv"], profile)
    errors = caught.value.report.filter(pl.col("severity") == "error")
    assert errors.select("column", "source_column", "source_value").sort("column").rows() == [
        ("disease_status", "status", "7"),
        ("igg_mg_dl", "igg_gl", "see comment"),
        ("mrd_sample", "mrd_specimen", None),
        ("sex", "sex", "2"),
        ("visit_date", "assess_date", None),
    ]
    assert store.counts()["uploads"] == 0


def test_lab_sheet_loads_with_its_profile(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    ingest_files(store, [SAMPLES / "patients.csv"])
    profile = read_profile(str(SAMPLES / "lab" / "lab.profile.toml"))
    result = ingest_profiled_files(store, [SAMPLES / "lab" / "lab_results.xlsx"], profile)
    assert result.counts()["visits"]["new"] > 50
    canonical = pl.read_csv(SAMPLES / "visits.csv", infer_schema_length=None).with_columns(
        pl.col("visit_date").str.to_date()
    )
    stored = store.visits().select("patient_id", "visit_date", "mrd_flow_fraction", "igg_mg_dl")
    joined = stored.join(canonical, on=["patient_id", "visit_date"], suffix="_canonical")
    assert joined.height == stored.height
    # percent → fraction and g/L → mg/dL give exactly the canonical numbers
    for column in ("mrd_flow_fraction", "igg_mg_dl"):
        assert joined[column].eq_missing(joined[f"{column}_canonical"]).all(), column
