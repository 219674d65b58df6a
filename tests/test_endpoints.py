"""Endpoint rows (CONTRACT.md §3), groupings and landmarks: one hand-checked patient per rule."""

from __future__ import annotations

from datetime import date
from typing import Any

import polars as pl
import pytest

from monitoring.endpoints import (
    add_group,
    apply_landmark,
    check_request,
    cir_causes,
    endpoint_frame,
    group_columns,
)
from monitoring.errors import UsageError
from monitoring.outcomes import derive_outcomes
from tests.factories import d, patient, patients_frame, visit, visits_frame

AS_OF = d(1000)
CR28: dict[str, Any] = {"disease_status": "CR"}


def outcomes(
    patient_rows: list[dict[str, Any]], visit_rows: list[dict[str, Any]], as_of: date = AS_OF
) -> pl.DataFrame:
    return derive_outcomes(patients_frame(*patient_rows), visits_frame(*visit_rows), as_of=as_of)


def rows_by_id(frame: pl.DataFrame, value: str = "event") -> dict[str, tuple[float, Any]]:
    return {r["patient_id"]: (r["time_days"], r[value]) for r in frame.iter_rows(named=True)}


def ep(
    patient_rows: list[dict[str, Any]],
    visit_rows: list[dict[str, Any]],
    endpoint: str,
    as_of: date = AS_OF,
    **flags: bool,
) -> dict[str, tuple[float, Any]]:
    frame = endpoint_frame(outcomes(patient_rows, visit_rows, as_of), endpoint, **flags)
    return rows_by_id(frame, "cause" if endpoint == "cir" else "event")


# a small cohort reused by several endpoints
RESPONDER_RELAPSE = [  # R: CR day 28, relapse day 200, dies day 300
    visit("R", 28, **CR28),
    visit("R", 200, disease_status="relapse", cd19_status="negative"),
]
COHORT_PATIENTS = [
    patient("R", death_date=d(300)),
    patient("N"),  # non-responder, alive, seen day 400
    patient("A", last_contact_date=d(700)),  # responder alive in remission
    patient("D", death_date=d(150), death_cause="infection"),  # responder, dies in remission
]
COHORT_VISITS = [
    *RESPONDER_RELAPSE,
    visit("N", 28, disease_status="no_response"),
    visit("N", 400, bm_blasts_pct=90),
    visit("A", 35, disease_status="CRi"),
    visit("A", 500),
    visit("D", 28, **CR28),
]


# --- os ----------------------------------------------------------------------------------


def test_os_death_is_event_alive_censored_at_last_contact() -> None:
    got = ep(COHORT_PATIENTS, COHORT_VISITS, "os")
    assert got == {
        "R": (300.0, True),
        "N": (400.0, False),
        "A": (700.0, False),
        "D": (150.0, True),
    }


# --- efs ---------------------------------------------------------------------------------


def test_efs_non_response_is_event_at_day_0_relapse_and_death_are_events() -> None:
    got = ep(COHORT_PATIENTS, COHORT_VISITS, "efs")
    assert got == {
        "R": (200.0, True),  # relapse before death
        "N": (0.0, True),  # non-response at day 0
        "A": (700.0, False),  # in remission at last contact
        "D": (150.0, True),  # death in remission
    }


def test_efs_pending_alive_is_censored_death_without_response_is_event_at_0() -> None:
    patients = [patient("alive"), patient("dead", death_date=d(40))]
    visits = [visit("alive", 28, disease_status="no_response"), visit("alive", 56)]
    got = ep(patients, visits, "efs", as_of=d(60))
    # revision 2: a death without response by day 90 is non-response (day 0) at once
    assert got == {"alive": (56.0, False), "dead": (0.0, True)}
    # the same alive patient becomes a non-responder (event at 0) once day 90 has passed
    assert ep(patients, visits, "efs", as_of=d(91))["alive"] == (0.0, True)


def test_efs_relapse_after_transplant_counts_without_censor_flag() -> None:
    patients = [patient("H", hsct_date=d(100), last_contact_date=d(800))]
    visits = [visit("H", 28, **CR28), visit("H", 400, disease_status="relapse")]
    assert ep(patients, visits, "efs") == {"H": (400.0, True)}
    assert ep(patients, visits, "efs", censor_at_new_therapy=True) == {"H": (100.0, False)}


def test_censor_at_new_therapy_moves_efs_and_rfs_censoring() -> None:
    patients = [
        patient("T", new_therapy_date=d(120), hsct_date=d(150), last_contact_date=d(900)),
        patient("L", hsct_date=d(250), death_date=d(260)),  # relapse day 200 before hsct
        patient("Z", new_therapy_date=d(0), last_contact_date=d(300)),  # non-responder
    ]
    visits = [
        visit("T", 30, **CR28),
        visit("L", 40, **CR28),
        visit("L", 200, disease_status="relapse"),
        visit("Z", 28, disease_status="no_response"),
    ]
    assert ep(patients, visits, "efs") == {
        "T": (900.0, False),
        "L": (200.0, True),
        "Z": (0.0, True),
    }
    assert ep(patients, visits, "efs", censor_at_new_therapy=True) == {
        "T": (120.0, False),  # earliest of new therapy (120) and hsct (150)
        "L": (200.0, True),  # the event came first
        "Z": (0.0, True),  # non-response at day 0 is not preceded by therapy on day 0
    }
    assert ep(patients, visits, "rfs", censor_at_new_therapy=True) == {
        "T": (90.0, False),  # from onset day 30
        "L": (160.0, True),
    }


# --- rfs ---------------------------------------------------------------------------------


def test_rfs_responders_from_remission_onset() -> None:
    got = ep(COHORT_PATIENTS, COHORT_VISITS, "rfs")
    assert got == {
        "R": (172.0, True),  # relapse day 200 - onset day 28
        "A": (665.0, False),  # last contact 700 - onset 35
        "D": (122.0, True),  # death in remission counts in rfs
    }


def test_pending_patients_are_not_in_responder_populations() -> None:
    patients = [patient("P")]
    visits = [visit("P", 20, disease_status="not_assessed")]
    for endpoint in ("rfs", "bca", "cir"):
        assert endpoint_frame(outcomes(patients, visits, d(60)), endpoint).is_empty()
    assert ep(patients, visits, "efs", as_of=d(60)) == {"P": (20.0, False)}


# --- bca ---------------------------------------------------------------------------------


def test_bca_event_is_bcell_recovery_or_relapse_whichever_first() -> None:
    patients = [patient("B"), patient("R", last_contact_date=d(900))]
    visits = [
        visit("B", 28, **CR28),
        visit("B", 180, bcell_pct_lymphocytes=2.0),
        visit("B", 210, bcell_pct_lymphocytes=4.0),
        visit("B", 300, disease_status="relapse"),
        visit("R", 28, **CR28, bcell_pct_lymphocytes=0.0),
        visit("R", 150, bcell_pct_lymphocytes=0.0),
        visit("R", 250, bm_blasts_pct=40, bcell_pct_lymphocytes=3.0),
        visit("R", 280, bcell_pct_lymphocytes=3.0),
    ]
    assert ep(patients, visits, "bca") == {"B": (180.0, True), "R": (250.0, True)}


def test_bca_transplant_censors_and_donor_bcells_or_later_relapse_are_not_events() -> None:
    patients = [patient("H", hsct_date=d(120), last_contact_date=d(700))]
    visits = [
        visit("H", 28, **CR28, bcell_pct_lymphocytes=0.0),
        visit("H", 100, bcell_pct_lymphocytes=0.1),
        visit("H", 200, bcell_pct_lymphocytes=20.0),
        visit("H", 230, bcell_pct_lymphocytes=25.0),
        visit("H", 400, disease_status="relapse"),
    ]
    # revision 2: the last B-cell assessment of any date (day 230) is after hsct: censored there
    assert ep(patients, visits, "bca") == {"H": (120.0, False)}


def test_bca_new_therapy_censors_and_later_recovery_is_no_event() -> None:
    patients = [patient("T", new_therapy_date=d(150))]
    visits = [
        visit("T", 28, **CR28),
        visit("T", 120, bcell_pct_lymphocytes=0.0),
        visit("T", 200, bcell_pct_lymphocytes=5.0),
        visit("T", 230, bcell_pct_lymphocytes=5.0),
    ]
    assert ep(patients, visits, "bca") == {"T": (150.0, False)}


def test_bca_censored_at_last_bcell_assessment_or_death() -> None:
    patients = [
        patient("L", last_contact_date=d(900)),
        patient("D", death_date=d(200)),
    ]
    visits = [
        visit("L", 28, **CR28),
        visit("L", 300, bcell_pct_lymphocytes=0.0),
        visit("L", 500, mrd_sample="BM", mrd_flow_fraction=0.0),  # no B cells measured
        visit("D", 28, **CR28, bcell_pct_lymphocytes=0.0),
    ]
    assert ep(patients, visits, "bca") == {"L": (300.0, False), "D": (28.0, False)}


def test_bca_without_any_bcell_assessment_is_censored_at_0_but_relapse_still_counts() -> None:
    patients = [patient("X", last_contact_date=d(800)), patient("Y")]
    visits = [
        visit("X", 28, **CR28),
        visit("Y", 28, **CR28),
        visit("Y", 300, disease_status="relapse"),
    ]
    assert ep(patients, visits, "bca") == {"X": (0.0, False), "Y": (300.0, True)}


def test_bca_non_responders_are_not_in_the_population() -> None:
    got = ep(COHORT_PATIENTS, COHORT_VISITS, "bca")
    assert set(got) == {"R", "A", "D"}


# --- car ---------------------------------------------------------------------------------


def test_car_population_event_and_censoring() -> None:
    patients = [
        patient("L"),
        patient("P"),
        patient("H", hsct_date=d(100)),
        patient("none"),
    ]
    visits = [
        visit("L", 14, car_copies_per_ug=9000.0),
        visit("L", 90, car_copies_per_ug=20.0),
        visit("L", 180, car_copies_per_ug=0.0),
        visit("P", 14, car_copies_per_ug=9000.0),
        visit("P", 365, car_copies_per_ug=800.0),
        visit("P", 400, bcell_pct_lymphocytes=0.0),
        visit("H", 30, car_copies_per_ug=500.0),
        visit("H", 150, car_copies_per_ug=0.0),
        visit("H", 200, car_copies_per_ug=0.0),
        visit("none", 28, **CR28),
    ]
    assert ep(patients, visits, "car") == {
        "L": (90.0, True),
        "P": (365.0, False),  # last CAR result, not last contact
        "H": (100.0, False),  # results after hsct: no loss, censored at hsct (revision 2)
    }


# --- cir ---------------------------------------------------------------------------------


def test_cir_relapse_death_without_relapse_competes_censored_at_last_contact() -> None:
    got = ep(COHORT_PATIENTS, COHORT_VISITS, "cir")
    assert got == {
        "R": (172.0, "relapse"),  # death after relapse does not change the cause
        "A": (665.0, ""),
        "D": (122.0, "death"),
    }


def test_cir_hsct_competing_only_when_in_remission() -> None:
    patients = [
        patient("H", hsct_date=d(100), last_contact_date=d(900)),
        patient("Hlate", hsct_date=d(300)),
        patient("Hsame", hsct_date=d(200)),
    ]
    visits = [
        visit("H", 28, **CR28),
        visit("H", 500, disease_status="relapse"),
        visit("Hlate", 28, **CR28),
        visit("Hlate", 200, disease_status="relapse"),
        visit("Hsame", 28, **CR28),
        visit("Hsame", 200, disease_status="relapse"),
    ]
    assert ep(patients, visits, "cir") == {
        "H": (472.0, "relapse"),
        "Hlate": (172.0, "relapse"),
        "Hsame": (172.0, "relapse"),
    }
    assert ep(patients, visits, "cir", hsct_competing=True) == {
        "H": (72.0, "hsct"),
        "Hlate": (172.0, "relapse"),
        "Hsame": (172.0, "relapse"),  # a transplant on the relapse day is not in remission
    }


def test_cir_by_cd19_splits_relapse_cause() -> None:
    patients = [patient(p) for p in ("pos", "neg", "ls", "unk", "dead")]
    visits = [visit(p, 28, **CR28) for p in ("pos", "neg", "ls", "unk", "dead")] + [
        visit("pos", 100, disease_status="relapse", cd19_status="positive"),
        visit("neg", 110, bm_blasts_pct=30, cd19_status="dim"),
        visit("ls", 120, disease_status="relapse", cd19_status="lineage_switch"),
        visit("unk", 130, disease_status="relapse"),
    ]
    patients[-1]["death_date"] = d(140)
    got = ep(patients, visits, "cir", by_cd19=True)
    assert got == {
        "pos": (72.0, "relapse_cd19_positive"),
        "neg": (82.0, "relapse_antigen_escape"),
        "ls": (92.0, "relapse_antigen_escape"),
        "unk": (102.0, "relapse_cd19_unknown"),
        "dead": (112.0, "death"),
    }


def test_cir_causes_order() -> None:
    assert cir_causes() == ("relapse", "death")
    assert cir_causes(hsct_competing=True, by_cd19=True) == (
        "relapse_cd19_positive",
        "relapse_antigen_escape",
        "relapse_cd19_unknown",
        "death",
        "hsct",
    )


# --- flags -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "flag"),
    [
        ("os", "censor_at_new_therapy"),
        ("cir", "censor_at_new_therapy"),
        ("efs", "hsct_competing"),
        ("rfs", "by_cd19"),
    ],
)
def test_flags_outside_their_endpoint_are_refused(endpoint: str, flag: str) -> None:
    with pytest.raises(UsageError, match="applies to"):
        endpoint_frame(outcomes(COHORT_PATIENTS, COHORT_VISITS), endpoint, **{flag: True})


def test_unknown_endpoint_lists_the_endpoints() -> None:
    with pytest.raises(UsageError, match="os, efs, rfs, bca, car, cir"):
        check_request("pfs")


def test_endpoint_frame_columns_and_types() -> None:
    o = add_group(outcomes(COHORT_PATIENTS, COHORT_VISITS), "site")
    km = endpoint_frame(o, "efs")
    assert km.columns[0] == "patient_id"
    assert {"site", "age_at_infusion_years", "group", "origin_day"} <= set(km.columns)
    assert km.schema["time_days"] == pl.Float64 and km.schema["event"] == pl.Boolean
    cir = endpoint_frame(o, "cir")
    assert cir.schema["cause"] == pl.String and "event" not in cir.columns


# --- groupings ---------------------------------------------------------------------------


def test_post_baseline_grouping_without_landmark_is_refused_with_why_and_how() -> None:
    o = outcomes(COHORT_PATIENTS, COHORT_VISITS)
    for by in ("early_bcell_recovery", "mrd_day28"):
        with pytest.raises(UsageError) as err:
            add_group(o, by, None)
        message = str(err.value)
        assert "only known after day 0" in message
        assert "immortal time" in message
        assert "Add --landmark DAYS, e.g. --landmark" in message
        with pytest.raises(UsageError, match="immortal time"):
            check_request("os", by)


def test_unknown_group_column_lists_available_ones() -> None:
    with pytest.raises(UsageError) as err:
        add_group(outcomes(COHORT_PATIENTS, COHORT_VISITS), "shoe_size")
    message = str(err.value)
    assert "shoe_size" in message
    for name in ("site", "age_group", "disease_burden", "infusion_year", "mrd_day28"):
        assert name in message
    assert set(group_columns()) >= {"site", "product", "kmt2a_rearranged", "early_bcell_recovery"}


def test_followup_columns_are_not_groupings() -> None:
    with pytest.raises(UsageError, match="follow-up outcome"):
        add_group(outcomes(COHORT_PATIENTS, COHORT_VISITS), "death_cause")


def test_no_by_is_group_all() -> None:
    o = add_group(outcomes(COHORT_PATIENTS, COHORT_VISITS), None)
    assert o["group"].cast(pl.String).unique().to_list() == ["all"]


def test_raw_column_groups_with_null_as_unknown_in_natural_order() -> None:
    patients = [
        patient("a", site="B", kmt2a_rearranged=True, age_at_infusion_years=12.0),
        patient("b", site=None, kmt2a_rearranged=False, age_at_infusion_years=2.0),
        patient("c", site="A", kmt2a_rearranged=None, age_at_infusion_years=None),
    ]
    o = outcomes(patients, [])
    site = add_group(o, "site")["group"]
    assert site.cast(pl.String).to_list() == ["B", "unknown", "A"]
    assert site.dtype == pl.Enum(["A", "B", "unknown"])
    assert add_group(o, "kmt2a_rearranged")["group"].cast(pl.String).to_list() == [
        "true",
        "false",
        "unknown",
    ]
    # a continuous column is grouped by its clinical bands, never one group per value
    age = add_group(o, "age_at_infusion_years")["group"]
    assert age.cast(pl.String).to_list() == ["10–17", "<3", "unknown"]
    assert age.dtype == pl.Enum(["<3", "3–9", "10–17", "≥18", "unknown"])


@pytest.mark.parametrize(
    ("age", "label"),
    [(0.5, "<3"), (2.99, "<3"), (3.0, "3–9"), (9.99, "3–9"), (10.0, "10–17"), (17.9, "10–17"),
     (18.0, "≥18"), (None, "unknown")],
)  # fmt: skip
def test_age_group(age: float | None, label: str) -> None:
    o = outcomes([patient("p", age_at_infusion_years=age)], [])
    group = add_group(o, "age_group")["group"]
    assert group.to_list() == [label]
    assert group.dtype == pl.Enum(["<3", "3–9", "10–17", "≥18", "unknown"])


@pytest.mark.parametrize(
    ("blasts", "label"),
    [(0.0, "<5 %"), (4.9, "<5 %"), (5.0, "5–<50 %"), (49.9, "5–<50 %"), (50.0, "≥50 %"),
     (100.0, "≥50 %"), (None, "unknown")],
)  # fmt: skip
def test_disease_burden(blasts: float | None, label: str) -> None:
    o = outcomes([patient("p", baseline_bm_blasts_pct=blasts)], [])
    assert add_group(o, "disease_burden")["group"].to_list() == [label]


def test_infusion_year() -> None:
    patients = [patient("a", infusion_date=date(2019, 12, 31)), patient("b")]
    assert add_group(outcomes(patients, []), "infusion_year")["group"].to_list() == [
        "2019",
        "2020",
    ]


def test_early_bcell_recovery_uses_only_data_up_to_the_landmark() -> None:
    patients = [patient(p) for p in ("early", "unconfirmed", "late", "never")]
    visits = [
        visit("early", 60, bcell_pct_lymphocytes=3.0),
        visit("early", 90, bcell_pct_lymphocytes=3.0),
        visit("unconfirmed", 150, bcell_pct_lymphocytes=3.0),  # confirmed only on day 200
        visit("unconfirmed", 200, bcell_pct_lymphocytes=3.0),
        visit("late", 190, bcell_pct_lymphocytes=3.0),
        visit("late", 220, bcell_pct_lymphocytes=3.0),
        visit("never", 60, bcell_pct_lymphocytes=0.0),
    ]
    o = outcomes(patients, visits)
    at_183 = add_group(o, "early_bcell_recovery", 183)["group"].to_list()
    assert dict(zip(o["patient_id"], at_183, strict=True)) == {
        "early": "yes",
        "unconfirmed": "no",
        "late": "no",
        "never": "no",
    }
    at_365 = add_group(o, "early_bcell_recovery", 365)["group"].to_list()
    assert dict(zip(o["patient_id"], at_365, strict=True))["unconfirmed"] == "yes"
    assert dict(zip(o["patient_id"], at_365, strict=True))["late"] == "no"  # dated after day 183


def test_mrd_day28_grouping_with_landmark() -> None:
    patients = [patient(p) for p in ("pos", "neg", "late_pos", "none")]
    visits = [
        visit("pos", 27, mrd_sample="BM", mrd_flow_fraction=0.002),
        visit("neg", 26, mrd_sample="BM", mrd_flow_fraction=0.0),
        visit("late_pos", 25, mrd_sample="BM", mrd_flow_fraction=0.0),
        visit("late_pos", 33, mrd_sample="BM", mrd_pcr_fraction=0.001),
        visit("none", 28, mrd_sample="PB", mrd_flow_fraction=0.5),
    ]
    o = outcomes(patients, visits)
    at_35 = dict(zip(o["patient_id"], add_group(o, "mrd_day28", 35)["group"], strict=True))
    assert at_35 == {
        "pos": "positive",
        "neg": "negative",
        "late_pos": "positive",
        "none": "not assessed",
    }
    at_30 = dict(zip(o["patient_id"], add_group(o, "mrd_day28", 30)["group"], strict=True))
    assert at_30["late_pos"] == "negative"  # the day-33 positive is not known on day 30


# --- landmark ----------------------------------------------------------------------------


def test_landmark_keeps_event_free_patients_and_reorigins_time() -> None:
    patients = [
        patient("early_event", death_date=d(100)),
        patient("late_event", death_date=d(400)),
        patient("censored_before", last_contact_date=d(150)),
        patient("censored_at", last_contact_date=d(183)),
        patient("event_at", death_date=d(183)),
        patient("alive", last_contact_date=d(1000)),
    ]
    frame = endpoint_frame(outcomes(patients, []), "os")
    got = rows_by_id(apply_landmark(frame, 183))
    assert got == {
        "late_event": (217.0, True),
        "censored_at": (0.0, False),
        "alive": (817.0, False),
    }
    assert apply_landmark(frame, 183)["origin_day"].unique().to_list() == [183]


def test_landmark_for_rfs_counts_from_infusion_and_needs_remission_by_then() -> None:
    patients = [patient("onset28", death_date=d(300)), patient("onset80", death_date=d(300))]
    visits = [visit("onset28", 28, **CR28), visit("onset80", 80, **CR28)]
    frame = endpoint_frame(outcomes(patients, visits), "rfs")
    assert rows_by_id(apply_landmark(frame, 60)) == {"onset28": (240.0, True)}
    cir = endpoint_frame(outcomes(patients, visits), "cir")
    assert rows_by_id(apply_landmark(cir, 90), "cause") == {
        "onset28": (210.0, "death"),
        "onset80": (210.0, "death"),
    }


def test_negative_landmark_is_refused() -> None:
    with pytest.raises(UsageError, match="landmark"):
        check_request("os", None, -1)
