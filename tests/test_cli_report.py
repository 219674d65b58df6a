"""`ltfu report`: the cohort report written as HTML (0600, audit-logged), as PDF through
Chromium, and refused in one sentence (exit 2, nothing written) when it cannot be made."""

from __future__ import annotations

import json
import re
import stat
from datetime import date
from pathlib import Path

import pytest

from monitoring.cli import main
from monitoring.cohort_report import render_html, report_from_store
from monitoring.cohort_report.pdf import find_chromium
from monitoring.store import Store
from tests.factories import d, patient, patients_frame, visit, visits_frame

AS_OF = "2022-06-30"


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A store of four hand-made patients (one with a hostile site name)."""
    folder = tmp_path_factory.mktemp("report")
    patients = patients_frame(
        patient("P1", site="<i>LON</i>", product="tisagenlecleucel", death_date=d(300)),
        patient("P2", site="PHL", product="tisagenlecleucel", last_contact_date=d(800)),
        patient("P3", site="PHL", product="tisagenlecleucel", last_contact_date=d(600)),
        patient("P4", site="PHL", product="tisagenlecleucel", last_contact_date=d(700)),
    )
    visits = visits_frame(
        *(visit(p, 28, disease_status="CR") for p in ("P1", "P2", "P3", "P4")),
        visit("P3", 200, disease_status="relapse", cd19_status="negative"),
    )
    patients.write_csv(folder / "patients.csv")
    visits.write_csv(folder / "visits.csv")
    url = f"sqlite:///{folder / 'report.db'}"
    assert (
        main(["--db", url, "ingest", str(folder / "patients.csv"), str(folder / "visits.csv")]) == 0
    )
    return url


def test_report_writes_the_html_0600_and_audits_it(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cohort.html"
    out.write_text("an older file anyone could read")
    out.chmod(0o644)
    assert main(["--db", db, "report", "--out", str(out), "--as-of", AS_OF, "--user", "dm"]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out}"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    store = Store.open(db)
    try:
        expected = render_html(report_from_store(store, date.fromisoformat(AS_OF)))
    finally:
        store.close()
    text = out.read_text(encoding="utf-8")
    assert text == expected  # the core's report, byte for byte
    assert "&lt;i&gt;LON&lt;/i&gt;" in text and "<i>LON" not in text
    assert main(["--db", db, "audit", "--user", "dm", "--format", "json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    export = [e for e in entries if e["action"] == "export"]
    assert len(export) == 1
    detail = json.loads(export[0]["detail"])
    assert detail["what"] == "cohort report" and detail["files"] == [str(out)]
    assert detail["as_of"] == AS_OF and detail["filters"] == "filters: none (all patients)"


@pytest.mark.parametrize("args", [["--out", "cohort.pdf"], ["--out", "cohort.html", "--pdf"]])
def test_pdf_without_chromium_exits_2_and_writes_nothing(
    db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, args: list[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.chdir(tmp_path)
    assert main(["--db", db, "report", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ltfu: a PDF needs Chromium") and "\n" not in err
    assert not list(tmp_path.glob("cohort.*"))


def test_an_out_that_is_neither_html_nor_pdf_exits_2(db: str, tmp_path: Path, capsys) -> None:
    assert main(["--db", db, "report", "--out", str(tmp_path / "cohort.txt")]) == 2
    assert "must end in .html or .pdf" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_a_missing_folder_is_made_private(db: str, tmp_path: Path, capsys) -> None:
    out = tmp_path / "reports" / "2022" / "cohort.html"
    assert main(["--db", db, "report", "--out", str(out), "--as-of", AS_OF]) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert stat.S_IMODE(out.parent.stat().st_mode) == 0o700


@pytest.mark.e2e  # starts Chromium: run under the e2e lock
@pytest.mark.skipif(find_chromium() is None, reason="no Chromium on the PATH")
def test_report_writes_html_and_pdf(db: str, tmp_path: Path, capsys) -> None:
    out = tmp_path / "cohort.html"
    assert main(["--db", db, "report", "--out", str(out), "--pdf", "--as-of", AS_OF]) == 0
    pdf = tmp_path / "cohort.pdf"
    assert capsys.readouterr().out.strip() == f"wrote {out}, {pdf}"
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-") and b"%%EOF" in data[-1024:]
    assert stat.S_IMODE(pdf.stat().st_mode) == 0o600
    pages = len(re.findall(rb"/Type\s*/Page\b(?!s)", data))
    assert pages >= 3  # overview, then the endpoints two by two, alerts and completeness


def test_an_empty_store_gives_a_report_that_says_so(tmp_path: Path, capsys) -> None:
    db, out = f"sqlite:///{tmp_path / 'empty.db'}", tmp_path / "empty.html"
    assert main(["--db", db, "init"]) == 0
    assert main(["--db", db, "report", "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert 'Patients infused</div><div class="value">0<' in text
    assert text.count("No patient is in this endpoint's population") == 7  # 6 + CD19 split
