"""What an upload would change in the store: new rows, changed rows (with old values), unchanged.

Pure polars; the store writes the result (`monitoring.store.changes.Changes`) in one transaction.
"""

from __future__ import annotations

import polars as pl

from monitoring.schemas import COLUMNS, KEYS, Kind
from monitoring.store.changes import Changes as Changes  # re-exported for ingest's callers
from monitoring.store.changes import count_changes as count_changes

_OLD = "__old"


def _as_text(column: str) -> pl.Expr:
    return pl.col(column).cast(pl.String)


def compute_changes(kind: Kind, incoming: pl.DataFrame, stored: pl.DataFrame) -> Changes:
    """Compare typed incoming rows (canonical columns) with the stored rows of the same kind.

    A cell left empty in the upload is a recorded null: the contract says empty = not recorded,
    so an upload that empties a stored value changes it (and history keeps the old value).
    """
    incoming = incoming.select([c.name for c in COLUMNS[kind]])
    if stored.is_empty():  # none of these rows is stored (a first upload): all new, no join
        return Changes(kind, incoming, incoming.clear(), _no_cells(kind, incoming), 0)
    return _compared(kind, incoming, stored)


def _no_cells(kind: Kind, incoming: pl.DataFrame) -> pl.DataFrame:
    """The changed cells of an upload that changes no stored row (an empty frame)."""
    key_out = [c for c in ("patient_id", "visit_date") if c in KEYS[kind]]
    cells = pl.DataFrame(
        schema={
            **{k: incoming.schema[k] for k in key_out},
            "column": pl.String,
            "old_value": pl.String,
            "new_value": pl.String,
        }
    )
    if "visit_date" not in cells.columns:
        cells = cells.with_columns(pl.lit(None, pl.Date).alias("visit_date"))
    return cells


def _compared(kind: Kind, incoming: pl.DataFrame, stored: pl.DataFrame) -> Changes:
    keys = list(KEYS[kind])
    value_columns = [c.name for c in COLUMNS[kind] if c.name not in keys]
    renamed = stored.select(
        keys + [pl.col(c).alias(c + _OLD) for c in value_columns] + [pl.lit(True).alias("__exists")]
    )
    joined = incoming.join(renamed, on=keys, how="left").with_columns(
        pl.col("__exists").fill_null(False)
    )
    differs = [~pl.col(c).eq_missing(pl.col(c + _OLD)) for c in value_columns]
    joined = joined.with_columns(pl.any_horizontal(differs).alias("__differs"))
    new = joined.filter(~pl.col("__exists")).select(incoming.columns)
    changed_full = joined.filter(pl.col("__exists") & pl.col("__differs"))
    unchanged = joined.filter(pl.col("__exists") & ~pl.col("__differs")).height
    key_out = [c for c in ("patient_id", "visit_date") if c in keys]
    if not changed_full.height:
        return Changes(
            kind, new, changed_full.select(incoming.columns), _no_cells(kind, incoming), unchanged
        )
    cells = pl.concat(
        [
            changed_full.filter(~pl.col(c).eq_missing(pl.col(c + _OLD))).select(
                *key_out,
                pl.lit(c).alias("column"),
                _as_text(c + _OLD).alias("old_value"),
                _as_text(c).alias("new_value"),
            )
            for c in value_columns
        ]
    )
    if "visit_date" not in cells.columns:
        cells = cells.with_columns(pl.lit(None, pl.Date).alias("visit_date"))
    return Changes(kind, new, changed_full.select(incoming.columns), cells, unchanged)
