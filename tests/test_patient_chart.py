"""The patient page's course figure: log axes with the site's thresholds, alerts layered by severity."""

from __future__ import annotations

from datetime import date

import polars as pl

from dashboard import patient_chart
from monitoring.config import get_config
from monitoring.outcomes import derive_outcomes, visits_with_day
from tests.factories import d, patient, patients_frame, visit, visits_frame

AS_OF = date(2023, 1, 1)


def test_patient_course_figure_uses_log_axes_and_thresholds() -> None:
    patients = patients_frame(patient("P1", last_contact_date=d(700)))
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
    )
    outcome = derive_outcomes(patients, visits, as_of=AS_OF).row(0, named=True)
    with_day = visits_with_day(patients, visits)
    alerts = pl.DataFrame(
        {
            "day": [200, 300, 300],
            "severity": ["medium", "medium", "critical"],
            "rule": ["bcell_recovery", "bcell_recovery", "mrd_reemergence"],
            "status": ["open", "open", "open"],
            "triggered_on": [d(200), d(300), d(300)],
        }
    )
    config = get_config()
    titles = {"bcell_recovery": "Early B-cell recovery", "mrd_reemergence": "MRD re-emergence"}
    fig = patient_chart.patient_course_figure(with_day, outcome, alerts, config, titles)

    assert fig.layout.yaxis2.type == "log" and fig.layout.yaxis2.title.text == "MRD (fraction)"
    assert fig.layout.yaxis3.type == "log" and fig.layout.yaxis5.type == "log"
    assert fig.layout.xaxis4.title.text.startswith("Days since infusion")
    # the x axis spans infusion to last contact
    low, high = fig.layout.xaxis.range
    assert low <= 0 < 700 <= high
    # not detected is drawn on the floor of the log axis, with an open marker
    mrd = next(t for t in fig.data if t.name == "MRD Flow")
    assert mrd.y[0] == patient_chart.MRD_FLOOR and mrd.marker.symbol[0] == "circle-open"
    # critical is drawn last (on top); a day takes its most severe alert and hover names them all
    alert_traces = {t.name: t for t in fig.data if (t.name or "").startswith("Alert (")}
    assert list(alert_traces)[-1] == "Alert (critical)"
    assert list(alert_traces["Alert (medium)"].x) == [200]
    critical = alert_traces["Alert (critical)"]
    assert list(critical.x) == [300]
    assert "MRD re-emergence" in critical.customdata[0][1]
    assert "Early B-cell recovery" in critical.customdata[0][1]
    # the thresholds come from the site configuration
    texts = [a.text for a in fig.layout.annotations]
    assert any(f"flow detected ≥ {config.mrd_flow_detected:g}" in t for t in texts)
    assert any(f"loss < {config.car_loss_copies_per_ug:g} copies/µg" in t for t in texts)
