"""The rows an upload's patients have after its commit, built from what the upload already
holds (their stored rows before it, read under the version its write re-checked, and its new and
changed rows), so the commit path evaluates them without reading the store again."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from monitoring.schemas import KEYS, Kind, polars_schema
from monitoring.store.changes import Changes


def _rows_after(kind: Kind, stored: pl.DataFrame, changes: Sequence[Changes]) -> pl.DataFrame:
    keys = list(KEYS[kind])
    schema = polars_schema(kind)
    types = pl.Schema(schema)
    written = [
        frame.select(list(schema)).cast(types)
        for change in changes
        if change.kind == kind
        for frame in (change.new, change.changed)
    ]
    incoming = pl.concat(written) if written else pl.DataFrame(schema=types)
    kept = stored.select(list(schema)).cast(types)
    kept = kept.join(incoming.select(keys), on=keys, how="anti")
    return pl.concat([kept, incoming]).sort(keys)


def rows_after_commit(
    stored_patients: pl.DataFrame,
    stored_visits: pl.DataFrame,
    changes: Sequence[Changes],
    touched: pl.Series,
) -> tuple[pl.DataFrame, pl.DataFrame] | None:
    """(patients, visits) of the `touched` patients after the commit of `changes` onto the
    stored rows (which must hold every stored row of those patients), in the store's key order;
    None when two of the upload's rows share a key (the database, not this, decides then)."""
    ids = touched.cast(pl.String).unique().implode()
    patients = _rows_after("patients", stored_patients, changes)
    visits = _rows_after("visits", stored_visits, changes)
    if patients.select(KEYS["patients"]).is_duplicated().any():
        return None
    if visits.select(KEYS["visits"]).is_duplicated().any():
        return None
    keep = pl.col("patient_id").is_in(ids)
    return patients.filter(keep), visits.filter(keep)


__all__ = ["rows_after_commit"]
