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


def test_rev2_6_thresholds_at_the_boundary_in_alerts() -> None:
    patients = [patient(p, last_contact_date=d(400)) for p in ("BL", "IGG", "MRD", "APL", "RISE")]
    visits = [
        visit("BL", 28, **CR, mrd_sample="BM", mrd_flow_fraction=0.0),
        visit("BL", 150, bm_blasts_pct=BLASTS_5),
        # IgG of 400 mg/dL is not below 400: no alert
        visit("IGG", 28, **CR, mrd_sample="BM", mrd_flow_fraction=0.0, igg_mg_dl=IGG_400),
        # flow MRD of 0.0001 on day 28 is detected
        visit("MRD", 28, **CR, mrd_sample="BM", mrd_flow_fraction=FLOW_0_0001),
        # B cells at 50/µL are not aplastic: detected MRD then is no mrd_with_aplasia
        visit("APL", 28, **CR, mrd_sample="BM", mrd_flow_fraction=0.0),
        visit("APL", 120, bcell_per_ul=PER_UL_50),
        visit("APL", 130, mrd_sample="PB", mrd_flow_fraction=0.001),
        # 0.00012 → 0.0012 in marrow is exactly 10 ×: rising
        visit("RISE", 28, **CR, mrd_sample="BM", mrd_flow_fraction=0.0),
        visit("RISE", 100, mrd_sample="BM", mrd_flow_fraction=0.00012),
        visit("RISE", 130, mrd_sample="BM", mrd_flow_fraction=0.0012),
    ]
    alerts = alerts_of(patients, visits, d(400))
    assert ("BL", "relapse", 150) in alerts
    assert [a for a in alerts if a[1] == "hypogammaglobulinemia"] == []
    assert ("MRD", "mrd_early_positive", 28) in alerts
    assert [a for a in alerts if a[1] == "mrd_with_aplasia"] == []
    assert ("RISE", "mrd_rising", 130) in alerts


# ---- 6. mrd_rising: same method and same sample ---------------------------------------------
def test_rev2_6_mrd_rising_same_method_and_sample() -> None:
    patients = [patient(p, last_contact_date=d(400)) for p in ("S", "PB_BM", "NGS")]
    visits = [
        # S: marrow 1e-4, blood 1e-2 (another sample), marrow 1e-3: the marrow pair is 10 ×
        visit("S", 28, **CR, mrd_sample="BM", mrd_flow_fraction=0.0),
        visit("S", 60, mrd_sample="BM", mrd_flow_fraction=0.0001),
        visit("S", 90, mrd_sample="PB", mrd_flow_fraction=0.01),
        visit("S", 120, mrd_sample="BM", mrd_flow_fraction=0.001),
        # PB_BM: blood 2e-4 then marrow 5e-3: 25 × but blood → marrow is no rise
        visit("PB_BM", 28, **CR, mrd_sample="BM", mrd_flow_fraction=0.0),
        visit("PB_BM", 60, mrd_sample="PB", mrd_flow_fraction=0.0002),
        visit("PB_BM", 90, mrd_sample="BM", mrd_flow_fraction=0.005),
        # NGS: marrow NGS 3e-5 then 3e-4 (10 ×, decimal), the flow in between is another method
        visit("NGS", 28, **CR, mrd_sample="BM", mrd_ngs_fraction=0.00003),
        visit("NGS", 60, mrd_sample="BM", mrd_flow_fraction=0.0002),
        visit("NGS", 90, mrd_sample="BM", mrd_ngs_fraction=0.0003),
    ]
    rising = [a for a in alerts_of(patients, visits, d(400)) if a[1] == "mrd_rising"]
    assert rising == [("NGS", "mrd_rising", 90), ("S", "mrd_rising", 120)]


# ---- 7. episodes: hypogammaglobulinemia and mrd_with_aplasia once per episode ----------------
def test_rev2_7_hypogammaglobulinemia_once_per_episode() -> None:
    patients = [patient("G", last_contact_date=d(400))]
    visits = [
        visit("G", 60, igg_mg_dl=300.0),  # episode 1 starts
        visit("G", 90, igg_mg_dl=350.0),  # same episode
        visit("G", 120, igg_mg_dl=380.0, ivig_within_30d=True),  # after IVIG: ignored
        visit("G", 150, igg_mg_dl=700.0, ivig_within_30d=True),  # after IVIG: does not end it
        visit("G", 180, igg_mg_dl=310.0, ivig_within_30d=False),  # same episode
        visit("G", 210, igg_mg_dl=450.0),  # native ≥ 400: episode 1 ends
        visit("G", 240, igg_mg_dl=390.0),  # episode 2 starts
        visit("G", 270, igg_mg_dl=395.0),
    ]
    hypo = [a for a in alerts_of(patients, visits, d(400)) if a[1] == "hypogammaglobulinemia"]
    assert hypo == [("G", "hypogammaglobulinemia", 60), ("G", "hypogammaglobulinemia", 240)]


def test_rev2_7_mrd_with_aplasia_once_per_episode_and_not_from_hsct() -> None:
    patients = [patient("E", hsct_date=d(250), last_contact_date=d(400))]
    aplastic = {"bcell_pct_lymphocytes": 0.0}
    visits = [
        visit("E", 28, **CR, mrd_sample="BM", mrd_flow_fraction=0.0, **aplastic),
        visit("E", 60, mrd_sample="BM", mrd_flow_fraction=0.001, **aplastic),  # episode 1
        visit("E", 75, **aplastic),  # no MRD result: the episode goes on
        visit("E", 90, mrd_sample="BM", mrd_flow_fraction=0.002, **aplastic),  # same episode
        visit("E", 120, mrd_sample="BM", mrd_flow_fraction=0.0, **aplastic),  # negative: ends
        visit("E", 150, mrd_sample="PB", mrd_flow_fraction=0.0005, **aplastic),  # episode 2
        # day 185: the last B-cell assessment (day 150) is 35 days old: does not qualify, ends
        visit("E", 185, mrd_sample="BM", mrd_flow_fraction=0.001),
        visit("E", 200, mrd_sample="BM", mrd_flow_fraction=0.001, **aplastic),  # episode 3
        visit("E", 260, mrd_sample="BM", mrd_flow_fraction=0.0),
        visit("E", 270, mrd_sample="BM", mrd_flow_fraction=0.001, **aplastic),  # after hsct
    ]
    aplasia = [a for a in alerts_of(patients, visits, d(400)) if a[1] == "mrd_with_aplasia"]
    assert aplasia == [
        ("E", "mrd_with_aplasia", 60),
        ("E", "mrd_with_aplasia", 150),
        ("E", "mrd_with_aplasia", 200),
    ]


# ---- 8. recovery or CAR loss before remission onset fires on the onset date ------------------
def test_rev2_8_recovery_and_car_loss_before_onset_fire_on_onset() -> None:
    patients = [patient(p, last_contact_date=d(400)) for p in ("B", "C", "LATE")]
    visits = [
        # B: B cells recovered on day 30 (confirmed day 45); remission onset (CRi) on day 60
        visit("B", 30, disease_status="not_assessed", bcell_pct_lymphocytes=3.0),
        visit("B", 45, bcell_pct_lymphocytes=4.0),
        visit("B", 60, disease_status="CRi", mrd_sample="BM", mrd_flow_fraction=0.0),
        # C: CAR below 50 on day 14 and 21 (loss dated day 14); remission onset on day 28
        visit("C", 14, car_copies_per_ug=20.0),
        visit("C", 21, car_copies_per_ug=0.0),
        visit("C", 28, **CR, mrd_sample="BM", mrd_flow_fraction=0.0),
        # LATE: recovery first seen day 100, confirmed only on the relapse day 130: nothing
        visit("LATE", 28, **CR, mrd_sample="BM", mrd_flow_fraction=0.0),
        visit("LATE", 100, bcell_pct_lymphocytes=3.0, car_copies_per_ug=10.0),
        visit("LATE", 130, bm_blasts_pct=40.0, bcell_pct_lymphocytes=5.0, car_copies_per_ug=0.0),
    ]
    alerts = alerts_of(patients, visits, d(400))
    scoped = {"early_bcell_recovery", "bcell_recovery", "car_loss"}
    assert [a for a in alerts if a[1] in scoped] == [
        ("B", "early_bcell_recovery", 60),
        ("C", "car_loss", 28),
    ]
    # the message says when the finding was dated
    frame = evaluate_alerts(*_frames(patients, visits), d(400))
    message = frame.filter(pl.col("rule") == "early_bcell_recovery")["message"].item()
    assert "on day 30, confirmed on day 45" in message
    assert "before remission onset on day 60" in message
    # the endpoint is unchanged: bca counts the recovery on its own date (day 30)
    assert endpoint_rows(patients, visits, "bca", d(400))["B"] == (30.0, True)
