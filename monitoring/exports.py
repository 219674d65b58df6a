"""Exports that a spreadsheet opens: cells it would run as formulas are neutralised."""

from __future__ import annotations

import polars as pl

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formulas(frame: pl.DataFrame) -> pl.DataFrame:
    """Prefix text cells that start like a formula with a quote (OWASP CSV-injection advice).

    Only text columns are touched: a negative number stays a number.
    """
    text_columns = [c for c, d in frame.schema.items() if d == pl.String]
    pattern = (
        "^["
        + "".join({"=": "=", "+": r"\+", "-": r"\-", "@": "@", "\t": r"\t", "\r": r"\r"}.values())
        + "]"
    )
    return frame.with_columns(
        [
            pl.when(pl.col(c).str.contains(pattern))
            .then(pl.concat_str(pl.lit("'"), pl.col(c)))
            .otherwise(pl.col(c))
            .alias(c)
            for c in text_columns
        ]
    )


def frame_to_csv(frame: pl.DataFrame) -> str:
    return neutralise_formulas(frame).write_csv()
