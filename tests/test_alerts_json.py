"""`ltfu alerts --format json` text, built by polars, says exactly what one dict per alert said."""

from __future__ import annotations

import json
from datetime import date

import polars as pl

from monitoring.alerts import evaluate_alerts
from monitoring.alerts_json import alerts_json_text
from monitoring.cli.alerts import JSON_FIELDS, alerts_json
from monitoring.synthetic import make_cohort


def test_json_text_equals_the_per_alert_encoding():
    cohort = make_cohort(300, seed=5)
    flags = pl.DataFrame(
        {
            "patient_id": [cohort.patients["patient_id"][0]],
            "user_name": ["dr é"],
            "severity": ["high"],
            "note": ['quote " backslash \\ newline \n <b>tag</b> ☃'],
            "raised_on": [date(2026, 1, 5)],
            "at": ["2026-01-05T10:00:00+00:00"],
        }
    )
    alerts = evaluate_alerts(
        cohort.patients, cohort.visits, as_of=date(2026, 6, 30), flags=flags
    ).with_columns(status=pl.lit("open"), first_seen_at=pl.lit("2026-06-30"))
    assert alerts.height > 100 and alerts["rule"].n_unique() > 5
    expected = alerts_json(alerts)
    assert json.loads(alerts_json_text(alerts, JSON_FIELDS)) == expected
    assert json.loads(alerts_json_text(alerts.head(0), JSON_FIELDS)) == []
    no_evidence = alerts.head(3).with_columns(evidence=pl.lit(None, dtype=pl.String))
    assert [
        item["evidence"] for item in json.loads(alerts_json_text(no_evidence, JSON_FIELDS))
    ] == [{}] * 3
