"""The pure plotly builders: tables in, figures out (no streamlit, no browser)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import plotly.graph_objects as go
import polars as pl
import pytest

from dashboard import charts
from monitoring import cohort_views
from monitoring.config import get_config
from monitoring.durability import durability_summary, durability_table
from monitoring.errors import ExportUnavailableError
from monitoring.outcomes import derive_outcomes
from tests.factories import d, patient, patients_frame, visit, visits_frame

AS_OF = date(2023, 1, 1)
STAMP = "Data version 3 · evaluated 2023-01-01 · filters: none (all patients)"


@pytest.fixture
def cohort() -> tuple[pl.DataFrame, pl.DataFrame]:
    patients = patients_frame(
        patient("P1", product="A", last_contact_date=d(700)),
        patient("P2", product="A", death_date=d(200), death_cause="relapse"),
        patient("P3", product="B", last_contact_date=d(400), hsct_date=d(120)),
        patient("P4", product="B", last_contact_date=d(30)),
    )
    visits = visits_frame(
        visit(
            "P1",
            28,
            disease_status="CR",
            mrd_sample="BM",
            mrd_flow_fraction=0.0,
            bcell_pct_lymphocytes=0.0,
            car_copies_per_ug=20000.0,
        ),
        visit("P1", 300, disease_status="CR", bcell_pct_lymphocytes=4.0),
        visit("P1", 330, disease_status="CR", bcell_pct_lymphocytes=6.0),
        visit("P2", 28, disease_status="CR", mrd_sample="BM", mrd_flow_fraction=0.001),
        visit("P2", 150, disease_status="relapse", bm_blasts_pct=40.0, cd19_status="negative"),
        visit("P3", 28, disease_status="CR"),
        visit("P4", 28, disease_status="no_response"),
    )
    return patients, visits


def test_risk_table_counts_at_risk_events_and_censored(cohort) -> None:  # type: ignore[no-untyped-def]
    table = durability_table(*cohort, "os", as_of=AS_OF)
    risk = cohort_views.risk_table(table, [0, 6, 12, 24])
    assert risk["Number at risk"].to_list() == ["all: at risk", "all: events", "all: censored"]
    assert risk["0"].to_list() == [4, 0, 0]
    # day 182.6: P4 censored at 30, P2 (death day 200) still at risk
    assert risk["6"].to_list() == [3, 0, 1]
    assert risk["12"].to_list() == [2, 1, 1]
    assert risk["24"].to_list() == [0, 1, 3]


def test_km_figure_has_steps_bands_censor_marks_median_and_stamp(cohort) -> None:  # type: ignore[no-untyped-def]
    table = durability_table(*cohort, "efs", by="product", as_of=AS_OF)
    summary = durability_summary(*cohort, "efs", by="product", as_of=AS_OF)
    fig = charts.km_figure(table, summary, y_title="Event-free survival (%)", stamp=STAMP)
    assert isinstance(fig, go.Figure)
    lines = [t for t in fig.data if t.name in ("A", "B")]
    assert [t.name for t in lines] == ["A", "B"]
    assert all(t.line.shape == "hv" for t in lines)
    assert lines[0].y[0] == 1.0  # the curve starts at 100 %
    assert any(t.fill == "tonexty" for t in fig.data)
    assert any(t.name == "censored" and t.marker.symbol == "line-ns-open" for t in fig.data)
    assert any(t.mode == "text" for t in fig.data)  # the at-risk strip
    assert STAMP in [a.text for a in fig.layout.annotations]
    assert fig.layout.xaxis2.title.text == "Months since infusion"
    assert fig.layout.yaxis.title.text == "Event-free survival (%)"
    assert lines[0].line.color == charts.GROUP_COLOURS[0]


def test_cif_figure_colours_causes_by_cd19(cohort) -> None:  # type: ignore[no-untyped-def]
    table = durability_table(*cohort, "cir", by_cd19=True, as_of=AS_OF)
    fig = charts.cif_figure(table, stamp=STAMP)
    named = {t.name: t for t in fig.data if t.name}
    assert named["Relapse, antigen escape"].line.color == charts.CD19_COLOURS["antigen escape"]
    assert "Death without relapse (competing)" in named
    assert fig.layout.yaxis.title.text == "Cumulative incidence (%)"


def test_landmark_frame(cohort) -> None:  # type: ignore[no-untyped-def]
    summary = durability_summary(*cohort, "os", as_of=AS_OF)
    frame = charts.landmark_frame(summary)
    assert frame.columns == ["Group", "Months", "Estimate", "95 % CI", "At risk"]
    assert frame["Months"].to_list() == [6, 12, 24, 36, 60]


def test_swimmer_one_lane_per_patient_with_events(cohort) -> None:  # type: ignore[no-untyped-def]
    patients, visits = cohort
    outcomes = derive_outcomes(patients, visits, as_of=AS_OF)
    lanes = cohort_views.swimmer_lanes(outcomes, AS_OF)
    assert lanes.height == 4 and lanes["lane"].to_list() == [1, 2, 3, 4]
    p1 = lanes.filter(pl.col("patient_id") == "P1").row(0, named=True)
    assert p1["aplasia_start"] == 28 and p1["recovery_start"] == 300 and p1["in_follow_up"]
    assert not lanes.filter(pl.col("patient_id") == "P2")["in_follow_up"][0]
    # the overdue limit is the site's `followup_overdue_days`, not a number in the shell
    strict = replace(get_config(), followup_overdue_days=0)
    assert not cohort_views.swimmer_lanes(outcomes, AS_OF, strict)["in_follow_up"].any()
    mrd = pl.DataFrame({"patient_id": ["P2"], "day": [28]})
    fig = charts.swimmer_figure(lanes, mrd, stamp=STAMP)
    names = {t.name for t in fig.data}
    assert {
        "B-cell aplasia",
        "B-cell recovery",
        "MRD detected",
        "Relapse, antigen escape",
        "Transplant",
        "Death",
        "In follow-up",
        "CR/CRi",
    } <= names
    assert fig.layout.xaxis.title.text == "Months since infusion"


def test_cohort_tiles(cohort) -> None:  # type: ignore[no-untyped-def]
    outcomes = derive_outcomes(*cohort, as_of=AS_OF)
    tiles = cohort_views.cohort_tiles(outcomes)
    assert tiles.infused == 4 and tiles.responders == 3
    assert tiles.response_rate == pytest.approx(3 / 4)
    assert tiles.relapses == 1 and tiles.cd19_count("antigen escape") == 1
    assert tiles.in_remission == 2
    assert tiles.to_json()["relapse_cd19"] == {
        "CD19-positive": 0,
        "antigen escape": 1,
        "lineage switch": 0,
        "unknown": 0,
    }


def test_export_says_why_when_kaleido_cannot_run(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("no browser")

    fig = go.Figure()
    monkeypatch.setattr(go.Figure, "to_image", broken)
    with pytest.raises(ExportUnavailableError, match="Chromium"):
        charts.export_images(fig)


def test_palette_is_shared() -> None:
    assert charts.CAUSE_COLOURS["relapse_antigen_escape"] == charts.CD19_COLOURS["antigen escape"]
    assert set(charts.SEVERITY_COLOURS) == set(charts.SEVERITY_ORDER)
    assert cohort_views.cd19_category("dim") == "antigen escape"
    assert cohort_views.cd19_category("lineage_switch") == "lineage switch"
    assert cohort_views.cd19_category(None) == "unknown"


def test_queue_grouped_by_patient_and_missed_windows() -> None:
    queue = pl.DataFrame(
        {
            "patient_id": ["B", "A", "B", "A", "C"],
            "severity": ["medium", "high", "critical", "data", "data"],
            "triggered_on": [date(2024, 1, d) for d in (1, 2, 3, 4, 5)],
            "rule": ["x", "y", "z", "missed_mrd_assessment", "missed_mrd_assessment"],
            "day": [10, 20, 30, 35, 104],
        }
    )
    grouped = cohort_views.queue_by_patient(queue)
    assert grouped["patient_id"].to_list() == ["B", "B", "A", "A", "C"]
    assert grouped["severity"].to_list() == ["critical", "medium", "high", "data", "data"]
    missed = cohort_views.missed_by_window(queue, ((21, 35), (76, 104)))
    assert missed["Missed bone-marrow MRD"].to_list() == [1, 1]
    assert missed["Patients"].to_list() == ["A", "C"]
