"""Evidence reads as labelled values with units: no dict or list text, no raw booleans."""

from __future__ import annotations

import json

import polars as pl

from monitoring.alerts import evaluate_alerts
from monitoring.evidence_text import evidence_items, fraction_text
from monitoring.synthetic import DEFAULT_DATA_CUT, make_cohort


def test_values_carry_units_and_words() -> None:
    items = dict(
        evidence_items(
            json.dumps(
                {
                    "visit_date": "2021-01-18",
                    "igg_mg_dl": 344.0,
                    "ivig_within_30d": False,
                    "mrd_flow_fraction": 0.00026,
                    "mrd_pcr_fraction": None,
                    "bcell_per_ul": 57.0,
                    "car_copies_per_ug": [49.0, 18.0],
                }
            )
        )
    )
    assert items == {
        "Visit": "2021-01-18",
        "IgG": "344 mg/dL",
        "IVIG in the 30 days before": "no",
        "Flow MRD": "2.6×10⁻⁴ (0.026 %)",
        "B cells per µL": "57/µL",
        "CAR transgene": "49 copies/µg, 18 copies/µg",
    }
    assert fraction_text(0.0) == "0 (not detected)"
    assert fraction_text(0.0001) == "1×10⁻⁴ (0.01 %)"


def test_no_python_text_in_any_rule_of_the_demo_cohort() -> None:
    cohort = make_cohort(60, seed=7)
    alerts = evaluate_alerts(cohort.patients, cohort.visits, DEFAULT_DATA_CUT)
    assert alerts.height > 20
    for evidence in alerts["evidence"]:
        for label, value in evidence_items(evidence):
            text = f"{label} {value}"
            for python in ("{", "}", "[", "]", "True", "False", "None", "'"):
                assert python not in text, (evidence, label, value)
    mrd_rise = alerts.filter(pl.col("rule") == "mrd_rising")
    if mrd_rise.height:
        assert any(label == "MRD rise" for label, _ in evidence_items(mrd_rise["evidence"][0]))
