"""Many patients are evaluated a range of ids at a time (memory): the same rows, same order."""

from __future__ import annotations

from datetime import date

import pytest

from monitoring import alert_evaluation
from monitoring.config import get_config
from monitoring.synthetic import make_cohort


@pytest.mark.parametrize("as_of", [date(2026, 6, 30), date(2024, 1, 1)])
def test_evaluating_in_ranges_of_patients_gives_the_whole_evaluation(
    as_of: date, monkeypatch: pytest.MonkeyPatch
):
    cohort = make_cohort(400, seed=7)
    config = get_config()
    whole = alert_evaluation.evaluate_patients(cohort.patients, cohort.visits, as_of, config)
    assert whole.alerts.height > 100
    monkeypatch.setattr(alert_evaluation, "_CHUNK_PATIENTS", 70)  # 6 ranges, the last short
    calls: list[int] = []
    original = alert_evaluation._evaluate

    def counting(*args: object) -> alert_evaluation.RuleEvaluation:
        calls.append(1)
        return original(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(alert_evaluation, "_evaluate", counting)
    # rows in any order: the ranges follow the ids, not the frames' order
    patients = cohort.patients.sample(fraction=1, shuffle=True, seed=1)
    visits = cohort.visits.sample(fraction=1, shuffle=True, seed=2)
    ranged = alert_evaluation.evaluate_patients(patients, visits, as_of, config)
    assert len(calls) == 6
    assert ranged.alerts.equals(whole.alerts) and ranged.alerts.schema == whole.alerts.schema
    assert ranged.facts.equals(whole.facts) and ranged.facts.schema == whole.facts.schema
