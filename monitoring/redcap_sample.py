"""A synthetic REDCap project of the demo cohort, made by code: its data dictionary, a raw and a
label flat export (events and repeat instances), a copy with planted mistakes, and a lab-style
spreadsheet (percent MRD, IgG in g/L, B cells in 10^9/L, day/month/year dates).

Every value is derived from the canonical CSV text with `Decimal`, so ingesting an export with
its profile gives back exactly the canonical values (tests/test_redcap_roundtrip.py).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import polars as pl

from monitoring.ingest.mapping import plain_decimal

# (variable, form, field type, label, choices "code, label | …", validation)
FIELDS: tuple[tuple[str, str, str, str, str, str], ...] = (
    ("record_id", "enrolment", "text", "Record ID", "", ""),
    ("sex", "enrolment", "radio", "Sex", "1, Female | 2, Male | 3, Unknown", ""),
    ("age_years", "enrolment", "text", "Age at infusion (years)", "", "number"),
    (
        "product",
        "enrolment",
        "dropdown",
        "CAR-T product",
        "1, tisagenlecleucel | 2, obecabtagene autoleucel | 3, academic CD19-41BB | 4, CD19/CD22",
        "",
    ),
    ("infusion_date", "enrolment", "text", "CAR-T infusion date", "", "date_ymd"),
    ("prior_hsct", "enrolment", "yesno", "Prior HSCT", "", ""),
    ("prior_blina", "enrolment", "yesno", "Prior blinatumomab", "", ""),
    ("kmt2a", "enrolment", "yesno", "KMT2A rearranged", "", ""),
    ("baseline_blasts", "enrolment", "text", "Baseline marrow blasts (%)", "", "number"),
    ("hsct_date", "outcome", "text", "Consolidative HSCT date", "", "date_ymd"),
    ("new_tx_date", "outcome", "text", "New anti-leukemic therapy date", "", "date_ymd"),
    ("last_contact", "outcome", "text", "Last contact date", "", "date_ymd"),
    ("death_date", "outcome", "text", "Date of death", "", "date_ymd"),
    (
        "death_cause",
        "outcome",
        "dropdown",
        "Cause of death",
        "1, Relapse | 2, Treatment-related | 3, Infection | 4, Other | 5, Unknown",
        "",
    ),
    ("assess_date", "assessment", "text", "Assessment date", "", "date_ymd"),
    (
        "status",
        "assessment",
        "dropdown",
        "Disease status",
        "1, Complete remission (CR) | 2, CR with incomplete recovery (CRi) | 3, Relapse "
        "| 4, No response | 5, Not assessed",
        "",
    ),
    ("bm_blasts", "assessment", "text", "Marrow blasts (%)", "", "number"),
    (
        "mrd_specimen",
        "assessment",
        "radio",
        "MRD specimen",
        "1, Bone marrow | 2, Peripheral blood",
        "",
    ),
    ("mrd_flow_pct", "assessment", "text", "Flow MRD (%)", "", ""),
    ("mrd_ngs_pct", "assessment", "text", "NGS MRD (%)", "", ""),
    ("mrd_pcr_pct", "assessment", "text", "RQ-PCR MRD (%)", "", ""),
    ("bcell_pct", "assessment", "text", "CD19+ B cells (% of lymphocytes)", "", "number"),
    ("bcell_abs", "assessment", "text", "CD19+ B cells (cells/µL)", "", "number"),
    ("car_copies", "assessment", "text", "CAR transgene (copies/µg DNA)", "", ""),
    ("car_pct", "assessment", "text", "CAR+ T cells (% of CD3+)", "", "number"),
    ("igg_gl", "assessment", "text", "Serum IgG (g/L)", "", "number"),
    ("ivig", "assessment", "yesno", "IVIG within 30 days before IgG", "", ""),
    (
        "cd19",
        "assessment",
        "dropdown",
        "CD19 on leukemic cells",
        "1, Positive | 2, Dim | 3, Partial | 4, Negative | 5, Lineage switch",
        "",
    ),
    (
        "relapse_site",
        "assessment",
        "checkbox",
        "Relapse site(s)",
        "1, Marrow | 2, CNS | 3, Testis | 4, Other extramedullary",
        "",
    ),
    ("new_malig", "assessment", "yesno", "Second malignancy", "", ""),
    ("comments", "assessment", "notes", "Comments", "", ""),
)
SITE_LABELS = {
    "PHL": "Philadelphia",
    "SEA": "Seattle",
    "CIN": "Cincinnati",
    "LON": "London",
    "MUN": "Munich",
    "BCN": "Barcelona",
}
EVENTS = {
    "enrolment_arm_1": "Enrolment (Arm 1: Main)",
    "day_28_arm_1": "Day 28 (Arm 1: Main)",
    "follow_up_arm_1": "Follow-up (Arm 1: Main)",
    "outcome_arm_1": "Long-term outcome (Arm 1: Main)",
}
# canonical code → REDCap raw code, per field
CODES: dict[str, dict[str, str]] = {
    "sex": {"F": "1", "M": "2", "U": "3"},
    "product": {
        "tisagenlecleucel": "1",
        "obecabtagene autoleucel": "2",
        "academic CD19-41BB": "3",
        "CD19/CD22": "4",
    },
    "death_cause": {
        "relapse": "1",
        "treatment_related": "2",
        "infection": "3",
        "other": "4",
        "unknown": "5",
    },
    "status": {"CR": "1", "CRi": "2", "relapse": "3", "no_response": "4", "not_assessed": "5"},
    "mrd_specimen": {"BM": "1", "PB": "2"},
    "cd19": {"positive": "1", "dim": "2", "partial": "3", "negative": "4", "lineage_switch": "5"},
}
RELAPSE_BOXES: dict[str, tuple[str, ...]] = {
    "marrow": ("1",),
    "cns": ("2",),
    "testis": ("3",),
    "other_extramedullary": ("4",),
    "combined": ("1", "2"),  # marrow and CNS: the common combined relapse
}
PATIENT_FIELDS = {
    "sex": "sex",
    "age_years": "age_at_infusion_years",
    "product": "product",
    "infusion_date": "infusion_date",
    "prior_hsct": "prior_hsct",
    "prior_blina": "prior_blinatumomab",
    "kmt2a": "kmt2a_rearranged",
    "baseline_blasts": "baseline_bm_blasts_pct",
}
OUTCOME_FIELDS = {
    "hsct_date": "hsct_date",
    "new_tx_date": "new_therapy_date",
    "last_contact": "last_contact_date",
    "death_date": "death_date",
    "death_cause": "death_cause",
}
VISIT_FIELDS = {
    "assess_date": "visit_date",
    "status": "disease_status",
    "bm_blasts": "bm_blasts_pct",
    "mrd_specimen": "mrd_sample",
    "mrd_flow_pct": "mrd_flow_fraction",
    "mrd_ngs_pct": "mrd_ngs_fraction",
    "mrd_pcr_pct": "mrd_pcr_fraction",
    "bcell_pct": "bcell_pct_lymphocytes",
    "bcell_abs": "bcell_per_ul",
    "car_copies": "car_copies_per_ug",
    "car_pct": "car_pct_cd3",
    "igg_gl": "igg_mg_dl",
    "ivig": "ivig_within_30d",
    "cd19": "cd19_status",
    "new_malig": "new_malignancy",
    "comments": "comment",
}
PERCENT_FIELDS = ("mrd_flow_pct", "mrd_ngs_pct", "mrd_pcr_pct")
YESNO = ("prior_hsct", "prior_blina", "kmt2a", "ivig", "new_malig")


def _choices(field: str) -> dict[str, str]:
    text = next(f[4] for f in FIELDS if f[0] == field)
    out: dict[str, str] = {}
    for part in text.split("|"):
        code, label = part.split(",", 1)
        out[code.strip()] = label.strip()
    return out


def data_dictionary_csv() -> str:
    """The project's data dictionary as REDCap exports it."""
    header = [
        "Variable / Field Name",
        "Form Name",
        "Section Header",
        "Field Type",
        "Field Label",
        "Choices, Calculations, OR Slider Labels",
        "Field Note",
        "Text Validation Type OR Show Slider Number",
        "Text Validation Min",
        "Text Validation Max",
        "Identifier?",
        "Branching Logic (Show field only if...)",
        "Required Field?",
        "Custom Alignment",
        "Question Number (surveys only)",
        "Matrix Group Name",
        "Matrix Ranking?",
        "Field Annotation",
    ]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for name, form, ftype, label, choices, validation in FIELDS:
        writer.writerow(
            [
                name,
                form,
                "",
                ftype,
                label,
                choices,
                "",
                validation,
                "",
                "",
                "",
                "",
                "",
                "",
                "",
                "",
                "",
                "",
            ]
        )
    return out.getvalue()


def _bool_code(text: str | None) -> str:
    if text is None:
        return ""
    return "1" if text.lower() in ("true", "yes", "1") else "0"


def _percent(text: str | None) -> str:
    return "" if text is None else plain_decimal(Decimal(text) * 100)


def _g_per_l(text: str | None) -> str:
    return "" if text is None else plain_decimal(Decimal(text) / 100)


def _checkbox_columns() -> list[str]:
    return [f"relapse_site___{code}" for code in _choices("relapse_site")]


def export_columns() -> list[str]:
    columns = ["record_id", "redcap_event_name", "redcap_repeat_instrument"]
    columns += ["redcap_repeat_instance", "redcap_data_access_group"]
    for name, form, _t, _l, _c, _v in FIELDS:
        if name == "record_id":
            continue
        if name == "relapse_site":
            columns += _checkbox_columns()
        else:
            columns.append(name)
        if name in ("baseline_blasts", "death_cause", "comments"):
            columns.append(f"{form}_complete")
    return columns


def _rows(patients: pl.DataFrame, visits: pl.DataFrame) -> list[dict[str, str]]:
    """REDCap raw rows: enrolment, the day-28 assessment, repeat assessments, outcome."""
    by_patient: dict[str, list[dict[str, str | None]]] = {}
    for visit in visits.iter_rows(named=True):
        by_patient.setdefault(visit["patient_id"], []).append(visit)
    rows: list[dict[str, str]] = []
    for patient in patients.iter_rows(named=True):
        pid = patient["patient_id"]
        base = {"record_id": pid, "redcap_data_access_group": (patient["site"] or "").lower()}
        enrol = dict(base, redcap_event_name="enrolment_arm_1", enrolment_complete="2")
        for field, column in PATIENT_FIELDS.items():
            value = patient[column]
            if field in CODES:
                enrol[field] = CODES[field].get(value or "", "")
            elif field in YESNO:
                enrol[field] = _bool_code(value)
            else:
                enrol[field] = value or ""
        rows.append(enrol)
        infusion = patient["infusion_date"]
        day28_done = False
        instance = 0
        for visit in sorted(by_patient.get(pid, []), key=lambda v: v["visit_date"] or ""):
            row = dict(base, assessment_complete="2")
            day = _days(infusion, visit["visit_date"])
            if not day28_done and day is not None and 21 <= day <= 35:
                row["redcap_event_name"] = "day_28_arm_1"
                day28_done = True
            else:
                instance += 1
                row["redcap_event_name"] = "follow_up_arm_1"
                row["redcap_repeat_instrument"] = "assessment"
                row["redcap_repeat_instance"] = str(instance)
            for field, column in VISIT_FIELDS.items():
                value = visit[column]
                if field in CODES:
                    row[field] = CODES[field].get(value or "", "")
                elif field in YESNO:
                    row[field] = _bool_code(value)
                elif field in PERCENT_FIELDS:
                    row[field] = _percent(value)
                elif field == "igg_gl":
                    row[field] = _g_per_l(value)
                else:
                    row[field] = value or ""
            ticked = RELAPSE_BOXES.get(visit["relapse_site"] or "", ())
            for code in _choices("relapse_site"):
                row[f"relapse_site___{code}"] = "1" if code in ticked else "0"
            rows.append(row)
        outcome = dict(base, redcap_event_name="outcome_arm_1", outcome_complete="2")
        for field, column in OUTCOME_FIELDS.items():
            value = patient[column]
            outcome[field] = CODES[field].get(value or "", "") if field in CODES else value or ""
        rows.append(outcome)
    return rows


def _days(start: str | None, end: str | None) -> int | None:
    from datetime import date

    if not start or not end:
        return None
    return (date.fromisoformat(end) - date.fromisoformat(start)).days


def _write(rows: list[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=export_columns(), lineterminator="\n", restval="")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _labels(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """The same rows as REDCap's label export (raw variable names as headers)."""
    choice_fields = {f[0] for f in FIELDS if f[2] in ("radio", "dropdown")}
    out = []
    for row in rows:
        labelled = dict(row)
        for field in choice_fields:
            if labelled.get(field):
                labelled[field] = _choices(field)[labelled[field]]
        for field in YESNO:
            if labelled.get(field):
                labelled[field] = "Yes" if labelled[field] == "1" else "No"
        for column in _checkbox_columns():
            if column in labelled:
                labelled[column] = "Checked" if labelled[column] == "1" else "Unchecked"
        labelled["redcap_event_name"] = EVENTS[row["redcap_event_name"]]
        if row.get("redcap_repeat_instrument"):
            labelled["redcap_repeat_instrument"] = "Assessment"
        if row.get("redcap_data_access_group"):
            labelled["redcap_data_access_group"] = SITE_LABELS[
                row["redcap_data_access_group"].upper()
            ]
        for form_done in ("enrolment_complete", "assessment_complete", "outcome_complete"):
            if labelled.get(form_done):
                labelled[form_done] = "Complete"
        out.append(labelled)
    return out


def _text_frames(patients_csv: Path, visits_csv: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    read = {"infer_schema": False}
    return pl.read_csv(patients_csv, **read), pl.read_csv(visits_csv, **read)  # type: ignore[arg-type]


def redcap_exports(patients_csv: Path, visits_csv: Path) -> tuple[str, str]:
    """(raw export, label export) of a canonical cohort."""
    patients, visits = _text_frames(patients_csv, visits_csv)
    rows = _rows(patients, visits)
    return _write(rows), _write(_labels(rows))


def with_not_detected_words(raw_export: str) -> str:
    """Spell some zero MRD results the way a lab writes them ("neg", "<0.01%"): same meaning."""
    rows = list(csv.DictReader(io.StringIO(raw_export)))
    words = ("neg", "<0.01%")
    n = 0
    for row in rows:
        if row.get("mrd_flow_pct") == "0":
            row["mrd_flow_pct"] = words[n % 2]
            n += 1
            if n == 12:
                break
    return _write(rows)


@dataclass(frozen=True)
class Mistake:
    record: str
    what: str


def with_mistakes(raw_export: str) -> tuple[str, list[Mistake]]:
    """A copy with a few mistakes a data manager makes, and what they are."""
    rows = list(csv.DictReader(io.StringIO(raw_export)))
    mistakes: list[Mistake] = []
    outcome = next(r for r in rows if r["redcap_event_name"] == "outcome_arm_1")
    enrol = next(
        r
        for r in rows
        if r["record_id"] == outcome["record_id"] and r["redcap_event_name"] == "enrolment_arm_1"
    )
    outcome["sex"] = "2" if enrol["sex"] == "1" else "1"
    mistakes.append(
        Mistake(outcome["record_id"], "sex entered again on the outcome row, differently")
    )
    follow = [r for r in rows if r["redcap_event_name"] == "follow_up_arm_1"]
    follow[3]["status"] = "7"
    mistakes.append(Mistake(follow[3]["record_id"], "disease status code 7 (not in the project)"))
    follow[10]["assess_date"] = ""
    mistakes.append(Mistake(follow[10]["record_id"], "an assessment with values but no date"))
    follow[20]["mrd_flow_pct"] = "12.5 %"  # the percent sign is fine in a percent field
    follow[20]["mrd_specimen"] = ""
    mistakes.append(Mistake(follow[20]["record_id"], "a flow MRD result without its specimen"))
    follow[30]["igg_gl"] = "see comment"
    mistakes.append(Mistake(follow[30]["record_id"], "IgG 'see comment' is not a number"))
    return _write(rows), mistakes


def lab_sheet(patients_csv: Path, visits_csv: Path, n_patients: int = 20) -> pl.DataFrame:
    """A lab system's spreadsheet for the first patients' marrow and blood results."""
    _patients, visits = _text_frames(patients_csv, visits_csv)
    ids = visits["patient_id"].unique(maintain_order=True).head(n_patients)
    lab = visits.filter(
        pl.col("patient_id").is_in(ids.implode())
        & pl.any_horizontal(
            pl.col("mrd_flow_fraction").is_not_null(),
            pl.col("igg_mg_dl").is_not_null(),
            pl.col("bcell_per_ul").is_not_null(),
        )
    )
    rows = []
    for i, visit in enumerate(lab.iter_rows(named=True)):
        flow = visit["mrd_flow_fraction"]
        flow_text = "" if flow is None else _percent(flow)
        if flow == "0":
            flow_text = ("neg", "<0.01%", "0")[i % 3]
        y, m, d = visit["visit_date"].split("-")
        rows.append(
            {
                "Patient": visit["patient_id"],
                "Sample date": f"{d}/{m}/{y}",
                "Material": {"BM": "Marrow", "PB": "Blood"}.get(visit["mrd_sample"] or "", ""),
                "MRD flow (%)": flow_text,
                "IgG (g/L)": _g_per_l(visit["igg_mg_dl"]),
                "CD19+ B cells (10^9/L)": ""
                if visit["bcell_per_ul"] is None
                else plain_decimal(Decimal(visit["bcell_per_ul"]) / 1000),
                "IVIG": {"true": "yes", "false": "no"}.get(visit["ivig_within_30d"] or "", ""),
            }
        )
    return pl.DataFrame(rows, schema={k: pl.String for k in rows[0]})
