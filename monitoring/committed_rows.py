"""The rows an upload's patients have after its commit, built from what the upload already
holds (their stored rows before it, read under the version its write re-checked, and its new and
changed rows), so the commit path evaluates them without reading the store again."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from monitoring.key_order import in_key_order, repeats_a_key
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
    if kept.height:  # (an anti-join of nothing would still hash every incoming key)
        kept = kept.join(incoming.select(keys), on=keys, how="anti")
    rows = pl.concat([kept, incoming]) if kept.height else incoming
    # a first ingest of a file in key order is in order already: no sorted copy of it all
    return rows if in_key_order(rows, keys) else rows.sort(keys)


def rows_after_commit(
    stored_patients: pl.DataFrame,
    stored_visits: pl.DataFrame,
    changes: Sequence[Changes],
    touched: pl.Series,
) -> tuple[pl.DataFrame, pl.DataFrame] | None:
    """(patients, visits) of the `touched` patients (those of the changes' new and changed
    rows) after the commit of `changes` onto the stored rows (which must hold every stored row
    of those patients), in the store's key order; None when two of the upload's rows share a
    key (the database, not this, decides then)."""
    ids = touched.cast(pl.String).unique().implode()
    patients = _rows_after("patients", stored_patients, changes)
    visits = _rows_after("visits", stored_visits, changes)
    # the rows are in key order here: strictly so answers the question without hashing them
    if repeats_a_key(patients, KEYS["patients"]) or repeats_a_key(visits, KEYS["visits"]):
        return None
    if stored_patients.is_empty() and stored_visits.is_empty() and _no_null_id(patients, visits):
        return patients, visits  # only the upload's own rows: each one's patient is touched
    keep = pl.col("patient_id").is_in(ids)
    return patients.filter(keep), visits.filter(keep)


def _no_null_id(*frames: pl.DataFrame) -> bool:
    return not any(frame["patient_id"].null_count() for frame in frames)


__all__ = ["rows_after_commit"]
