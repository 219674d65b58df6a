"""CONTRACT §4.2 on hand-built patients: the 180-day PPV horizon at its edges, the 365-day
sensitivity window, an alert on the relapse day that does not count, patient-years."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from monitoring.cli import main
from monitoring.outcomes import derive_outcomes
from monitoring.rule_performance import rule_performance
from tests.factories import d, patient, patients_frame, visit, visits_frame

AS_OF = d(500)
CR = {"disease_status": "CR"}


def alerts(*rows: tuple[str, str, int]) -> pl.DataFrame:
    return pl.DataFrame(
        [{"patient_id": p, "rule": r, "triggered_on": d(day)} for p, r, day in rows],
        schema={"patient_id": pl.String, "rule": pl.String, "triggered_on": pl.Date},
    )


@pytest.fixture(scope="module")
def outcomes() -> pl.DataFrame:
    patients = patients_frame(
        patient("R1"),  # relapse on day 300, last contact = that visit
        patient("R2"),  # relapse on day 400
        patient("N180", last_contact_date=d(280)),  # no relapse, seen 180 days after its alert
        patient("N179", last_contact_date=d(279)),  # no relapse, seen 179 days after its alert
    )
    visits = visits_frame(
        *[visit(p, 28, **CR) for p in ("R1", "R2", "N180", "N179")],
        visit("R1", 300, disease_status="relapse"),
        visit("R2", 400, disease_status="relapse"),
    )
    return derive_outcomes(patients, visits, as_of=AS_OF)


def by_rule(table: pl.DataFrame) -> dict[str, dict]:
    return {row["rule"]: row for row in table.iter_rows(named=True)}


def test_ppv_horizon_edges_and_relapse_day(outcomes: pl.DataFrame) -> None:
    table = by_rule(
        rule_performance(
            alerts(
                ("R1", "A", 120),  # relapse 180 days later: followed (true positive)
                ("R1", "A", 119),  # 181 days: not followed, observed 181 days → false positive
                ("N180", "A", 100),  # 180 days of follow-up: false positive
                ("N179", "A", 100),  # 179 days of follow-up: not yet known, left out
                ("R1", "A", 300),  # on the relapse day: does not count
            ),
            outcomes,
            AS_OF,
        )
    )
    row = table["A"]
    assert row["alerts"] == 5 and row["patients"] == 3
    assert row["ppv_180d"] == pytest.approx(1 / 3)
    # relapses as of D: R1 (day 300) and R2 (day 400); A alerted R1 181 days ahead at the earliest
    assert row["sensitivity_365d"] == pytest.approx(1 / 2)
    assert row["median_lead_days"] == pytest.approx(181.0)


def test_sensitivity_window_is_1_to_365_days(outcomes: pl.DataFrame) -> None:
    table = by_rule(
        rule_performance(
            alerts(
                ("R2", "B", 35),  # 365 days before the relapse: counts
                ("R2", "C", 34),  # 366 days: too early
                ("R2", "D", 400),  # the relapse day: too late
                ("R1", "D", 299),  # the day before: counts, lead 1
            ),
            outcomes,
            AS_OF,
        )
    )
    assert table["B"]["sensitivity_365d"] == pytest.approx(0.5)
    assert table["B"]["median_lead_days"] == pytest.approx(365.0)
    assert table["C"]["sensitivity_365d"] == 0.0 and table["C"]["median_lead_days"] is None
    assert table["D"]["sensitivity_365d"] == pytest.approx(0.5)
    assert table["D"]["median_lead_days"] == pytest.approx(1.0)
    # the relapse-day alert is out of the PPV; the day-299 one is followed on day 1
    assert table["D"]["ppv_180d"] == pytest.approx(1.0)
    # C: 366 days before relapse, observed long enough → a false positive
    assert table["C"]["ppv_180d"] == 0.0


def test_relapse_rule_scores_nothing_and_empty_rules_are_listed(outcomes: pl.DataFrame) -> None:
    table = by_rule(rule_performance(alerts(("R1", "relapse", 300)), outcomes, AS_OF))
    relapse = table["relapse"]
    assert relapse["alerts"] == 1
    assert relapse["ppv_180d"] is None and relapse["median_lead_days"] is None
    assert relapse["sensitivity_365d"] == 0.0
    assert table["new_malignancy"]["alerts"] == 0
    assert table["new_malignancy"]["per_patient_year"] == 0.0
    assert "physician_flag" in table


def test_ppv_follow_up_ends_at_the_evaluation_date() -> None:
    # a last contact after D (outcomes read as of a later day): follow-up is counted to D
    facts = derive_outcomes(patients_frame(patient("P")), visits_frame(), as_of=AS_OF)
    facts = facts.with_columns(last_contact_date=pl.lit(d(900)))
    table = by_rule(rule_performance(alerts(("P", "A", 320), ("P", "B", 321)), facts, AS_OF))
    assert table["A"]["ppv_180d"] == 0.0  # 180 days to D: observed, not followed
    assert table["B"]["ppv_180d"] is None  # 179 days to D: not yet known


def test_per_patient_year(outcomes: pl.DataFrame) -> None:
    # years from infusion to the earlier of D and last contact: 300 + 400 + 280 + 279 days
    table = by_rule(rule_performance(alerts(("R1", "A", 100), ("R2", "A", 100)), outcomes, AS_OF))
    assert table["A"]["per_patient_year"] == pytest.approx(2 / ((300 + 400 + 280 + 279) / 365.25))


def test_no_relapse_and_no_follow_up_give_null() -> None:
    facts = derive_outcomes(patients_frame(patient("P")), visits_frame(), as_of=d(0))
    table = by_rule(rule_performance(alerts(("P", "A", 0)), facts, d(0)))
    assert table["A"]["per_patient_year"] is None
    assert table["A"]["sensitivity_365d"] is None and table["A"]["ppv_180d"] is None


def test_cli_performance_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 's.db'}"
    assert main(["--db", db, "demo", "--patients", "30", "--seed", "3"]) == 0
    capsys.readouterr()
    assert main(["--db", db, "alerts", "--performance", "--format", "json"]) == 0
    items = json.loads(capsys.readouterr().out)
    assert [set(i) for i in items][0] == {
        "rule",
        "alerts",
        "patients",
        "per_patient_year",
        "ppv_180d",
        "sensitivity_365d",
        "median_lead_days",
    }
    assert items[0]["rule"] == "relapse"
    assert main(["--db", db, "alerts", "--status", "all", "--format", "json"]) == 0
    total = len(json.loads(capsys.readouterr().out))
    assert sum(i["alerts"] for i in items) == total
