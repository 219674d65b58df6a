"""Apply a mapping profile to one read file: source columns → canonical text columns.

Values are converted exactly: numbers are parsed as `Decimal` from the text the person typed,
multiplied and divided by the unit's integer factors, and written back as plain decimal text
("0.01" % → "0.0001"). The canonical parser then reads that text exactly as it reads a canonical
CSV, so a converted value and the same value typed in canonical units give the same float.

The problems found here carry the source column and value beside the canonical column
(`SOURCE_REPORT_SCHEMA`); `annotate` adds the same two columns to the canonical validator's report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation, localcontext

import polars as pl

from monitoring.ingest.profile import (
    NOT_DETECTED_COLUMNS,
    FieldMap,
    Profile,
    normalise_unit,
    unit_factor,
)
from monitoring.ingest.read import ROW_COLUMN, RawTable
from monitoring.ingest.validate import REPORT_COLUMNS, REPORT_SCHEMA
from monitoring.schemas import COLUMNS, ColumnSpec, Kind

SOURCE_REPORT_SCHEMA: dict[str, pl.DataType] = {
    **REPORT_SCHEMA,
    "source_column": pl.String(),
    "source_value": pl.String(),
}
SOURCE_REPORT_COLUMNS = list(SOURCE_REPORT_SCHEMA)
HEADER_ROW = 1
TICKED = ("1", "checked", "yes", "true")
UNTICKED = ("0", "unchecked", "no", "false")
# REDCap's own bookkeeping columns: never data, never reported as unknown
REDCAP_SYSTEM = re.compile(
    r"^(redcap_event_name|redcap_repeat_instrument|redcap_repeat_instance|redcap_survey_identifier"
    r"|redcap_data_access_group|.+_complete|.+_timestamp)$"
)
_DECIMAL_COMMA = re.compile(r"^[+-]?\d+,\d+$")


def empty_source_report() -> pl.DataFrame:
    return pl.DataFrame(schema=SOURCE_REPORT_SCHEMA)


def plain_decimal(value: Decimal) -> str:
    """'0.0001', '500', '0': no exponent, no trailing zeros, no '-0'."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def convert_number(
    text: str,
    multiply: Decimal,
    divide: Decimal,
    *,
    not_detected: tuple[str, ...] = (),
    percent_sign: bool = False,
    decimal_comma: bool = False,
) -> str | None:
    """The canonical text of one source number, or None when it is not a number (left to the
    canonical parser, which says what is wrong)."""
    cleaned = text.strip()
    if cleaned.lower() in not_detected:
        return "0"
    if percent_sign and cleaned.endswith("%"):
        cleaned = cleaned[:-1].strip()
    if decimal_comma and _DECIMAL_COMMA.match(cleaned):
        cleaned = cleaned.replace(",", ".")
    try:
        number = Decimal(cleaned)
    except InvalidOperation:
        return None
    if not number.is_finite():
        return None
    with localcontext() as ctx:
        ctx.prec = 60  # far more digits than any typed value: × and ÷ by 10^k stay exact
        return plain_decimal(number * multiply / divide)


@dataclass(frozen=True)
class MappedFile:
    """One source file turned into canonical text tables, with its own problems."""

    name: str
    source: pl.DataFrame  # the source cells, with the row column
    tables: tuple[RawTable, ...]
    problems: pl.DataFrame  # SOURCE_REPORT_SCHEMA
    sources: dict[str, str] = field(default_factory=dict)  # canonical column → source label
    patient_cells: pl.DataFrame | None = None  # redcap: patient_id, column, row it came from


def _problem_rows(
    frame: pl.DataFrame,
    *,
    file: str,
    canonical: str,
    source_label: str,
    problem: pl.Expr,
    patient: pl.Expr,
    source_value: pl.Expr,
    severity: str = "error",
) -> pl.DataFrame:
    return frame.select(
        pl.lit(file).alias("file"),
        pl.col(ROW_COLUMN).cast(pl.Int64).alias("row"),
        patient.cast(pl.String).alias("patient_id"),
        pl.lit(canonical).alias("column"),
        source_value.cast(pl.String).alias("value"),
        problem.cast(pl.String).alias("problem"),
        pl.lit(severity).alias("severity"),
        pl.lit(source_label).alias("source_column"),
        source_value.cast(pl.String).alias("source_value"),
    )


def _header_problems(raw: RawTable, profile: Profile) -> pl.DataFrame:
    header = tuple(c for c in raw.frame.columns if c != ROW_COLUMN)
    rows: list[dict[str, object]] = []

    def add(canonical: str | None, source: str, problem: str, severity: str) -> None:
        rows.append(
            {
                "file": raw.name,
                "row": HEADER_ROW,
                "patient_id": None,
                "column": canonical,
                "value": source,
                "problem": problem,
                "severity": severity,
                "source_column": source,
                "source_value": source,
            }
        )

    used: set[str] = set()
    for kind in profile.kinds():
        for fm in profile.fields[kind]:
            columns = fm.source_columns(header)
            used.update(columns)
            if fm.source and fm.source not in header:
                add(
                    fm.canonical,
                    fm.source,
                    f"unknown field: the profile maps {fm.canonical} to the source column "
                    f"'{fm.source}', which is not in this file",
                    "error",
                )
            elif fm.checkbox and not columns:
                add(
                    fm.canonical,
                    f"{fm.checkbox}___*",
                    f"unknown field: the profile maps {fm.canonical} to the checkbox group "
                    f"'{fm.checkbox}', and no column {fm.checkbox}___<code> is in this file",
                    "error",
                )
            elif fm.checkbox and fm.codes:
                known = fm.code_map
                for column in columns:
                    code = column[len(fm.checkbox) + 3 :]
                    if code.lower() not in known:
                        add(
                            fm.canonical,
                            column,
                            f"unknown code '{code}' of the checkbox group '{fm.checkbox}': the "
                            f"profile knows {', '.join(k for k, _ in fm.codes)}; add it to codes",
                            "error",
                        )
    for column in header:
        if column in used or column in profile.ignore:
            continue
        if profile.layout == "redcap" and REDCAP_SYSTEM.match(column):
            continue
        add(None, column, "not in the profile: ignored", "warning")
    if not rows:
        return empty_source_report()
    return pl.DataFrame(rows, schema=SOURCE_REPORT_SCHEMA)


def _coded(raw: RawTable, fm: FieldMap, patient: pl.Expr) -> tuple[pl.Series, pl.DataFrame]:
    assert fm.source is not None
    text = raw.frame[fm.source]
    mapped = text.str.to_lowercase().replace_strict(
        fm.code_map, default=None, return_dtype=pl.String
    )
    bad = raw.frame.filter(text.is_not_null() & mapped.is_null())
    known = ", ".join(k for k, _v in fm.codes)
    problems = _problem_rows(
        bad,
        file=raw.name,
        canonical=fm.canonical,
        source_label=fm.source,
        problem=pl.concat_str(
            pl.lit("unknown code '"),
            pl.col(fm.source),
            pl.lit(f"' in {fm.source}: not in the profile's codes for {fm.canonical} ({known})"),
        ),
        patient=patient,
        source_value=pl.col(fm.source),
    )
    return mapped.alias(fm.canonical), problems


def _numbers(raw: RawTable, fm: FieldMap, profile: Profile) -> pl.Series:
    assert fm.source is not None
    text = raw.frame[fm.source]
    if fm.unit:
        multiply, divide = unit_factor(fm.canonical, fm.unit)
    else:
        multiply, divide = Decimal(1), Decimal(1)
    words = profile.not_detected if fm.canonical in NOT_DETECTED_COLUMNS else ()
    percent = fm.unit is not None and normalise_unit(fm.unit) in ("%", "percent")
    # convert each distinct text once: a registry repeats the same few thousand values
    lookup: dict[str, str] = {}
    for value in text.drop_nulls().unique().to_list():
        converted = convert_number(
            value,
            multiply,
            divide,
            not_detected=words,
            percent_sign=percent,
            decimal_comma=raw.decimal_comma,
        )
        lookup[value] = value if converted is None else converted
    return text.replace_strict(lookup, default=None, return_dtype=pl.String).alias(fm.canonical)


def _checkbox(raw: RawTable, fm: FieldMap, patient: pl.Expr) -> tuple[pl.Series, pl.DataFrame]:
    assert fm.checkbox is not None
    header = tuple(c for c in raw.frame.columns if c != ROW_COLUMN)
    columns = fm.source_columns(header)
    height = raw.frame.height
    if not columns:
        return pl.Series(fm.canonical, [None] * height, dtype=pl.String), empty_source_report()
    code_map = fm.code_map
    codes = [
        code_map.get(c[len(fm.checkbox) + 3 :].lower(), c[len(fm.checkbox) + 3 :]) for c in columns
    ]
    lowered = raw.frame.select([pl.col(c).str.to_lowercase().alias(c) for c in columns])
    ticked = lowered.select(
        [pl.col(c).is_in(list(TICKED)).fill_null(False).alias(c) for c in columns]
    )
    invalid = lowered.select(
        [
            (pl.col(c).is_not_null() & ~pl.col(c).is_in(list(TICKED + UNTICKED))).alias(c)
            for c in columns
        ]
    )
    n_ticked = ticked.sum_horizontal()
    one = pl.coalesce(
        [pl.when(ticked[c]).then(pl.lit(code)) for c, code in zip(columns, codes, strict=True)]
    )
    several = pl.lit(fm.several) if fm.several else pl.lit(None, pl.String)
    values = raw.frame.select(
        pl.when(n_ticked == 0)
        .then(pl.lit(None, pl.String))
        .when(n_ticked == 1)
        .then(one)
        .otherwise(several)
        .alias(fm.canonical)
    ).to_series()
    label = fm.label
    parts = []
    if fm.several is None:
        parts.append(
            _problem_rows(
                raw.frame.filter(n_ticked > 1),
                file=raw.name,
                canonical=fm.canonical,
                source_label=label,
                problem=pl.lit(
                    f"several boxes of '{fm.checkbox}' are ticked and the profile has no "
                    "'several' value for them"
                ),
                patient=patient,
                source_value=ticked_columns(raw.frame, fm),
            )
        )
    any_invalid = invalid.select(pl.any_horizontal(pl.all())).to_series()
    if any_invalid.any():
        bad = raw.frame.filter(any_invalid)
        bad_cells = pl.concat_str(
            [
                pl.when(
                    pl.col(c).is_not_null()
                    & ~pl.col(c).str.to_lowercase().is_in(list(TICKED + UNTICKED))
                ).then(pl.concat_str(pl.lit(c + " = "), pl.col(c)))
                for c in columns
            ],
            separator=", ",
            ignore_nulls=True,
        )
        parts.append(
            _problem_rows(
                bad,
                file=raw.name,
                canonical=fm.canonical,
                source_label=label,
                problem=pl.lit("a checkbox is ticked (1, Checked) or not (0, Unchecked, empty)"),
                patient=patient,
                source_value=bad_cells,
            )
        )
    problems = pl.concat(parts) if parts else empty_source_report()
    return values, problems


def ticked_columns(frame: pl.DataFrame, fm: FieldMap) -> pl.Expr:
    """'relapse_site___1, relapse_site___2': the ticked boxes, as the report's source value."""
    header = tuple(c for c in frame.columns if c != ROW_COLUMN)
    columns = fm.source_columns(header)
    if not columns:
        return pl.lit(None, pl.String)
    return pl.concat_str(
        [
            pl.when(pl.col(c).str.to_lowercase().is_in(list(TICKED))).then(pl.lit(c))
            for c in columns
        ],
        separator=", ",
        ignore_nulls=True,
    )


def map_columns(
    raw: RawTable, profile: Profile, kinds: tuple[Kind, ...]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(row column + every mapped canonical column as text, problems). Missing sources are null."""
    header = tuple(c for c in raw.frame.columns if c != ROW_COLUMN)
    id_source = next(
        (f.source for k in kinds for f in profile.fields[k] if f.canonical == "patient_id"), None
    )
    patient = pl.col(id_source) if id_source in header else pl.lit(None, pl.String)
    out: dict[str, pl.Series] = {ROW_COLUMN: raw.frame[ROW_COLUMN]}
    problems: list[pl.DataFrame] = []
    specs = {s.name: s for k in kinds for s in _columns(k)}
    for kind in kinds:
        for fm in profile.fields[kind]:
            if fm.canonical in out:
                continue
            if fm.checkbox:
                series, found = _checkbox(raw, fm, patient)
                problems.append(found)
            elif fm.source not in header:
                series = pl.Series(fm.canonical, [None] * raw.frame.height, dtype=pl.String)
            elif fm.codes:
                series, found = _coded(raw, fm, patient)
                problems.append(found)
            elif specs[fm.canonical].type == "number" and (
                fm.unit or fm.canonical in NOT_DETECTED_COLUMNS
            ):
                series = _numbers(raw, fm, profile)
            else:
                series = raw.frame[fm.source].alias(fm.canonical)
            out[fm.canonical] = series
    frame = pl.DataFrame(out)
    return frame, (pl.concat(problems) if problems else empty_source_report())


def _columns(kind: Kind) -> tuple[ColumnSpec, ...]:
    return COLUMNS[kind]


def map_file(raw: RawTable, profile: Profile) -> MappedFile:
    """Turn one read file into the canonical tables its profile describes."""
    header_problems = _header_problems(raw, profile)
    sources = {fm.canonical: fm.label for kind in profile.kinds() for fm in profile.fields[kind]}
    native = frozenset(
        fm.canonical
        for kind in profile.kinds()
        for fm in profile.fields[kind]
        if fm.source in raw.native_dates
    )
    if profile.layout == "table":
        assert profile.kind is not None
        frame, problems = map_columns(raw, profile, (profile.kind,))
        table = RawTable(raw.name, frame, native, False, raw.sha256)
        return MappedFile(
            raw.name,
            raw.frame,
            (table,),
            pl.concat([header_problems, problems]),
            sources,
        )
    from monitoring.ingest.redcap import split_records

    frame, problems = map_columns(raw, profile, ("patients", "visits"))
    split = split_records(frame, profile, raw.name)
    tables = (
        RawTable(raw.name, split.patients, native, False, raw.sha256),
        RawTable(raw.name, split.visits, native, False, raw.sha256),
    )
    mapped = MappedFile(
        raw.name, raw.frame, tables, empty_source_report(), sources, split.patient_cells
    )
    # a disagreement names its own row: no move to the row where the value was first filled
    split_problems = annotate(split.problems, [mapped], profile, remap_patient_rows=False)
    return MappedFile(
        raw.name,
        raw.frame,
        tables,
        pl.concat([header_problems, problems, split_problems]),
        sources,
        split.patient_cells,
    )


def annotate(
    report: pl.DataFrame,
    files: list[MappedFile],
    profile: Profile,
    *,
    remap_patient_rows: bool = True,
) -> pl.DataFrame:
    """Add `source_column` and `source_value` to canonical report rows; in a REDCap file, a
    patient value's row is the row where that value was filled."""
    if "source_column" in report.columns:
        return report
    parts: list[pl.DataFrame] = []
    for name in report["file"].unique(maintain_order=True).to_list():
        rows = report.filter(pl.col("file") == name)
        mapped = next((m for m in files if m.name == name), None)
        if mapped is None:
            parts.append(
                rows.with_columns(
                    pl.lit(None, pl.String).alias("source_column"),
                    pl.lit(None, pl.String).alias("source_value"),
                )
            )
            continue
        if remap_patient_rows and mapped.patient_cells is not None and mapped.patient_cells.height:
            rows = (
                rows.join(
                    mapped.patient_cells.rename({"row": "__cell_row"}),
                    on=["patient_id", "column"],
                    how="left",
                )
                .with_columns(
                    pl.when(pl.col("row").is_not_null() & pl.col("__cell_row").is_not_null())
                    .then(pl.col("__cell_row"))
                    .otherwise(pl.col("row"))
                    .alias("row")
                )
                .drop("__cell_row")
            )
        rows = rows.with_columns(
            pl.col("column")
            .replace_strict(mapped.sources, default=None, return_dtype=pl.String)
            .alias("source_column")
        )
        rows = rows.with_columns(_source_values(rows, mapped, profile).alias("source_value"))
        parts.append(rows)
    if not parts:
        return empty_source_report()
    return pl.concat(parts).select(SOURCE_REPORT_COLUMNS)


def _source_values(rows: pl.DataFrame, mapped: MappedFile, profile: Profile) -> pl.Series:
    """The source cell at (row, source column) of each report row, as the person typed it."""
    wanted = rows.select(pl.col("row").cast(pl.Int64), "source_column")
    source = mapped.source.filter(
        pl.col(ROW_COLUMN).cast(pl.Int64).is_in(wanted["row"].drop_nulls().implode())
    )
    checkboxes = {f.label: f for k in profile.kinds() for f in profile.fields[k] if f.checkbox}
    cells: dict[tuple[int, str], str | None] = {}
    lookup = {int(r[ROW_COLUMN]): r for r in source.iter_rows(named=True)}
    boxes = {
        label: dict(
            zip(
                source[ROW_COLUMN].cast(pl.Int64).to_list(),
                source.select(ticked_columns(source, fm)).to_series().to_list(),
                strict=True,
            )
        )
        for label, fm in checkboxes.items()
    }
    values: list[str | None] = []
    for row, column in wanted.iter_rows():
        if row is None or column is None:
            values.append(None)
            continue
        if column in boxes:
            values.append(boxes[column].get(row))
            continue
        record = lookup.get(row)
        values.append(None if record is None else record.get(column))
        cells[(row, column)] = values[-1]
    return pl.Series("source_value", values, dtype=pl.String)


__all__ = [
    "REPORT_COLUMNS",
    "SOURCE_REPORT_COLUMNS",
    "MappedFile",
    "annotate",
    "convert_number",
    "map_file",
]
