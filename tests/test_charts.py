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


def test_cif_by_group_with_cd19_split_is_one_panel_per_cause(cohort) -> None:  # type: ignore[no-untyped-def]
    """4 products x 4 causes was 16 lines and 16 bands on one plot: now a panel per cause, a
    colour per group, one legend entry per group."""
    table = durability_table(*cohort, "cir", by="product", by_cd19=True, as_of=AS_OF)
    labels = {"A": "A (n 2, 1 relapses)", "B": "B (n 1, 0 relapses)"}
    fig = charts.cif_figure(table, stamp=STAMP, title="CIR", subtitle="Gray p", labels=labels)
    causes = table["cause"].unique(maintain_order=True).to_list()
    panel_titles = [a.text for a in fig.layout.annotations if a.text != STAMP]
    assert panel_titles == [charts.CAUSE_LABELS[c] for c in causes]
    legend = [t.name for t in fig.data if t.showlegend is not False and t.mode == "lines"]
    assert legend == ["A (n 2, 1 relapses)", "B (n 1, 0 relapses)"]
    lines = [t for t in fig.data if t.mode == "lines" and t.line.width]
    assert {t.line.color for t in lines} == set(charts.GROUP_COLOURS[:2])
    assert len({t.xaxis for t in lines}) == len(causes)  # one panel per cause
    assert fig.layout.title.subtitle.text == "Gray p" and "CIR" in fig.layout.title.text


def test_km_figure_carries_title_test_and_stamp_for_a_saved_image(cohort) -> None:  # type: ignore[no-untyped-def]
    table = durability_table(*cohort, "os", by="product", as_of=AS_OF)
    summary = durability_summary(*cohort, "os", by="product", as_of=AS_OF)
    fig = charts.km_figure(
        table,
        summary,
        y_title="Overall survival (%)",
        stamp=STAMP,
        title="Overall survival by <product>",
        subtitle="Log-rank p = 0.5 across 2 groups",
        names={"A": "Product A", "B": "Product B"},
    )
    assert "Overall survival by &lt;product&gt;" in fig.layout.title.text  # text, not HTML
    assert fig.layout.title.subtitle.text == "Log-rank p = 0.5 across 2 groups"
    assert STAMP in [a.text for a in fig.layout.annotations]
    strip = [t for t in fig.data if t.mode == "text"]
    assert [t.y[0] for t in strip] == ["Product A", "Product B"]
    assert list(strip[0].x) == charts.tick_months(charts.last_time(table))
    low, high = fig.layout.yaxis2.range  # first group on top, half a row of room at each edge
    assert low > len(strip) - 1 and high < 0
    # the legend stands right of the plot, clear of the title and the toolbar above it
    assert fig.layout.legend.orientation == "v" and fig.layout.legend.x > 1


def test_overlay_draws_several_endpoints_on_one_figure(cohort) -> None:  # type: ignore[no-untyped-def]
    curves = []
    for endpoint in ("os", "efs", "rfs"):
        table = durability_table(*cohort, endpoint, as_of=AS_OF)
        (group,) = durability_summary(*cohort, endpoint, as_of=AS_OF).groups
        curves.append((endpoint.upper(), f"{endpoint} (n {group.n})", table, group.median_days))
    fig = charts.km_overlay_figure(curves, stamp=STAMP, title="OS, EFS, RFS")
    lines = [t.name for t in fig.data if t.mode == "lines" and t.showlegend is not False]
    assert lines == ["os (n 4)", "efs (n 4)", "rfs (n 3)"]
    assert [t.y[0] for t in fig.data if t.mode == "text"] == ["OS", "EFS", "RFS"]
    efs = durability_table(*cohort, "efs", as_of=AS_OF)
    drawn = next(t for t in fig.data if t.name == "efs (n 4)")
    assert list(drawn.y[1:]) == efs["estimate"].to_list()


def test_landmark_frame(cohort) -> None:  # type: ignore[no-untyped-def]
    summary = durability_summary(*cohort, "os", as_of=AS_OF)
    frame = charts.landmark_frame(summary, {"all": "All patients"})
    assert frame.columns == ["Group", "Months", "Estimate", "95 % CI", "At risk"]
    assert set(frame["Group"]) == {"All patients"}
    assert frame["Months"].to_list() == [6, 12, 24, 36, 60]
    # past the last follow-up (day 700) nobody is counted: a dash, never a null shown as "None"
    assert frame["At risk"].to_list()[-2:] == ["–", "–"]
    assert frame["At risk"].null_count() == 0


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
