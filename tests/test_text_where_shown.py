"""An evaluation for a count makes no message or evidence: it keeps each rule's raw values, and
the text is made where alerts are shown (`alerts.with_text`). The text made later is the text
the evaluation makes (the frozen 15acef1 evaluation is the oracle), and a store whose kept
evaluation was made by a count gives every reader the alerts of a full evaluation."""

from __future__ import annotations

import dataclasses
from contextlib import closing
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from monitoring import alert_evaluation, alerts
from monitoring.alert_queue import evaluate_store, open_alert_count, read_flags
from monitoring.config import get_config
from monitoring.ingest import ingest_files
from monitoring.store import Store, alert_cache
from monitoring.synthetic import make_cohort, write_csv
from tests.frozen import alerts_15acef1 as before_alerts
from tests.frozen import outcomes_15acef1 as before_outcomes
from tests.test_evaluation_matches_before import DATES, hostile_cohort


def _roundtrip(kept: pl.DataFrame) -> pl.DataFrame:
    """What a reader of the kept entry gets back (alert_cache's encoding)."""
    return alert_cache._frame(alert_cache._blob(kept), None)


@pytest.mark.parametrize("as_of", DATES)
def test_text_made_from_the_raw_values_is_the_text_of_the_evaluation(as_of: date):
    config = get_config()
    for patients, visits in (hostile_cohort(500, 1), hostile_cohort(500, 2)):
        facts = before_outcomes.derive_outcomes(patients, visits, as_of, config)
        oracle = before_alerts.evaluate_alerts(
            patients, visits, as_of, config, facts, rules=before_alerts.CLINICAL_RULES
        )
        raw = alerts.evaluate_alerts(
            patients, visits, as_of, config, rules=alerts.CLINICAL_RULES, kept=True, text=False
        )
        assert "message" not in raw.columns and not raw[alerts.TEXTED].any()
        assert set(raw["rule"]) == set(oracle["rule"])
        made = alerts.with_text(_roundtrip(raw), as_of, config)
        assert made.schema == oracle.schema
        assert made.equals(oracle), made.join(oracle, on=made.columns, how="anti").head(5)
        # rows with text and rows without, as a merge of two kept entries holds them
        texted = alerts.evaluate_alerts(
            patients, visits, as_of, config, rules=alerts.CLINICAL_RULES, kept=True
        )
        half = pl.col("patient_id").is_in(patients["patient_id"].gather_every(2).implode())
        mixed = pl.concat(
            [_roundtrip(texted.filter(half)), _roundtrip(raw.filter(~half))],
            how="diagonal_relaxed",
        )
        assert alerts.with_text(mixed, as_of, config).equals(oracle)


@pytest.mark.parametrize(
    "settings",
    [
        {"mrd_assessment_windows": ((10, 60), (30, 90)), "car_loss_confirmations": 3},
        {"recovery_confirmations": 1, "car_loss_confirmations": 1, "mrd_rising_factor": 3.0},
    ],
)
def test_other_settings_make_the_same_text(settings: dict[str, object]):
    config = dataclasses.replace(get_config(), **settings)
    patients, visits = hostile_cohort(500, 1)
    as_of = DATES[1]
    raw = alerts.evaluate_alerts(
        patients, visits, as_of, config, rules=alerts.CLINICAL_RULES, kept=True, text=False
    )
    shown = alerts.evaluate_alerts(patients, visits, as_of, config, rules=alerts.CLINICAL_RULES)
    assert alerts.with_text(_roundtrip(raw), as_of, config).equals(shown)


def test_a_count_keeps_no_text_and_every_later_reader_gets_the_full_evaluation(
    store_url: str, tmp_path: Path
):
    """`ltfu status` with nothing kept (after an upgrade or a settings change) evaluates for a
    count: the entry it keeps holds raw values, not text; the alert list, a new day brought up
    from it and a commit merged into it all give what a full evaluation gives."""
    cohort = make_cohort(80, seed=21)
    with closing(Store.open(store_url)) as store:
        ingest_files(store, list(write_csv(cohort, tmp_path / "csv")))
        today = store.today()
        with store.engine.begin() as conn:  # what an upgrade leaves: nothing kept
            conn.execute(alert_cache.t.alert_evaluations.delete())

        def truth(day: date) -> pl.DataFrame:
            _version, patients, visits = store.snapshot()
            return alerts.evaluate_alerts(patients, visits, day, flags=read_flags(store))

        assert open_alert_count(store, today) == truth(today).height
        found = alert_cache.lookup(store, today, alert_evaluation._key(get_config()), base=False)
        assert found.hit is not None and not found.hit.alerts[alerts.TEXTED].any()
        assert "message" not in found.hit.alerts.columns
        assert evaluate_store(store, today).equals(truth(today))
        tomorrow = today + timedelta(days=1)
        assert open_alert_count(store, tomorrow) == truth(tomorrow).height
        assert evaluate_store(store, tomorrow).equals(truth(tomorrow))
        # a commit of one patient, merged into the entry the count kept
        one = cohort.visits.filter(pl.col("patient_id") == cohort.visits["patient_id"][0])
        path = tmp_path / "changed.csv"
        one.with_columns(bm_blasts_pct=pl.lit(40.0)).write_csv(path)
        ingest_files(store, [path])
        assert open_alert_count(store, today) == truth(today).height
        assert evaluate_store(store, today).equals(truth(today))
        # a count on a new day from an entry with text: the few patients evaluated again get
        # their text too (no raw values of everyone beside the text)
        with store.engine.begin() as conn:
            conn.execute(alert_cache.t.alert_evaluations.delete())
        assert evaluate_store(store, today).equals(truth(today))
        later = today + timedelta(days=3)
        assert open_alert_count(store, later) == truth(later).height
        found = alert_cache.lookup(store, later, alert_evaluation._key(get_config()), base=False)
        assert found.hit is not None and found.hit.delta is not None
        assert found.hit.delta.alerts[alerts.TEXTED].all()
        assert evaluate_store(store, later).equals(truth(later))
