"""The faster alert evaluation gives exactly the rows of the evaluation at 15acef1
(`tests/frozen`): outcomes and alerts (ids, messages, evidence, order) compared with
`DataFrame.equals`, on the synthetic cohort and on random cohorts that sit on every threshold
and edge (values exactly at a threshold, ratios of exactly 10, unrecorded samples, IVIG,
transplants, deaths, dates before infusion and after the evaluation date, unsorted rows)."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from monitoring import alert_evaluation, alerts, outcomes
from monitoring.config import Config, get_config
from monitoring.schemas import polars_schema
from monitoring.synthetic import make_cohort
from tests.frozen import alerts_15acef1 as before_alerts
from tests.frozen import outcomes_15acef1 as before_outcomes

START = date(2020, 1, 1)
# the random cohorts' infusions are in 2020-2021, the synthetic cohort's in 2020-2026
DATES = (date(2020, 9, 30), date(2022, 6, 30), date(2026, 12, 31))


def _pick(
    rng: np.random.Generator, n: int, values: list[object], null: float = 0.5
) -> list[object]:
    """`n` values drawn from `values`, each null with probability `null`."""
    chosen = rng.integers(0, len(values), n)
    empty = rng.random(n) < null
    return [None if e else values[i] for i, e in zip(chosen, empty, strict=True)]


def hostile_cohort(n: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`n` patients whose values sit on the rules' thresholds, in no particular row order."""
    rng = np.random.default_rng(seed)
    ids = [f"P{i:04d}" for i in range(n)]
    infusion = [START + timedelta(days=int(x)) for x in rng.integers(0, 500, n)]

    def later(null: float) -> list[object]:
        days = rng.integers(0, 700, n)
        return [
            None if rng.random() < null else inf + timedelta(days=int(k))
            for inf, k in zip(infusion, days, strict=True)
        ]

    patients = pl.DataFrame(
        {
            "patient_id": ids,
            "site": _pick(rng, n, ["A", "B"], 0.1),
            "infusion_date": infusion,
            "kmt2a_rearranged": _pick(rng, n, [True, False], 0.3),
            "hsct_date": later(0.7),
            "new_therapy_date": later(0.8),
            "last_contact_date": later(0.3),
            "death_date": later(0.8),
            "death_cause": _pick(rng, n, ["relapse", "infection", "other"], 0.5),
        }
    )
    patients = pl.DataFrame(
        [
            patients.get_column(c) if c in patients.columns else pl.Series(c, [None] * n)
            for c in polars_schema("patients")
        ]
    ).cast(polars_schema("patients"))  # type: ignore[arg-type]

    per_patient = rng.integers(0, 14, n)
    rows = int(per_patient.sum())
    pid = np.repeat(np.arange(n), per_patient)
    # distinct days per patient (the visit key): a random walk from day -60 on
    steps = rng.integers(1, 60, rows)
    first = np.r_[0, np.cumsum(per_patient)[:-1]]
    walk = np.cumsum(steps)
    walk -= np.repeat(
        walk[first[per_patient > 0]] - steps[first[per_patient > 0]], per_patient[per_patient > 0]
    )
    days = walk - 60
    mrd = [
        0.0,
        1e-4,
        0.0001 * (1 - 1e-12),
        9.99e-5,
        1e-3,
        1e-2,
        1e-5,
        1e-6,
        2.5e-4,
        0.00012,
        0.0012,
        0.3,
        1.0,
    ]
    visits = pl.DataFrame(
        {
            "patient_id": [ids[i] for i in pid],
            "visit_date": [
                infusion[i] + timedelta(days=int(k)) for i, k in zip(pid, days, strict=True)
            ],
            "disease_status": _pick(
                rng, rows, ["CR", "CR", "CR", "CRi", "relapse", "no_response", "not_assessed"], 0.3
            ),
            "bm_blasts_pct": _pick(
                rng, rows, [0.0, 0.0, 4.99, 5.0, 5 * (1 - 1e-12), 30.0, 88.25], 0.8
            ),
            "mrd_sample": _pick(rng, rows, ["BM", "PB"], 0.3),
            "mrd_flow_fraction": _pick(rng, rows, mrd, 0.5),
            "mrd_ngs_fraction": _pick(rng, rows, mrd, 0.6),
            "mrd_pcr_fraction": _pick(rng, rows, mrd, 0.7),
            "bcell_pct_lymphocytes": _pick(rng, rows, [0.0, 0.99, 1.0, 2.4, 12.345], 0.5),
            "bcell_per_ul": _pick(rng, rows, [0.0, 49.9, 50.0, 88.0, 123.456], 0.5),
            "car_copies_per_ug": _pick(rng, rows, [0.0, 10.0, 49.99, 50.0, 1234.5], 0.5),
            "car_pct_cd3": _pick(rng, rows, [0.0, 3.5], 0.8),
            "igg_mg_dl": _pick(rng, rows, [250.0, 399.99, 400.0, 650.0], 0.5),
            "ivig_within_30d": _pick(rng, rows, [True, False], 0.5),
            "cd19_status": _pick(
                rng, rows, ["positive", "dim", "partial", "negative", "lineage_switch"], 0.6
            ),
            "relapse_site": _pick(rng, rows, ["marrow", "cns", "other_extramedullary"], 0.8),
            "new_malignancy": _pick(rng, rows, [True, False], 0.9),
            "comment": _pick(rng, rows, ['said "fine"\\ ok', "ünïcode ✓"], 0.9),
        }
    )
    visits = pl.DataFrame(
        [
            visits.get_column(c) if c in visits.columns else pl.Series(c, [None] * rows)
            for c in polars_schema("visits")
        ]
    ).cast(polars_schema("visits"))  # type: ignore[arg-type]
    return patients.sample(fraction=1, shuffle=True, seed=seed), visits.sample(
        fraction=1, shuffle=True, seed=seed + 1
    )


def _before(
    patients: pl.DataFrame,
    visits: pl.DataFrame,
    as_of: date,
    flags: pl.DataFrame | None = None,
    config: Config | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """15acef1's outcomes and alerts (`config`: the default settings unless given)."""
    config = config or get_config()
    facts = before_outcomes.derive_outcomes(patients, visits, as_of, config)
    rules = before_alerts.ALERT_RULES if flags is not None else before_alerts.CLINICAL_RULES
    found = before_alerts.evaluate_alerts(
        patients, visits, as_of, config, facts, flags=flags, rules=rules
    )
    return facts, found


def _assert_same(now: pl.DataFrame, then: pl.DataFrame) -> None:
    assert now.schema == then.schema
    assert now.equals(then), now.join(then, on=now.columns, how="anti").head(5)


@pytest.fixture(scope="module")
def cohorts() -> list[tuple[pl.DataFrame, pl.DataFrame]]:
    synthetic = make_cohort(300, seed=5)
    return [(synthetic.patients, synthetic.visits), hostile_cohort(500, 1), hostile_cohort(500, 2)]


@pytest.mark.parametrize("as_of", DATES)
def test_the_evaluation_gives_the_rows_it_gave_before(cohorts, as_of: date):
    config = get_config()
    for patients, visits in cohorts:
        facts, found = _before(patients, visits, as_of)
        assert found.height > 0
        now = alert_evaluation.evaluate_patients(patients, visits, as_of, config)
        _assert_same(now.facts, facts)
        _assert_same(now.alerts, found)
        _assert_same(outcomes.derive_outcomes(patients, visits, as_of, config), facts)


def test_every_rule_fires_in_the_random_cohorts(cohorts):
    """The comparison covers every rule (else a rule's change could go unseen)."""
    fired = set()
    for patients, visits in cohorts:
        for as_of in DATES:
            fired |= set(_before(patients, visits, as_of)[1].get_column("rule").to_list())
    assert fired == {r.id for r in alerts.CLINICAL_RULES}


def test_flags_and_the_public_evaluation_give_the_rows_they_gave_before(cohorts):
    patients, visits = cohorts[1]
    as_of = DATES[-1]
    flags = pl.DataFrame(
        {
            "patient_id": ["P0001", "P0001", "P0002", "P9999"],
            "user_name": ["a", "b", "a", "a"],
            "severity": ["high", "critical", "medium", "high"],
            "note": ["one", "two", 'three "quoted"', "unknown patient"],
            "raised_on": [date(2021, 1, 1), date(2021, 1, 1), date(2022, 1, 1), date(2021, 1, 1)],
            "at": ["2021-01-01T10:00:00", "2021-01-01T09:00:00", "2022-01-01T08:00:00", "x"],
        }
    )
    facts, found = _before(patients, visits, as_of, flags)
    now = alerts.evaluate_alerts(patients, visits, as_of, get_config(), flags=flags)
    _assert_same(now, found)


def test_number_texts_are_the_texts_of_before():
    """`_sci` (a lookup for the power's superscript) and `_num` (a suffix, not a regular
    expression) give the old texts for floats of every magnitude."""
    rng = np.random.default_rng(3)
    positive = np.concatenate(
        [
            10 ** rng.uniform(-320, 300, 20_000),
            10 ** rng.uniform(-7, 0, 20_000),
            np.round(10 ** rng.uniform(-7, 0, 2_000), 6),
            [5e-324, 1e-300, 9.96e-5, 9.95e-5, 9.94999e-5, 1e-4, 0.99999, 1.0, 10.0, 1.7e308],
        ]
    )
    values = pl.Series("v", [*positive, 0.0, -0.0, None], dtype=pl.Float64)
    frame = values.to_frame()
    sci = pl.col("v")
    assert frame.select(alerts._sci(sci)).equals(frame.select(before_alerts._sci(sci)))
    signed = pl.concat([values, -values, pl.Series("v", rng.uniform(-1e6, 1e6, 20_000))])
    frame = signed.to_frame()
    for digits in (0, 1, 2):
        now, then = alerts._num(pl.col("v"), digits), before_alerts._num(pl.col("v"), digits)
        assert frame.select(now).equals(frame.select(then))


def test_duplicated_visits_still_give_one_alert_per_patient_rule_and_date(cohorts):
    """Not valid input (a visit's key is unique), but the evaluation's promise holds: one
    alert per patient, rule and date, the same rows as before."""
    patients, visits = cohorts[2]
    doubled = pl.concat([visits, visits.head(800)])
    as_of = DATES[1]
    _facts, found = _before(patients, doubled, as_of)
    now = alerts.evaluate_alerts(
        patients, doubled, as_of, get_config(), rules=alerts.CLINICAL_RULES
    )
    assert found.select(pl.struct("patient_id", "rule", "triggered_on").is_unique().all()).item()
    _assert_same(now, found)


@pytest.mark.parametrize(
    "settings",
    [
        {"mrd_assessment_windows": ()},
        {"mrd_assessment_windows": ((10, 60), (30, 90), (30, 90)), "car_loss_confirmations": 3},
        {"recovery_confirmations": 1, "car_loss_confirmations": 1, "mrd_rising_factor": 3.0},
    ],
)
def test_other_settings_give_the_rows_they_gave_before(cohorts, settings):
    """Windows that overlap, repeat or are absent, and other confirmation counts."""
    config = dataclasses.replace(get_config(), **settings)
    patients, visits = cohorts[1]
    as_of = DATES[1]
    facts, found = _before(patients, visits, as_of, config=config)
    now = alert_evaluation.evaluate_patients(patients, visits, as_of, config)
    _assert_same(now.facts, facts)
    _assert_same(now.alerts, found)


def test_windows_sharing_a_last_day_are_each_judged_on_their_own():
    """The one deliberate difference from 15acef1. CONTRACT.md §4: a window without a marrow
    MRD result is missed. 15acef1 matched results to windows by their last day, so with the
    windows day 10–90 and 60–90 a result on day 20 also counted for day 60–90; now each window
    needs a result of its own (the default windows share no last day, so they are unaffected)."""
    patients, visits = hostile_cohort(400, 2)
    as_of = DATES[1]

    def missed(*windows: tuple[int, int]) -> set[tuple[str, date]]:
        config = dataclasses.replace(get_config(), mrd_assessment_windows=windows)
        found = alert_evaluation.evaluate_patients(patients, visits, as_of, config).alerts
        rows = found.filter(pl.col("rule") == "missed_mrd_assessment")
        return set(rows.select("patient_id", "triggered_on").iter_rows())

    wide, narrow = missed((10, 90)), missed((60, 90))
    assert narrow - wide, "the cohort has patients with a result in day 10–59 only"
    assert missed((10, 90), (60, 90)) == wide | narrow


def test_visits_without_a_patient_or_out_of_order_around_one_are_evaluated_as_before():
    """`derive_outcomes` and `evaluate_alerts` are public: a visit without a patient id is
    dropped as 15acef1 dropped it, and a null between two patients does not pass for order."""
    patients, visits = hostile_cohort(60, 5)
    ids = visits.get_column("patient_id").unique().sort()
    # [B, null, A]: each run in key order on its own, the whole frame not
    late, early = (
        visits.filter(pl.col("patient_id") == ids[-1]),
        visits.filter(pl.col("patient_id") == ids[0]),
    )
    orphan = late.head(1).with_columns(pl.lit(None, pl.String).alias("patient_id"))
    for shuffled in (
        pl.concat([orphan, visits]),
        pl.concat(
            [late, orphan, early, visits.filter(~pl.col("patient_id").is_in([ids[0], ids[-1]]))]
        ),
    ):
        as_of = DATES[2]
        config = get_config()
        facts, found = _before(patients, shuffled, as_of, config=config)
        now = alert_evaluation.evaluate_patients(patients, shuffled, as_of, config)
        _assert_same(now.facts, facts)
        _assert_same(now.alerts, found)
        _assert_same(outcomes.derive_outcomes(patients, shuffled, as_of, config), facts)


def test_a_patient_listed_twice_gets_the_visits_an_inner_join_gives():
    """`with_patient_columns` spreads one row per patient over the visits' runs; a patients
    frame that repeats a patient (no store holds one) falls back to the join it stands for."""
    visits = pl.DataFrame({"patient_id": ["A", "A", "B", "C"], "visit_date": [1, 2, 3, 4]})
    patients = pl.DataFrame({"patient_id": ["A", "B", "B"], "x": [10, 20, 21]})
    joined = outcomes.with_patient_columns(visits, patients, ["x"])
    expected = visits.join(patients, on="patient_id", how="inner", maintain_order="left")
    assert joined.equals(expected)
