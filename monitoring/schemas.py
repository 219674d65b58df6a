"""The canonical tables of CONTRACT.md §1: column names, types, codes and ranges live here once.

`PATIENT_COLUMNS` / `VISIT_COLUMNS` drive parsing of uploads; `patients_schema()` /
`visits_schema()` are the pandera (polars backend) models that validate parsed, typed frames.
Validate collected `DataFrame`s: on a `LazyFrame` pandera checks the schema only.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Literal

import polars as pl

if TYPE_CHECKING:  # pandera pulls in pandas: imported only when an upload is validated
    import pandera.polars as pa

Kind = Literal["patients", "visits"]
ColumnType = Literal["text", "number", "date", "bool", "code"]

PATIENT_ID_PATTERN = r"^[A-Za-z0-9._-]{1,40}$"

DISEASE_STATUS = ("CR", "CRi", "relapse", "no_response", "not_assessed")
MRD_SAMPLE = ("BM", "PB")
CD19_STATUS = ("positive", "dim", "partial", "negative", "lineage_switch")
ANTIGEN_ESCAPE = ("negative", "dim", "partial", "lineage_switch")
RELAPSE_SITE = ("marrow", "cns", "testis", "other_extramedullary", "combined")
SEX = ("F", "M", "U")
DEATH_CAUSE = ("relapse", "treatment_related", "infection", "other", "unknown")
MRD_COLUMNS = ("mrd_flow_fraction", "mrd_ngs_fraction", "mrd_pcr_fraction")


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    type: ColumnType
    required: bool = False
    codes: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    # a hint shown when the value is above max (a percent typed where a fraction belongs)
    above_max_hint: str = ""

    @property
    def dtype(self) -> pl.DataType:
        return {
            "text": pl.String(),
            "code": pl.String(),
            "number": pl.Float64(),
            "date": pl.Date(),
            "bool": pl.Boolean(),
        }[self.type]


_FRACTION_HINT = "was it entered as a percent? Use {suggest} (a fraction: 0.0001 = 0.01 %)"

PATIENT_COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec("patient_id", "text", required=True),
    ColumnSpec("site", "text"),
    ColumnSpec("sex", "code", codes=SEX),
    ColumnSpec("age_at_infusion_years", "number", min=0, max=40),
    ColumnSpec("product", "text"),
    ColumnSpec("infusion_date", "date", required=True),
    ColumnSpec("prior_hsct", "bool"),
    ColumnSpec("prior_blinatumomab", "bool"),
    ColumnSpec("kmt2a_rearranged", "bool"),
    ColumnSpec("baseline_bm_blasts_pct", "number", min=0, max=100),
    ColumnSpec("hsct_date", "date"),
    ColumnSpec("new_therapy_date", "date"),
    ColumnSpec("last_contact_date", "date"),
    ColumnSpec("death_date", "date"),
    ColumnSpec("death_cause", "code", codes=DEATH_CAUSE),
)

VISIT_COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec("patient_id", "text", required=True),
    ColumnSpec("visit_date", "date", required=True),
    ColumnSpec("disease_status", "code", codes=DISEASE_STATUS),
    ColumnSpec("bm_blasts_pct", "number", min=0, max=100),
    ColumnSpec("mrd_sample", "code", codes=MRD_SAMPLE),
    ColumnSpec("mrd_flow_fraction", "number", min=0, max=1, above_max_hint=_FRACTION_HINT),
    ColumnSpec("mrd_ngs_fraction", "number", min=0, max=1, above_max_hint=_FRACTION_HINT),
    ColumnSpec("mrd_pcr_fraction", "number", min=0, max=1, above_max_hint=_FRACTION_HINT),
    ColumnSpec("bcell_pct_lymphocytes", "number", min=0, max=100),
    ColumnSpec("bcell_per_ul", "number", min=0),
    ColumnSpec("car_copies_per_ug", "number", min=0),
    ColumnSpec("car_pct_cd3", "number", min=0, max=100),
    ColumnSpec(
        "igg_mg_dl",
        "number",
        min=0,
        max=5000,
        above_max_hint="",
    ),
    ColumnSpec("ivig_within_30d", "bool"),
    ColumnSpec("cd19_status", "code", codes=CD19_STATUS),
    ColumnSpec("relapse_site", "code", codes=RELAPSE_SITE),
    ColumnSpec("new_malignancy", "bool"),
    ColumnSpec("comment", "text"),
)

COLUMNS: dict[Kind, tuple[ColumnSpec, ...]] = {
    "patients": PATIENT_COLUMNS,
    "visits": VISIT_COLUMNS,
}
KEYS: dict[Kind, tuple[str, ...]] = {
    "patients": ("patient_id",),
    "visits": ("patient_id", "visit_date"),
}
DATE_ORDER_AFTER_INFUSION = ("hsct_date", "new_therapy_date", "last_contact_date", "death_date")


def polars_schema(kind: Kind) -> dict[str, pl.DataType]:
    """Column name → polars dtype of the typed canonical table."""
    return {c.name: c.dtype for c in COLUMNS[kind]}


def empty_frame(kind: Kind) -> pl.DataFrame:
    return pl.DataFrame(schema=polars_schema(kind))


def _pandera_column(spec: ColumnSpec) -> pa.Column:
    import pandera.polars as pa

    checks: list[pa.Check] = []
    if spec.codes:
        checks.append(pa.Check.isin(list(spec.codes)))
    if spec.min is not None:
        checks.append(pa.Check.ge(spec.min))
    if spec.max is not None:
        checks.append(pa.Check.le(spec.max))
    if spec.name == "patient_id":
        checks.append(pa.Check.str_matches(PATIENT_ID_PATTERN))
    return pa.Column(spec.dtype, checks=checks, nullable=not spec.required, required=True)


def _schema(kind: Kind) -> pa.DataFrameSchema:
    import pandera.polars as pa

    return pa.DataFrameSchema(
        {spec.name: _pandera_column(spec) for spec in COLUMNS[kind]},
        unique=list(KEYS[kind]),
        name=kind,
        strict=True,
    )


@cache
def schema_for(kind: Kind) -> pa.DataFrameSchema:
    """The pandera model of a canonical table (built on first use)."""
    return _schema(kind)
