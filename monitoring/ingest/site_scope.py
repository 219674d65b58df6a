"""An upload by a site-limited account may only touch its sites' patients.

Every row of the upload is checked against the account's `SiteScope` (`store.scope`):
- a patients row whose stored patient belongs to another site (or to none), or whose uploaded
  `site` is not one of the account's sites (an empty site included: the patient would leave the
  account's own view);
- a visits row whose patient, stored or in a patients file of the same upload, belongs to
  another site.
Each refusal is one error row of the normal validation report (file, row, patient, column
`site`), so the whole upload is rejected and the data manager sees every offending row. The
sentence never names the other site, and the other checks' problems about such a patient (which
quote its stored dates) are left out of the report (`hide_outside_patients`).
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from monitoring.ingest.parsers import ROW_COLUMN
from monitoring.ingest.validate import REPORT_COLUMNS, ParsedFile, empty_report
from monitoring.store.site_scope import SiteScope

_OUTSIDE = (
    "patient belongs to a site outside your account's sites ({yours}); a site-limited account "
)
_OUTSIDE += "may only add or change its own sites' patients"


def _site(frame: pl.DataFrame) -> pl.Expr:
    return pl.col("site") if "site" in frame.columns else pl.lit(None, pl.String)


def _mine(column: str, allowed: list[str]) -> pl.Expr:
    return pl.col(column).is_in(allowed).fill_null(False)


def scope_problems(
    parsed: Sequence[ParsedFile], stored_patients: pl.DataFrame, scope: SiteScope
) -> pl.DataFrame:
    """One error row per upload row that reaches outside `scope` (none for every site).

    `stored_patients` must be read without the scope: a patient of another site has to be
    seen to be refused."""
    if scope.sites is None:
        return empty_report()
    allowed = sorted(scope.sites)
    yours = scope.describe()
    outside = _OUTSIDE.format(yours=yours)
    stored = stored_patients.select(
        "patient_id", pl.col("site").alias("_stored"), pl.lit(True).alias("_is_stored")
    )
    uploaded = pl.concat(
        [
            f.frame.select(pl.col("patient_id").cast(pl.String), _site(f.frame).alias("_uploaded"))
            for f in parsed
            if f.kind == "patients" and "patient_id" in f.frame.columns
        ]
        or [pl.DataFrame(schema={"patient_id": pl.String(), "_uploaded": pl.String()})]
    ).with_columns(_is_uploaded=pl.lit(True))
    # a patient is the account's when every site it has (stored, uploaded) is one of its sites
    # (a null site is in no limited scope: `is_in` gives null for it, counted as outside)
    foreign_stored = pl.col("_is_stored").fill_null(False) & ~_mine("_stored", allowed)
    foreign_uploaded = pl.col("_is_uploaded").fill_null(False) & ~_mine("_uploaded", allowed)
    parts: list[pl.DataFrame] = []
    for f in parsed:
        if "patient_id" not in f.frame.columns:
            continue
        rows = f.frame.select(
            pl.col(ROW_COLUMN).cast(pl.Int64).alias("row"),
            pl.col("patient_id").cast(pl.String),
            _site(f.frame).alias("value"),
        ).filter(pl.col("patient_id").is_not_null())
        rows = rows.join(stored, on="patient_id", how="left")
        if f.kind == "patients":
            problems = rows.filter(foreign_stored).with_columns(
                value=pl.lit(None, pl.String), problem=pl.lit(outside)
            )
            new_site = rows.filter(~foreign_stored & ~_mine("value", allowed))
            problems = pl.concat(
                [
                    problems.select("row", "patient_id", "value", "problem"),
                    new_site.select(
                        "row",
                        "patient_id",
                        "value",
                        pl.when(pl.col("value").is_null())
                        .then(
                            pl.lit(
                                f"site is empty; your account may only upload patients of {yours}"
                            )
                        )
                        .otherwise(
                            pl.lit("this site is not one of your account's sites (")
                            + pl.lit(yours)
                            + pl.lit(")")
                        )
                        .alias("problem"),
                    ),
                ]
            )
        else:
            last_upload = uploaded.unique("patient_id", keep="last", maintain_order=True)
            rows = rows.join(last_upload, on="patient_id", how="left")
            known = pl.col("_is_stored").fill_null(False) | pl.col("_is_uploaded").fill_null(False)
            problems = rows.filter(known & (foreign_stored | foreign_uploaded)).select(
                "row",
                "patient_id",
                pl.lit(None, pl.String).alias("value"),
                pl.lit(outside).alias("problem"),
            )
        parts.append(
            problems.with_columns(
                file=pl.lit(f.name), column=pl.lit("site"), severity=pl.lit("error")
            ).select(REPORT_COLUMNS)
        )
    return pl.concat([empty_report(), *parts])


def hide_outside_patients(
    problems: pl.DataFrame, stored_patients: pl.DataFrame, scope: SiteScope
) -> pl.DataFrame:
    """`problems` without those about patients stored outside `scope`: a cross-table check
    quotes the stored row (its infusion or death date), which the account may not read. Such
    rows are refused by `scope_problems` anyway."""
    if scope.sites is None:
        return problems
    outside = stored_patients.filter(~_mine("site", sorted(scope.sites)))["patient_id"]
    return problems.filter(~pl.col("patient_id").is_in(outside.implode()).fill_null(False))
