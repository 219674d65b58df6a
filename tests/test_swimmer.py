"""The swimmer plot at any size: filter, sort and page the lanes; every mark names its patient."""

from __future__ import annotations

import json
from datetime import date

import polars as pl
import pytest

from dashboard import charts
from monitoring.swimmer import SHOW, SORT, swimmer_page


def _lanes(n: int) -> pl.DataFrame:
    """n patients P000…: follow-up 10·i days, infused i days apart, every 3rd relapsed,
    every 5th died, every 4th transplanted; even ones still in follow-up."""
    rows = []
    for i in range(n):
        rows.append(
            {
                "patient_id": f"P{i:03d}",
                "infusion_date": date(2020, 1, 1) + (date(2020, 1, 2) - date(2020, 1, 1)) * i,
                "response": "responder" if i % 7 else "non-responder",
                "end_day": float(10 * i),
                "aplasia_start": 28.0 if i % 7 else None,
                "aplasia_end": float(10 * i) if i % 7 else None,
                "recovery_start": None,
                "recovery_end": None,
                "remission_onset_day": 28.0 if i % 7 else None,
                "relapse_day": float(5 * i) if i % 3 == 0 else None,
                "relapse_cd19_status": "negative" if i % 3 == 0 else None,
                "hsct_day": float(4 * i) if i % 4 == 0 else None,
                "death_day": float(10 * i) if i % 5 == 0 else None,
                "in_follow_up": i % 2 == 0 and i % 5 != 0,
            }
        )
    return pl.DataFrame(rows).with_row_index("lane", offset=1)


ALERTS = pl.DataFrame(
    {
        "patient_id": ["P010", "P010", "P020", "P030"],
        "severity": ["medium", "critical", "high", "data"],
    }
)


def test_pages_cover_every_patient_once_in_order() -> None:
    lanes = _lanes(120)
    seen: list[str] = []
    first = swimmer_page(lanes, ALERTS, per_page=50)
    assert (first.pages, first.matching, first.first, first.last) == (3, 120, 1, 50)
    for number in range(1, first.pages + 1):
        page = swimmer_page(lanes, ALERTS, page=number, per_page=50)
        assert page.lanes["lane"].to_list() == list(range(1, page.lanes.height + 1))
        seen += page.lanes["patient_id"].to_list()
    assert len(seen) == 120 and len(set(seen)) == 120
    # longest follow-up first
    assert seen[:3] == ["P119", "P118", "P117"]
    last = swimmer_page(lanes, ALERTS, page=99, per_page=50)  # clamped to the last page
    assert (last.page, last.first, last.last) == (3, 101, 120)


def test_filters_by_status_and_open_alerts() -> None:
    lanes = _lanes(60)
    alerts = swimmer_page(lanes, ALERTS, show="alerts")
    assert set(alerts.lanes["patient_id"]) == {"P010", "P020", "P030"}
    by_severity = swimmer_page(lanes, ALERTS, show="alerts", sort="alerts")
    # critical first, then high, then data; open alerts counted per patient
    assert by_severity.lanes["patient_id"].to_list() == ["P010", "P020", "P030"]
    assert by_severity.lanes["open_alerts"].to_list() == [2, 1, 1]
    died = swimmer_page(lanes, ALERTS, show="died").lanes
    assert died.height == 12 and died["death_day"].is_not_null().all()
    relapsed = swimmer_page(lanes, ALERTS, show="relapsed").lanes
    assert relapsed.height == 20
    remission = swimmer_page(lanes, ALERTS, show="remission").lanes
    assert (
        remission["relapse_day"].is_null().all()
        and remission["death_day"].is_null().all()
        and (remission["response"] == "responder").all()
    )
    recent = swimmer_page(lanes, ALERTS, sort="recent", per_page=2).lanes
    assert recent["patient_id"].to_list() == ["P059", "P058"]
    assert swimmer_page(lanes, ALERTS, sort="patient", per_page=1).lanes["patient_id"][0] == "P000"
    with pytest.raises(KeyError):
        swimmer_page(lanes, ALERTS, show="everything")
    assert set(SHOW) >= {"all", "alerts"} and set(SORT) >= {"follow_up", "alerts"}


def test_swimmer_figure_names_every_lane_and_every_mark_carries_its_patient() -> None:
    page = swimmer_page(_lanes(80), ALERTS, per_page=50)
    fig = charts.swimmer_figure(
        page.lanes, pl.DataFrame({"patient_id": ["P079"], "day": [30]}), stamp="stamp"
    )
    assert list(fig.layout.yaxis.ticktext) == page.lanes["patient_id"].to_list()
    assert fig.layout.yaxis.range[0] > fig.layout.yaxis.range[1]  # lane 1 at the top
    follow_up = next(t for t in fig.data if t.name == "Follow-up")
    assert follow_up.type == "bar" and follow_up.orientation == "h"  # clickable lane-long
    assert list(follow_up.customdata) == page.lanes["patient_id"].to_list()
    for trace in fig.data:
        assert trace.customdata is not None and len(trace.customdata) == len(trace.y), trace.name
        assert set(trace.customdata) <= set(page.lanes["patient_id"]), trace.name
    assert len(fig.layout.xaxis.tickvals) >= 3


def test_month_ticks_are_round_and_enough() -> None:
    assert charts.month_ticks(35) == [0, 1, 2]  # five weeks: not one tick at 0
    assert charts.month_ticks(400) == [0, 3, 6, 9, 12, 15]
    assert charts.month_ticks(3653)[-1] >= 120 and len(charts.month_ticks(3653)) <= 13
    assert all(len(charts.month_ticks(d)) >= 2 for d in (0, 1, 30, 1000, 20000))


def test_the_swimmer_figure_is_the_one_plotly_validates() -> None:
    """The figure is built without plotly's validation (`charts.figure_of`): it is the figure
    plotly builds from the same specification with it (the JSON sent to the browser has the
    same values; the order of an object's keys, which JSON and plotly.js ignore, differs), on
    pages with every kind of mark, the stamp or none, MRD points or none, and no lane."""
    import plotly.graph_objects as go

    from monitoring.cohort_views import swimmer_lanes
    from monitoring.outcomes import derive_outcomes
    from monitoring.synthetic import make_cohort

    as_of = date(2026, 6, 30)
    cohort = make_cohort(200, seed=5)
    real = swimmer_lanes(derive_outcomes(cohort.patients, cohort.visits, as_of=as_of), as_of)
    cases = [
        (swimmer_page(real, ALERTS, per_page=50, page=page).lanes, mrd, stamp)
        for page, mrd, stamp in (
            (1, pl.DataFrame({"patient_id": real["patient_id"][:9], "day": [30.5] * 9}), "v7"),
            (2, pl.DataFrame(schema={"patient_id": pl.String, "day": pl.Float64}), None),
        )
    ]
    cases.append((_lanes(80), pl.DataFrame({"patient_id": ["P079"], "day": [30]}), "<b>s</b>"))
    cases.append(
        (real.clear(), pl.DataFrame(schema={"patient_id": pl.String, "day": pl.Int64}), "s")
    )
    kinds: set[str] = set()
    for lanes, mrd, stamp in cases:
        traces, layout = charts.swimmer_spec(lanes, mrd, stamp=stamp)
        validated = go.Figure(data=traces, layout=layout)
        fig = charts.swimmer_figure(lanes, mrd, stamp=stamp)
        assert json.loads(fig.to_json()) == json.loads(validated.to_json()), stamp
        assert fig.to_dict() == validated.to_dict(), stamp
        kinds |= {str(t["name"]) for t in traces}
    assert {"MRD detected", "Transplant", "Death", "In follow-up", "CR/CRi"} <= kinds
    assert any(kind.startswith("Relapse, ") for kind in kinds)
    # the template each figure holds is plotly's, and changing one figure's changes no other
    template = charts.swimmer_figure(*cases[0][:2]).layout.template
    assert template == go.Figure(layout={"template": "plotly_white"}).layout.template
    template.layout.font.size = 99
    assert charts.swimmer_figure(*cases[0][:2]).layout.template.layout.font.size is None
