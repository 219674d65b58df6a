"""Validate parsed uploads against CONTRACT.md §1: every problem of every file, at once.

A problem is a row of `file, row, patient_id, column, value, problem, severity` where severity is
`error` (blocks the whole upload) or `warning` (reported, not blocking).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

import polars as pl

from monitoring.config import Config, get_config
from monitoring.ingest.contract_rules import breaks_rules
from monitoring.ingest.parse import DateFormat, parse_columns
from monitoring.ingest.parsers import ROW_COLUMN, RawTable
from monitoring.schemas import (
    COLUMNS,
    DATE_ORDER_AFTER_INFUSION,
    KEYS,
    MRD_COLUMNS,
    PATIENT_ID_PATTERN,
    Kind,
    schema_for,
)

REPORT_SCHEMA: dict[str, pl.DataType] = {
    "file": pl.String(),
    "row": pl.Int64(),
    "patient_id": pl.String(),
    "column": pl.String(),
    "value": pl.String(),
    "problem": pl.String(),
    "severity": pl.String(),
}
REPORT_COLUMNS = list(REPORT_SCHEMA)
HEADER_ROW = 1


def empty_report() -> pl.DataFrame:
    return pl.DataFrame(schema=REPORT_SCHEMA)


@dataclass
class ParsedFile:
    """One uploaded file, typed, with its own problems."""

    name: str
    kind: Kind
    sha256: str
    frame: pl.DataFrame  # typed canonical columns + the row column
    problems: pl.DataFrame = field(default_factory=empty_report)


def detect_kind(raw: RawTable, requested: Kind | None) -> Kind:
    from monitoring.errors import UnreadableFileError

    if requested:
        return requested
    columns = set(raw.frame.columns)
    if "visit_date" in columns:
        return "visits"
    if "infusion_date" in columns:
        return "patients"
    raise UnreadableFileError(
        f"{raw.name}: cannot tell whether this is a patients or a visits table (it has neither "
        "an infusion_date nor a visit_date column); check the header or pass --kind."
    )


def _rows(frame: pl.DataFrame, file: str, severity: str) -> pl.DataFrame:
    """Normalise a frame with row/patient_id/column/value/problem into the report schema."""
    return frame.select(
        pl.lit(file).alias("file"),
        pl.col("row").cast(pl.Int64),
        pl.col("patient_id").cast(pl.String),
        pl.col("column").cast(pl.String),
        pl.col("value").cast(pl.String),
        pl.col("problem").cast(pl.String),
        pl.lit(severity).alias("severity"),
    )


def _header_problems(raw: RawTable, kind: Kind) -> pl.DataFrame:
    known = {c.name for c in COLUMNS[kind]}
    required = [c.name for c in COLUMNS[kind] if c.required]
    present = [c for c in raw.frame.columns if c != ROW_COLUMN]
    unknown = [c for c in present if c not in known]
    missing = [c for c in required if c not in present]
    rows = [
        {
            "row": HEADER_ROW,
            "patient_id": None,
            "column": c,
            "value": c,
            "problem": "unknown column: ignored",
            "severity": "warning",
        }
        for c in unknown
    ] + [
        {
            "row": HEADER_ROW,
            "patient_id": None,
            "column": c,
            "value": None,
            "problem": f"required column missing from the header (a {kind} table needs {', '.join(required)})",
            "severity": "error",
        }
        for c in missing
    ]
    if not rows:
        return empty_report()
    frame = pl.DataFrame(rows, schema={k: v for k, v in REPORT_SCHEMA.items() if k != "file"})
    return frame.with_columns(pl.lit(raw.name).alias("file")).select(REPORT_COLUMNS)


def _pandera_problems(typed: pl.DataFrame, kind: Kind, raw: pl.DataFrame) -> pl.DataFrame:
    """Range, code, required-value, id-format and duplicate-key checks by the pandera model
    (asked first in one polars pass: pandera and pandas load only when some rule is broken)."""
    data = typed.drop(ROW_COLUMN)
    if not breaks_rules(data, kind):
        return _empty_rows()
    import pandera.errors as pa_errors

    try:
        schema_for(kind).validate(data, lazy=True)
        return _empty_rows()
    except pa_errors.SchemaErrors as exc:
        cases = pl.DataFrame(exc.failure_cases)
    cases = cases.filter(pl.col("index").is_not_null()).with_columns(pl.col("index").cast(pl.Int64))
    lookup = typed.select(
        pl.int_range(pl.len(), dtype=pl.Int64).alias("index"),
        pl.col(ROW_COLUMN).cast(pl.Int64).alias("row"),
        pl.col("patient_id"),
    )
    cases = cases.join(lookup, on="index", how="left")
    key_columns = KEYS[kind]
    check = pl.col("check")
    is_unique = check.str.contains("uniqueness|unique")
    duplicate_rows = (
        cases.filter(is_unique)
        .join(typed.select(pl.col(ROW_COLUMN).cast(pl.Int64).alias("row"), *key_columns), on="row")
        .group_by(list(key_columns))
        .agg(pl.col("row").sort())
    )
    dup_text = duplicate_rows.select(
        *key_columns,
        pl.concat_str(
            pl.lit("duplicate key: "),
            pl.lit(" + ".join(key_columns)),
            pl.lit(" appears more than once in this file (rows "),
            pl.col("row").cast(pl.List(pl.String)).list.join(", "),
            pl.lit(")"),
        ).alias("dup_problem"),
    )
    cases = cases.join(
        cases.filter(is_unique)
        .join(typed.select(pl.col(ROW_COLUMN).cast(pl.Int64).alias("row"), *key_columns), on="row")
        .join(dup_text, on=list(key_columns))
        .select("row", "dup_problem")
        .unique("row"),
        on="row",
        how="left",
    )
    column_name = (
        pl.when(is_unique).then(pl.lit(" + ".join(key_columns))).otherwise(pl.col("column"))
    )
    specs = {c.name: c for c in COLUMNS[kind]}
    problem = (
        pl.when(is_unique)
        .then(pl.col("dup_problem"))
        .when(check == "not_nullable")
        .then(pl.lit("required value missing"))
        .when(check.str.starts_with("str_matches"))
        .then(
            pl.lit(
                "not a valid patient_id: use 1–40 letters, digits, '.', '_' or '-' "
                "(a pseudonymous study id, never a name or MRN)"
            )
        )
        .when(check.str.starts_with("greater_than_or_equal_to"))
        .then(pl.concat_str(pl.lit("below the minimum "), check.str.extract(r"\(([^)]*)\)")))
        .when(check.str.starts_with("less_than_or_equal_to"))
        .then(pl.concat_str(pl.lit("above the maximum "), check.str.extract(r"\(([^)]*)\)")))
        .otherwise(check)
    )
    key_text = pl.concat_str([pl.col(k).cast(pl.String) for k in key_columns], separator=" ")
    keyed = typed.select(pl.col(ROW_COLUMN).cast(pl.Int64).alias("row"), key_text.alias("key_text"))
    out = cases.join(keyed, on="row", how="left").select(
        "row",
        "patient_id",
        column_name.alias("column"),
        pl.when(is_unique)
        .then(pl.col("key_text"))
        .otherwise(pl.col("failure_case").cast(pl.String))
        .alias("value"),
        problem.alias("problem"),
    )
    out = _original_text(out, raw)
    # a required cell that failed to parse is already reported by the parser
    parse_failed = raw.select(
        pl.col(ROW_COLUMN).cast(pl.Int64).alias("row"),
        *[
            pl.col(c).is_not_null().alias(c)
            for c in raw.columns
            if c in specs and specs[c].required
        ],
    )
    if parse_failed.width > 1:
        flags = parse_failed.unpivot(index="row", variable_name="column", value_name="had_text")
        out = (
            out.join(flags, on=["row", "column"], how="left")
            .filter(
                ~(
                    (pl.col("problem") == "required value missing")
                    & pl.col("had_text").fill_null(False)
                )
            )
            .drop("had_text")
        )
    # hints for values whose cause is likely known
    fraction_hint = pl.col("column").str.ends_with("_fraction") & pl.col("problem").str.starts_with(
        "above the maximum"
    )
    igg_hint = (pl.col("column") == "igg_mg_dl") & pl.col("problem").str.starts_with("above")
    return out.with_columns(
        pl.when(fraction_hint)
        .then(
            pl.concat_str(
                pl.col("problem"),
                pl.lit(": was it entered as a percent? Use "),
                (pl.col("value").cast(pl.Float64, strict=False) / 100).cast(pl.String),
                pl.lit(" (a fraction: 0.0001 = 0.01 %)"),
            )
        )
        .when(igg_hint)
        .then(pl.concat_str(pl.col("problem"), pl.lit(" mg/dL: was it entered in mg/L?")))
        .otherwise(pl.col("problem"))
        .alias("problem")
    ).unique(maintain_order=True)


def _original_text(out: pl.DataFrame, raw: pl.DataFrame) -> pl.DataFrame:
    """Show the value as the user typed it ("5", not the parsed 5.0)."""
    columns = [c for c in out["column"].unique().to_list() if c in raw.columns]
    if not out.height or not columns:
        return out
    rows = raw.filter(pl.col(ROW_COLUMN).cast(pl.Int64).is_in(out["row"].implode()))
    text = rows.select(
        pl.col(ROW_COLUMN).cast(pl.Int64).alias("row"),
        *[pl.col(c).cast(pl.String) for c in columns],
    ).unpivot(index="row", variable_name="column", value_name="typed_text")
    return (
        out.join(text, on=["row", "column"], how="left")
        .with_columns(pl.coalesce("typed_text", "value").alias("value"))
        .drop("typed_text")
    )


def parse_file(
    raw: RawTable,
    *,
    kind: Kind | None = None,
    date_format: DateFormat = "ISO",
    floats: Mapping[str, pl.Series] | None = None,
) -> ParsedFile:
    """Parse one raw table and collect its file-local problems. `floats`: number columns the
    reader already cast from these cells (`parsers.read_cells`), not cast again."""
    resolved = detect_kind(raw, kind)
    typed, parse_problems = parse_columns(
        raw.frame,
        COLUMNS[resolved],
        date_format=date_format,
        native_dates=raw.native_dates,
        decimal_comma=raw.decimal_comma,
        floats=floats,
    )
    row_ids = typed.select(pl.col(ROW_COLUMN), pl.col("patient_id"))
    parse_rows = parse_problems.join(row_ids, on=ROW_COLUMN, how="left").rename({ROW_COLUMN: "row"})
    problems = [
        _header_problems(raw, resolved),
        _rows(parse_rows, raw.name, "error"),
        _rows(_pandera_problems(typed, resolved, raw.frame), raw.name, "error"),
        _rows(_file_rules(typed, resolved), raw.name, "error"),
        _rows(_file_warnings(typed, resolved), raw.name, "warning"),
    ]
    return ParsedFile(raw.name, resolved, raw.sha256, typed, pl.concat(problems))


def _file_rules(typed: pl.DataFrame, kind: Kind) -> pl.DataFrame:
    """Cross-field rules within one row."""
    base = typed.select(
        pl.col(ROW_COLUMN).cast(pl.Int64).alias("row"), pl.all().exclude(ROW_COLUMN)
    )
    parts: list[pl.DataFrame] = []
    if kind == "visits":
        any_mrd = pl.any_horizontal([pl.col(c).is_not_null() for c in MRD_COLUMNS])
        parts.append(
            base.filter(any_mrd & pl.col("mrd_sample").is_null()).select(
                "row",
                "patient_id",
                pl.lit("mrd_sample").alias("column"),
                pl.lit(None, pl.String).alias("value"),
                pl.lit("required when an MRD value is recorded: BM (marrow) or PB (blood)").alias(
                    "problem"
                ),
            )
        )
    else:
        for column in DATE_ORDER_AFTER_INFUSION:
            parts.append(
                base.filter(pl.col(column) < pl.col("infusion_date")).select(
                    "row",
                    "patient_id",
                    pl.lit(column).alias("column"),
                    pl.col(column).cast(pl.String).alias("value"),
                    pl.concat_str(
                        pl.lit("before the infusion date "), pl.col("infusion_date").cast(pl.String)
                    ).alias("problem"),
                )
            )
    return pl.concat(parts) if parts else _empty_rows()


def _empty_rows() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "row": pl.Int64,
            "patient_id": pl.String,
            "column": pl.String,
            "value": pl.String,
            "problem": pl.String,
        }
    )


def _file_warnings(typed: pl.DataFrame, kind: Kind) -> pl.DataFrame:
    if kind != "visits":
        return _empty_rows()
    base = typed.select(
        pl.col(ROW_COLUMN).cast(pl.Int64).alias("row"), pl.all().exclude(ROW_COLUMN)
    )
    ivig = base.filter(
        pl.col("ivig_within_30d").fill_null(False) & pl.col("igg_mg_dl").is_not_null()
    ).select(
        "row",
        "patient_id",
        pl.lit("igg_mg_dl").alias("column"),
        pl.col("igg_mg_dl").cast(pl.String).alias("value"),
        pl.lit(
            "IgG measured within 30 days of IVIG is not the patient's own IgG; "
            "it is kept but excluded from hypogammaglobulinemia alerts"
        ).alias("problem"),
    )
    low_igg = base.filter((pl.col("igg_mg_dl") > 0) & (pl.col("igg_mg_dl") < 30)).select(
        "row",
        "patient_id",
        pl.lit("igg_mg_dl").alias("column"),
        pl.col("igg_mg_dl").cast(pl.String).alias("value"),
        pl.lit("implausibly low for mg/dL: was it entered in g/L? (1 g/L = 100 mg/dL)").alias(
            "problem"
        ),
    )
    return pl.concat([ivig, low_igg])


def cross_table_problems(
    files: list[ParsedFile],
    stored_patients: pl.DataFrame,
    stored_visits: pl.DataFrame,
    *,
    today: date,
    config: Config | None = None,
) -> pl.DataFrame:
    """Rules that need the other table: unknown patients, visit dates against the patient's dates,
    duplicate keys across files of one upload."""
    cfg = config or get_config()
    problems: list[pl.DataFrame] = []
    kinds: tuple[Kind, ...] = ("patients", "visits")
    for kind in kinds:
        same = [f for f in files if f.kind == kind]
        if len(same) > 1:
            keys = list(KEYS[kind])
            combined = pl.concat(
                [
                    f.frame.select(
                        pl.lit(f.name).alias("file"),
                        pl.col(ROW_COLUMN).cast(pl.Int64).alias("row"),
                        *keys,
                    )
                    for f in same
                ]
            ).filter(pl.all_horizontal([pl.col(k).is_not_null() for k in keys]))
            dup = combined.filter(
                pl.struct(keys).is_duplicated() & (pl.col("file").n_unique().over(keys) > 1)
            )
            problems.append(
                dup.select(
                    "file",
                    "row",
                    pl.col("patient_id"),
                    pl.lit(" + ".join(keys)).alias("column"),
                    pl.concat_str([pl.col(k).cast(pl.String) for k in keys], separator=" ").alias(
                        "value"
                    ),
                    pl.lit(
                        "duplicate key: the same record is in more than one file of this upload"
                    ).alias("problem"),
                    pl.lit("error").alias("severity"),
                )
            )
    uploaded_patients = [f.frame.drop(ROW_COLUMN) for f in files if f.kind == "patients"]
    patient_dates = ["patient_id", "infusion_date", "death_date"]
    effective = stored_patients.select(patient_dates)
    if uploaded_patients:
        new = (
            pl.concat(uploaded_patients)
            .select(patient_dates)
            .filter(pl.col("patient_id").is_not_null())
        )
        effective = pl.concat(
            [
                effective.join(new, on="patient_id", how="anti"),
                new.unique("patient_id", keep="last"),
            ]
        )
    for f in files:
        if f.kind != "visits":
            continue
        problems.append(
            _visit_date_problems(
                f.frame.rename({ROW_COLUMN: "row"}).with_columns(pl.col("row").cast(pl.Int64)),
                effective,
                f.name,
                today,
                cfg,
            )
        )
    if uploaded_patients:
        # a patients upload may move infusion or death dates past visits already stored
        stored = stored_visits.select("patient_id", "visit_date").join(
            pl.concat([f.frame.select("patient_id") for f in files if f.kind == "patients"]),
            on="patient_id",
            how="semi",
        )
        uploaded_visit_keys = [
            f.frame.select("patient_id", "visit_date") for f in files if f.kind == "visits"
        ]
        if uploaded_visit_keys and stored.height:  # (an anti-join of nothing hashes the upload)
            stored = stored.join(
                pl.concat(uploaded_visit_keys), on=["patient_id", "visit_date"], how="anti"
            )
        clash = _visit_date_problems(
            stored.with_columns(pl.lit(None, pl.Int64).alias("row")),
            effective,
            "stored visits",
            today,
            cfg,
        ).filter(pl.col("column") != "patient_id")
        if clash.height:
            rows = pl.concat(
                [
                    f.frame.select(
                        pl.col(ROW_COLUMN).cast(pl.Int64).alias("prow"),
                        "patient_id",
                        pl.lit(f.name).alias("pfile"),
                    )
                    for f in files
                    if f.kind == "patients"
                ]
            )
            clash = clash.join(rows, on="patient_id", how="left").select(
                pl.col("pfile").alias("file"),
                pl.col("prow").alias("row"),
                "patient_id",
                "column",
                "value",
                pl.concat_str(pl.lit("conflicts with a stored visit: "), pl.col("problem")).alias(
                    "problem"
                ),
                "severity",
            )
            problems.append(clash)
    return pl.concat(problems) if problems else empty_report()


def _visit_date_problems(
    visits: pl.DataFrame, patients: pl.DataFrame, file: str, today: date, cfg: Config
) -> pl.DataFrame:
    joined = (
        visits.select("row", "patient_id", "visit_date")
        .filter(pl.col("patient_id").is_not_null())
        .join(patients, on="patient_id", how="left")
    )
    unknown = joined.filter(
        pl.col("infusion_date").is_null() & pl.col("patient_id").str.contains(PATIENT_ID_PATTERN)
    )
    earliest = pl.col("infusion_date") - pl.duration(days=cfg.visit_min_days_before_infusion)
    known = joined.filter(
        pl.col("infusion_date").is_not_null() & pl.col("visit_date").is_not_null()
    )
    value = pl.col("visit_date").cast(pl.String).alias("value")
    parts = [
        unknown.select(
            "row",
            "patient_id",
            pl.lit("patient_id").alias("column"),
            pl.col("patient_id").alias("value"),
            pl.lit(
                "unknown patient: not in the stored patients nor in a patients file of this upload"
            ).alias("problem"),
        ),
        known.filter(pl.col("visit_date") < earliest).select(
            "row",
            "patient_id",
            pl.lit("visit_date").alias("column"),
            value,
            pl.concat_str(
                pl.lit(
                    f"more than {cfg.visit_min_days_before_infusion} days before the infusion date "
                ),
                pl.col("infusion_date").cast(pl.String),
            ).alias("problem"),
        ),
        known.filter(pl.col("visit_date") > pl.col("death_date")).select(
            "row",
            "patient_id",
            pl.lit("visit_date").alias("column"),
            value,
            pl.concat_str(
                pl.lit("after the death date "), pl.col("death_date").cast(pl.String)
            ).alias("problem"),
        ),
        known.filter(pl.col("visit_date") > pl.lit(today)).select(
            "row",
            "patient_id",
            pl.lit("visit_date").alias("column"),
            value,
            pl.lit(f"in the future (today is {today.isoformat()})").alias("problem"),
        ),
    ]
    return (
        pl.concat(parts)
        .with_columns(pl.lit(file).alias("file"), pl.lit("error").alias("severity"))
        .select(REPORT_COLUMNS)
    )
