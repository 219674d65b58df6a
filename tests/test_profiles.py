"""Mapping profiles: exact unit conversions at their edges, and refusals that name the culprit."""

from __future__ import annotations

from decimal import Decimal

import polars as pl
import pytest

from monitoring.ingest.mapping import convert_number, map_file
from monitoring.ingest.profile import ProfileError, load_profile, unit_factor
from monitoring.ingest.read import read_bytes

WORDS = ("neg", "<0.01%", "not detected")


def _convert(text: str, column: str, unit: str, words: tuple[str, ...] = WORDS) -> str | None:
    multiply, divide = unit_factor(column, unit)
    return convert_number(text, multiply, divide, not_detected=words, percent_sign=unit == "%")


@pytest.mark.parametrize(
    ("text", "column", "unit", "expected"),
    [
        ("0.01", "mrd_flow_fraction", "%", "0.0001"),  # the contract's threshold, exactly
        ("0.01 %", "mrd_flow_fraction", "%", "0.0001"),
        ("100", "mrd_flow_fraction", "%", "1"),
        ("0.00001", "mrd_ngs_fraction", "percent", "0.0000001"),
        ("0", "mrd_flow_fraction", "%", "0"),
        ("neg", "mrd_flow_fraction", "%", "0"),
        ("NEG", "mrd_flow_fraction", "%", "0"),
        ("<0.01%", "mrd_flow_fraction", "%", "0"),
        ("5.234", "igg_mg_dl", "g/L", "523.4"),
        ("0.1", "igg_mg_dl", "g/L", "10"),
        ("4000", "igg_mg_dl", "mg/L", "400"),
        ("0.05", "bcell_per_ul", "10^9/L", "50"),
        ("0.007", "bcell_per_ul", "/nL", "7"),
        ("12", "bcell_per_ul", "cells/µL", "12"),
        ("12", "bcell_per_ul", "cells/uL", "12"),
        ("0.5", "bcell_pct_lymphocytes", "fraction", "50"),
    ],
)
def test_conversion_is_exact(text: str, column: str, unit: str, expected: str) -> None:
    converted = _convert(text, column, unit)
    assert converted == expected
    # the canonical parser then reads the same text a canonical CSV would hold
    assert float(converted) == float(Decimal(expected))


def test_percent_to_fraction_has_no_float_drift() -> None:
    # 0.07 / 100 in binary floating point is 0.0007000000000000001
    assert 0.07 / 100 != 0.0007
    assert _convert("0.07", "mrd_flow_fraction", "%") == "0.0007"
    assert float(_convert("0.07", "mrd_flow_fraction", "%") or "nan") == 0.0007


def test_words_are_not_detected_only_in_detection_columns() -> None:
    # "neg" has no meaning for IgG: left to the canonical parser, which reports it
    assert _convert("neg", "igg_mg_dl", "g/L", words=()) is None
    assert _convert("not a number", "mrd_flow_fraction", "%") is None


@pytest.mark.parametrize(
    ("unit", "column"),
    [("mmol/L", "igg_mg_dl"), ("‰", "mrd_flow_fraction"), ("cells/mL", "bcell_per_ul")],
)
def test_unknown_unit_is_refused_naming_it(unit: str, column: str) -> None:
    text = f"""layout = "table"
kind = "visits"
[visits]
patient_id = "id"
visit_date = "date"
{column} = {{ source = "x", unit = "{unit}" }}
"""
    with pytest.raises(ProfileError, match=f"unknown unit '{unit}' for {column}"):
        load_profile(text)


def test_unit_on_a_code_column_is_refused() -> None:
    text = """layout = "table"
kind = "visits"
[visits]
patient_id = "id"
visit_date = "date"
mrd_sample = { source = "s", unit = "%" }
"""
    with pytest.raises(ProfileError, match="mrd_sample is not a number"):
        load_profile(text)


def test_unknown_canonical_column_and_code_are_refused() -> None:
    base = 'layout = "table"\nkind = "visits"\n[visits]\npatient_id = "id"\nvisit_date = "d"\n'
    with pytest.raises(ProfileError, match="'mrd_percent', which is not a canonical visits column"):
        load_profile(base + 'mrd_percent = "m"\n')
    with pytest.raises(ProfileError, match="unknown code 'CR2' for visits.disease_status"):
        load_profile(base + 'disease_status = { source = "s", codes = { "1" = "CR2" } }\n')
    with pytest.raises(ProfileError, match="required column"):
        load_profile('layout = "table"\nkind = "visits"\n[visits]\npatient_id = "id"\n')


LAB_PROFILE = """layout = "table"
kind = "visits"
date_format = "DMY"
not_detected = ["neg", "<0.01%"]
[visits]
patient_id = "Patient"
visit_date = "Date"
mrd_sample = { source = "Material", codes = { "Marrow" = "BM", "Blood" = "PB" } }
mrd_flow_fraction = { source = "MRD %", unit = "%" }
igg_mg_dl = { source = "IgG g/L", unit = "g/L" }
"""


def _mapped(csv_text: str, profile_text: str = LAB_PROFILE):
    profile = load_profile(profile_text)
    return map_file(read_bytes(csv_text.encode(), "lab.csv"), profile)


def test_unknown_source_value_is_refused_naming_value_and_column() -> None:
    mapped = _mapped("Patient,Date,Material,MRD %,IgG g/L\nP1,05/03/2024,Spleen,0.01,5\n")
    errors = mapped.problems.filter(pl.col("severity") == "error").to_dicts()
    assert len(errors) == 1
    error = errors[0]
    assert error["row"] == 2 and error["column"] == "mrd_sample"
    assert error["source_column"] == "Material" and error["source_value"] == "Spleen"
    assert error["problem"] == (
        "unknown code 'Spleen' in Material: not in the profile's codes for mrd_sample "
        "(marrow, blood)"
    )


def test_missing_source_field_is_refused_naming_it() -> None:
    mapped = _mapped("Patient,Date,Material,MRD %\nP1,05/03/2024,Marrow,0.01\n")
    errors = mapped.problems.filter(pl.col("severity") == "error")
    assert errors["problem"].to_list() == [
        "unknown field: the profile maps igg_mg_dl to the source column 'IgG g/L', "
        "which is not in this file"
    ]
    assert errors["source_column"].to_list() == ["IgG g/L"]


def test_extra_source_column_is_a_warning() -> None:
    mapped = _mapped("Patient,Date,Material,MRD %,IgG g/L,Tech\nP1,05/03/2024,Marrow,0.01,5,AB\n")
    warnings = mapped.problems.filter(pl.col("severity") == "warning")
    assert warnings.select("source_column", "problem").rows() == [
        ("Tech", "not in the profile: ignored")
    ]


def test_mapped_table_holds_converted_text() -> None:
    mapped = _mapped(
        "Patient,Date,Material,MRD %,IgG g/L\n"
        "P1,05/03/2024,Marrow,0.01,5.234\nP1,06/04/2024,marrow,neg,\nP1,07/05/2024,Blood,<0.01%,0.1\n"
    )
    (table,) = mapped.tables
    assert table.frame.drop("__row").rows() == [
        ("P1", "05/03/2024", "BM", "0.0001", "523.4"),
        ("P1", "06/04/2024", "BM", "0", None),
        ("P1", "07/05/2024", "PB", "0", "10"),
    ]
