"""No patient data in logs; only synthetic, pseudonymous data in the repository."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import polars as pl
import pytest

from monitoring.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_no_patient_data_in_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys):
    caplog.set_level(logging.DEBUG)
    url = f"sqlite:///{tmp_path / 'p.db'}"
    assert main(["--db", url, "demo", "--patients", "30", "--seed", "9"]) == 0
    assert (
        main(["--db", url, "durability", "--endpoint", "efs", "--summary", "--format", "json"]) == 0
    )
    assert main(["--db", url, "alerts", "--status", "all", "--format", "json"]) == 0
    bad = tmp_path / "visits.csv"
    bad.write_text(
        "patient_id,visit_date,mrd_flow_fraction\nCART-00001,2024-99-01,7\n", encoding="utf-8"
    )
    assert main(["--db", url, "ingest", str(bad)]) == 1
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert not re.search(r"CART-\d{5}", logged), logged[:500]


def test_sample_data_is_pseudonymous():
    patients = pl.read_csv(ROOT / "sample_data" / "patients.csv", infer_schema=False)
    assert patients["patient_id"].str.contains(r"^CART-\d{5}$").all()
    forbidden = {
        "name",
        "first_name",
        "last_name",
        "dob",
        "date_of_birth",
        "birth_date",
        "mrn",
        "address",
    }
    for path in (ROOT / "sample_data").glob("*.csv"):
        header = path.read_bytes().splitlines()[0].decode("cp1252").lower()
        columns = set(re.split(r"[,;\t]", header))
        assert not columns & forbidden, path
