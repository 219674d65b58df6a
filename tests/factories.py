"""Tiny typed patients/visits frames for tests, built from a few dicts.

Every patient is infused on `INFUSION` unless told otherwise, and dates are written as
`d(n)` = day n after that infusion, so a test reads like a clinical timeline:

    patients = patients_frame(patient("P1", death_date=d(200)))
    visits = visits_frame(visit("P1", 28, disease_status="CR"), visit("P1", 150, bm_blasts_pct=30))

Columns not given are null, with the dtypes of `monitoring.schemas.polars_schema`.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import polars as pl

from monitoring.schemas import Kind, polars_schema

INFUSION = date(2020, 1, 1)


def d(day: int, infusion: date = INFUSION) -> date:
    """The date of `day` days after `infusion`."""
    return infusion + timedelta(days=day)


def frame(kind: Kind, rows: list[dict[str, Any]]) -> pl.DataFrame:
    schema = polars_schema(kind)
    unknown = {key for row in rows for key in row} - set(schema)
    if unknown:
        raise KeyError(f"not {kind} columns: {sorted(unknown)}")
    return pl.DataFrame(
        [{name: row.get(name) for name in schema} for row in rows], schema=schema, orient="row"
    )


def patient(patient_id: str, **columns: Any) -> dict[str, Any]:
    return {"patient_id": patient_id, "infusion_date": INFUSION, **columns}


def visit(patient_id: str, day: int, infusion: date = INFUSION, **columns: Any) -> dict[str, Any]:
    return {"patient_id": patient_id, "visit_date": d(day, infusion), **columns}


def patients_frame(*rows: dict[str, Any]) -> pl.DataFrame:
    return frame("patients", list(rows))


def visits_frame(*rows: dict[str, Any]) -> pl.DataFrame:
    return frame("visits", list(rows))
