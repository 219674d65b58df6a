"""CONTRACT.md revision 2 (issue 10): one hand-checked patient per changed rule, checked in the
outcomes, the endpoint tables and the alerts where the rule reaches them.

Dates are `d(n)` = day n after the infusion on 2020-01-01 (tests/factories.py). Each test names
the contract point it checks; the expected numbers are worked out by hand in the comments.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from monitoring.alerts import evaluate_alerts
from monitoring.config import Config, load_config
from monitoring.endpoints import ENDPOINTS, endpoint_frame
from monitoring.outcomes import derive_outcomes
from tests.factories import d, patient, patients_frame, visit, visits_frame

CR: dict[str, Any] = {"disease_status": "CR"}


def _frames(
    patient_rows: list[dict[str, Any]], visit_rows: list[dict[str, Any]]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    return patients_frame(*patient_rows), visits_frame(*visit_rows)


def endpoint_rows(
    patient_rows: list[dict[str, Any]],
    visit_rows: list[dict[str, Any]],
    endpoint: str,
    as_of: date,
    config: Config | None = None,
) -> dict[str, tuple[float, Any]]:
    """patient_id → (time_days, event or cause) of one endpoint table."""
    outcomes = derive_outcomes(*_frames(patient_rows, visit_rows), as_of=as_of, config=config)
    frame = endpoint_frame(outcomes, endpoint)
    value = "cause" if endpoint == "cir" else "event"
    return {r["patient_id"]: (r["time_days"], r[value]) for r in frame.iter_rows(named=True)}


def alerts_of(
    patient_rows: list[dict[str, Any]],
    visit_rows: list[dict[str, Any]],
    as_of: date,
    config: Config | None = None,
    flags: pl.DataFrame | None = None,
) -> list[tuple[str, str, int]]:
    """(patient_id, rule, day) of every alert, sorted."""
    alerts = evaluate_alerts(*_frames(patient_rows, visit_rows), as_of, config=config, flags=flags)
    return sorted(zip(alerts["patient_id"], alerts["rule"], alerts["day"], strict=True))


def rules_of(alerts: list[tuple[str, str, int]], patient_id: str) -> list[tuple[str, int]]:
    return [(rule, day) for pid, rule, day in alerts if pid == patient_id]


# ---- 1. as of a date: patient dates after it are ignored; a later infusion is nowhere -------
AS_OF_PATIENTS = [
    # hsct, new therapy, death and last contact all after the evaluation date d(150)
    patient(
        "A",
        hsct_date=d(200),
        new_therapy_date=d(220),
        death_date=d(300),
        death_cause="infection",
        last_contact_date=d(290),
    ),
    # infused on d(160), after the evaluation date; a pre-infusion visit on d(130) is before it
    patient("LATE", infusion_date=d(160), last_contact_date=d(170)),
]
AS_OF_VISITS = [
    visit("A", 28, **CR, bcell_pct_lymphocytes=0.0, car_copies_per_ug=5000.0),
    visit("A", 120, bcell_pct_lymphocytes=0.0, car_copies_per_ug=3000.0),
    visit("LATE", -30, infusion=d(160), new_malignancy=True),
]


def test_rev2_1_endpoints_ignore_patient_dates_after_as_of_and_later_infusions() -> None:
    # as of d(150) A is alive, untransplanted and last seen on day 120 (the visit)
    expected = {
        "os": {"A": (120.0, False)},
        "efs": {"A": (120.0, False)},
        "rfs": {"A": (92.0, False)},  # from remission onset on day 28
        "bca": {"A": (120.0, False)},  # last B-cell assessment, no hsct yet
        "car": {"A": (120.0, False)},  # last CAR result, no hsct yet
        "cir": {"A": (92.0, "")},
    }
    for endpoint in ENDPOINTS:
        got = endpoint_rows(AS_OF_PATIENTS, AS_OF_VISITS, endpoint, d(150))
        assert got == expected[endpoint], endpoint
    # later, every recorded date counts: death on day 300 ends os; hsct on day 200 censors bca/car
    assert endpoint_rows(AS_OF_PATIENTS, AS_OF_VISITS, "os", d(400))["A"] == (300.0, True)
    assert endpoint_rows(AS_OF_PATIENTS, AS_OF_VISITS, "bca", d(400))["A"] == (120.0, False)


def test_rev2_1_alerts_ignore_patient_dates_after_as_of_and_later_infusions() -> None:
    flags = pl.DataFrame(
        {
            "patient_id": ["LATE"],
            "user_name": ["dr"],
            "severity": ["high"],
            "note": ["worried"],
            "raised_on": [d(140)],
            "at": ["2020-05-20T10:00:00+00:00"],
        }
    )
    alerts = alerts_of(AS_OF_PATIENTS, AS_OF_VISITS, d(150), flags=flags)
    # LATE is infused after d(150): no alert at all, not even new_malignancy or the flag
    assert rules_of(alerts, "LATE") == []
    # A's death on d(300) is not known on d(150): data rules still fire (no marrow MRD in the
    # day 21-35 and 76-104 windows)
    assert rules_of(alerts, "A") == [("missed_mrd_assessment", 35), ("missed_mrd_assessment", 104)]
    # once the death is known, no data rule fires any more
    assert rules_of(alerts_of(AS_OF_PATIENTS, AS_OF_VISITS, d(400)), "A") == []


# ---- 2. death without response by day 90: non-responder from the death date -----------------
DEATH_PATIENTS = [patient("D40", death_date=d(40), death_cause="infection")]
DEATH_VISITS = [visit("D40", 14, disease_status="not_assessed")]


def test_rev2_2_death_without_response_is_non_response_at_once() -> None:
    outcomes = derive_outcomes(*_frames(DEATH_PATIENTS, DEATH_VISITS), as_of=d(60))
    assert outcomes["response"].to_list() == ["non_responder"]
    # as of day 60 (before day 90 has passed) EFS already has the event at day 0
    assert endpoint_rows(DEATH_PATIENTS, DEATH_VISITS, "efs", d(60)) == {"D40": (0.0, True)}
    assert endpoint_rows(DEATH_PATIENTS, DEATH_VISITS, "os", d(60)) == {"D40": (40.0, True)}
    # not in the responder populations
    for endpoint in ("rfs", "bca", "cir"):
        assert endpoint_rows(DEATH_PATIENTS, DEATH_VISITS, endpoint, d(60)) == {}
    # before the death is known the patient is still pending and alive
    before = derive_outcomes(*_frames(DEATH_PATIENTS, DEATH_VISITS), as_of=d(30))
    assert before["response"].to_list() == ["pending"]
    assert endpoint_rows(DEATH_PATIENTS, DEATH_VISITS, "efs", d(30)) == {"D40": (14.0, False)}


# ---- 3. last contact includes hsct_date and new_therapy_date ---------------------------------
CONTACT_PATIENTS = [
    patient("H", hsct_date=d(300)),  # last visit day 100, transplanted day 300
    patient("T", new_therapy_date=d(250), last_contact_date=d(100)),
]
CONTACT_VISITS = [
    visit("H", 28, **CR, mrd_sample="BM", mrd_flow_fraction=0.0),
    visit("H", 100),
    visit("T", 28, **CR, mrd_sample="BM", mrd_flow_fraction=0.0),
]


def test_rev2_3_last_contact_includes_hsct_and_new_therapy_in_endpoints() -> None:
    as_of = d(600)
    assert endpoint_rows(CONTACT_PATIENTS, CONTACT_VISITS, "os", as_of) == {
        "H": (300.0, False),
        "T": (250.0, False),
    }
    assert endpoint_rows(CONTACT_PATIENTS, CONTACT_VISITS, "efs", as_of) == {
        "H": (300.0, False),
        "T": (250.0, False),
    }
    assert endpoint_rows(CONTACT_PATIENTS, CONTACT_VISITS, "cir", as_of) == {
        "H": (272.0, ""),
        "T": (222.0, ""),
    }
    # a transplant after the evaluation date is not a contact yet (point 1)
    assert endpoint_rows(CONTACT_PATIENTS, CONTACT_VISITS, "os", d(280))["H"] == (100.0, False)


def test_rev2_3_followup_overdue_counts_from_hsct_and_new_therapy() -> None:
    # on day 600: 300 days since H's transplant, 350 since T's new therapy: not overdue
    overdue = [
        a for a in alerts_of(CONTACT_PATIENTS, CONTACT_VISITS, d(600)) if a[1] == "followup_overdue"
    ]
    assert overdue == []
    # on day 800: 500 and 550 days; triggered on the transplant / new-therapy date
    overdue = [
        a for a in alerts_of(CONTACT_PATIENTS, CONTACT_VISITS, d(800)) if a[1] == "followup_overdue"
    ]
    assert overdue == [("H", "followup_overdue", 300), ("T", "followup_overdue", 250)]


# ---- 4. the relapse blast threshold is a site setting ----------------------------------------
BLAST_PATIENTS = [patient("B", last_contact_date=d(400))]
BLAST_VISITS = [
    visit("B", 28, **CR),
    visit("B", 100, bm_blasts_pct=7.0),
    visit("B", 200, bm_blasts_pct=12.0),
]


def test_rev2_4_relapse_blast_threshold_from_config_in_endpoints_and_alerts() -> None:
    as_of = d(400)
    assert endpoint_rows(BLAST_PATIENTS, BLAST_VISITS, "rfs", as_of) == {"B": (72.0, True)}
    assert ("B", "relapse", 100) in alerts_of(BLAST_PATIENTS, BLAST_VISITS, as_of)
    ten = replace(Config(), relapse_bm_blasts_pct=10.0)
    assert endpoint_rows(BLAST_PATIENTS, BLAST_VISITS, "rfs", as_of, ten) == {"B": (172.0, True)}
    assert endpoint_rows(BLAST_PATIENTS, BLAST_VISITS, "efs", as_of, ten) == {"B": (200.0, True)}
    relapses = [a for a in alerts_of(BLAST_PATIENTS, BLAST_VISITS, as_of, ten) if a[1] == "relapse"]
    assert relapses == [("B", "relapse", 200)]


def test_rev2_4_relapse_blast_threshold_loads_from_the_site_file(tmp_path: Path) -> None:
    assert Config().relapse_bm_blasts_pct == 5.0
    site = tmp_path / "ltfu.toml"
    site.write_text("[thresholds]\nrelapse_bm_blasts_pct = 10.0\n", encoding="utf-8")
    assert load_config(site).relapse_bm_blasts_pct == 10.0


# ---- 5. bca and car censoring: last result of any date, also after hsct ----------------------
CENSOR_PATIENTS = [
    patient("H", hsct_date=d(120), last_contact_date=d(700)),  # assessed before and after hsct
    patient("AFTER", hsct_date=d(60), last_contact_date=d(700)),  # assessed only after hsct
    patient("NONE", last_contact_date=d(700)),  # responder, never assessed
]
CENSOR_VISITS = [
    visit("H", 28, **CR, bcell_pct_lymphocytes=0.0, car_copies_per_ug=5000.0),
    visit("H", 100, bcell_pct_lymphocytes=0.1, car_copies_per_ug=2000.0),
    visit("H", 200, bcell_pct_lymphocytes=20.0, car_copies_per_ug=0.0),  # donor B cells
    visit("H", 230, bcell_pct_lymphocytes=25.0, car_copies_per_ug=0.0),
    visit("AFTER", 28, **CR),
    visit("AFTER", 90, bcell_pct_lymphocytes=0.0, car_copies_per_ug=100.0),
    visit("AFTER", 150, bcell_pct_lymphocytes=30.0, car_copies_per_ug=0.0),
    visit("NONE", 28, **CR),
]


def test_rev2_5_bca_censored_at_hsct_when_assessed_after_it() -> None:
    assert endpoint_rows(CENSOR_PATIENTS, CENSOR_VISITS, "bca", d(1000)) == {
        "H": (120.0, False),  # min(last assessment day 230, hsct day 120)
        "AFTER": (60.0, False),  # min(last assessment day 150, hsct day 60)
        "NONE": (0.0, False),  # no B-cell assessment at all
    }


def test_rev2_5_car_population_and_censoring_count_results_of_any_date() -> None:
    assert endpoint_rows(CENSOR_PATIENTS, CENSOR_VISITS, "car", d(1000)) == {
        "H": (120.0, False),  # min(last CAR result day 230, hsct day 120); no loss before hsct
        "AFTER": (60.0, False),  # CAR results only after hsct: in the population
    }


def test_rev2_5_donor_bcells_and_car_after_hsct_raise_no_alert() -> None:
    rules = {rule for _pid, rule, _day in alerts_of(CENSOR_PATIENTS, CENSOR_VISITS, d(1000))}
    assert not rules & {"early_bcell_recovery", "bcell_recovery", "car_loss", "mrd_with_aplasia"}


# ---- 6. thresholds at their exact decimal boundary (binary floating point must not decide) ---
# Each value below is the threshold in decimal, computed the way values reach the store (unit
# conversions, spreadsheet formulas); in binary each lands a hair under the threshold:
FLOW_0_0001 = 0.0003 / 3  # 9.999999999999999e-05
BLASTS_5 = 0.35 / 0.07  # 4.999999999999999
BCELL_PCT_1 = 1.15 - 0.15  # 0.9999999999999999
PER_UL_50 = 55 / 1.1  # 49.99999999999999 (B cells/µL and CAR copies/µg)
IGG_400 = 440 / 1.1  # 399.99999999999994


def test_rev2_6_the_boundary_values_are_below_their_threshold_in_binary() -> None:
    # the premise of the tests below: a raw float comparison would get every one wrong
    assert FLOW_0_0001 < 0.0001 and BLASTS_5 < 5 and BCELL_PCT_1 < 1
    assert PER_UL_50 < 50 and IGG_400 < 400
    assert 0.0012 < 10 * 0.00012


def test_rev2_6_thresholds_at_the_boundary_in_outcomes_and_endpoints() -> None:
    patients = [patient(p, last_contact_date=d(400)) for p in ("BL", "PCT", "UL", "CAR", "MRD")]
    visits = [
        visit("BL", 28, **CR),
        visit("BL", 150, bm_blasts_pct=BLASTS_5),  # ≥ 5 % marrow blasts: relapse
        visit("PCT", 28, **CR),
        visit("PCT", 60, bcell_pct_lymphocytes=BCELL_PCT_1),  # ≥ 1 %: recovered
        visit("PCT", 90, bcell_pct_lymphocytes=BCELL_PCT_1),
        visit("UL", 28, **CR),
        visit("UL", 60, bcell_per_ul=PER_UL_50),  # ≥ 50/µL: recovered
        visit("UL", 90, bcell_per_ul=PER_UL_50),
        visit("CAR", 28, **CR, car_copies_per_ug=9000.0),
        visit("CAR", 60, car_copies_per_ug=PER_UL_50),  # 50 copies/µg is not below 50
        visit("CAR", 90, car_copies_per_ug=PER_UL_50),
        visit("MRD", 28, **CR, mrd_sample="BM", mrd_flow_fraction=FLOW_0_0001),  # detected
    ]
    outcomes = derive_outcomes(*_frames(patients, visits), as_of=d(400)).rows_by_key(
        "patient_id", named=True, unique=True
    )
    assert outcomes["BL"]["relapse_day"] == 150
    assert outcomes["PCT"]["bcell_recovery_day"] == 60
    assert outcomes["UL"]["bcell_recovery_day"] == 60
    assert outcomes["CAR"]["car_loss_date"] is None
    assert outcomes["MRD"]["mrd_day28_positive_day"] == 28
    assert outcomes["MRD"]["mrd_day28_negative_day"] is None
    assert endpoint_rows(patients, visits, "rfs", d(400))["BL"] == (122.0, True)
    bca = endpoint_rows(patients, visits, "bca", d(400))
    assert bca["PCT"] == (60.0, True) and bca["UL"] == (60.0, True)
    assert endpoint_rows(patients, visits, "car", d(400))["CAR"] == (90.0, False)
