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
    rows = pl.concat([kept, incoming]) if kept.height else incoming
    # a first ingest of a file in key order is in order already: no sorted copy of it all
    return rows if _in_key_order(rows, keys) else rows.sort(keys)


def _in_key_order(frame: pl.DataFrame, keys: list[str]) -> bool:
    """Every row's key after the previous row's (the order `sort(keys)` gives; keys not null)."""
    if frame.height < 2:
        return True
    after = pl.lit(False)
    for key in reversed(keys):  # lexicographic: the first key decides unless equal
        now, before = pl.col(key), pl.col(key).shift(1)
        after = (now > before) | ((now == before) & after)
    equal_keys = pl.all_horizontal([pl.col(k) == pl.col(k).shift(1) for k in keys])
    ordered = (after | equal_keys).fill_null(False).slice(1).all()
    return bool(frame.select(ordered.alias("ordered")).item())


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
    if patients.select(KEYS["patients"]).is_duplicated().any():
        return None
    if visits.select(KEYS["visits"]).is_duplicated().any():
        return None
    if stored_patients.is_empty() and stored_visits.is_empty() and _no_null_id(patients, visits):
        return patients, visits  # only the upload's own rows: each one's patient is touched
    keep = pl.col("patient_id").is_in(ids)
    return patients.filter(keep), visits.filter(keep)


def _no_null_id(*frames: pl.DataFrame) -> bool:
    return not any(frame["patient_id"].null_count() for frame in frames)


__all__ = ["rows_after_commit"]
