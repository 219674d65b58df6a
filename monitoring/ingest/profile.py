"""Mapping profiles: how one site's export becomes the canonical tables (docs/profiles.md).

A profile is a TOML file. `load_profile` turns it into a frozen `Profile` or raises `ProfileError`
with one sentence naming the key, column, unit or code that is wrong. Nothing here reads data.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, cast

from monitoring.errors import UsageError
from monitoring.ingest.parse import DateFormat
from monitoring.schemas import COLUMNS, ColumnSpec, Kind

Layout = Literal["table", "redcap"]
LAYOUTS: tuple[Layout, ...] = ("table", "redcap")
DATE_FORMATS: tuple[DateFormat, ...] = ("ISO", "DMY", "MDY")

# Columns where a "not detected" word means 0 (CONTRACT §1: 0 = not detected).
NOT_DETECTED_COLUMNS = (
    "mrd_flow_fraction",
    "mrd_ngs_fraction",
    "mrd_pcr_fraction",
    "car_copies_per_ug",
)
DEFAULT_NOT_DETECTED = ("neg", "negative", "not detected", "undetectable", "nd")

# Units each canonical number column accepts, as (multiply, divide) integer pairs: the value
# in canonical units is source × multiply ÷ divide, computed in Decimal (docs/profiles.md).
_FRACTION = {"fraction": (1, 1), "%": (1, 100), "percent": (1, 100)}
_PERCENT = {"%": (1, 1), "percent": (1, 1), "fraction": (100, 1)}
UNITS: dict[str, dict[str, tuple[int, int]]] = {
    "mrd_flow_fraction": _FRACTION,
    "mrd_ngs_fraction": _FRACTION,
    "mrd_pcr_fraction": _FRACTION,
    "bm_blasts_pct": _PERCENT,
    "baseline_bm_blasts_pct": _PERCENT,
    "bcell_pct_lymphocytes": _PERCENT,
    "car_pct_cd3": _PERCENT,
    "igg_mg_dl": {"mg/dl": (1, 1), "g/l": (100, 1), "mg/l": (1, 10), "g/dl": (1000, 1)},
    "bcell_per_ul": {
        "/ul": (1, 1),
        "cells/ul": (1, 1),
        "10^6/l": (1, 1),
        "/nl": (1000, 1),
        "cells/nl": (1000, 1),
        "10^9/l": (1000, 1),
    },
    "car_copies_per_ug": {
        "copies/ug": (1, 1),
        "copies/ng": (1000, 1),
    },
    "age_at_infusion_years": {"years": (1, 1)},
}


class ProfileError(UsageError):
    """A profile that cannot be used (exit 2): names the key and what to write instead."""


def normalise_unit(unit: str) -> str:
    """Case, spaces and the micro sign do not matter: 'µL', 'μL' and 'uL' are one unit."""
    return unit.strip().lower().replace(" ", "").replace("µ", "u").replace("μ", "u")


def unit_factor(column: str, unit: str) -> tuple[Decimal, Decimal]:
    """(multiply, divide) for a unit of a canonical column, or ProfileError naming the unit."""
    known = UNITS.get(column)
    if known is None:
        raise ProfileError(f"{column} takes no unit (it is not a measured number); remove 'unit'.")
    factor = known.get(normalise_unit(unit))
    if factor is None:
        raise ProfileError(
            f"unknown unit '{unit}' for {column}; known units: {', '.join(sorted(known))}."
        )
    return Decimal(factor[0]), Decimal(factor[1])


@dataclass(frozen=True)
class FieldMap:
    """One canonical column and where its values come from."""

    canonical: str
    source: str | None = None  # a source column
    checkbox: str | None = None  # a REDCap checkbox group: columns `<checkbox>___<code>`
    codes: tuple[tuple[str, str], ...] = ()  # source value (lower case) → canonical value
    several: str | None = None  # the value when several boxes of a checkbox group are ticked
    unit: str | None = None
    review: bool = False  # a draft's guess nobody has checked yet

    @property
    def code_map(self) -> dict[str, str]:
        return dict(self.codes)

    def source_columns(self, header: tuple[str, ...]) -> tuple[str, ...]:
        if self.source:
            return (self.source,)
        prefix = f"{self.checkbox}___"
        return tuple(c for c in header if c.startswith(prefix))

    @property
    def label(self) -> str:
        """How the report names the source: the column, or the checkbox group."""
        return self.source or f"{self.checkbox}___*"


@dataclass(frozen=True)
class Profile:
    name: str
    layout: Layout
    kind: Kind | None  # the one table a "table" layout file holds
    date_format: DateFormat
    not_detected: tuple[str, ...]
    ignore: tuple[str, ...]
    fields: dict[Kind, tuple[FieldMap, ...]]
    text: str  # the TOML it was read from (stored and shown as is)

    def kinds(self) -> tuple[Kind, ...]:
        if self.layout == "table":
            assert self.kind is not None
            return (self.kind,)
        return ("patients", "visits")

    def to_review(self) -> list[str]:
        return [
            f"{kind}.{f.canonical}" for kind in self.kinds() for f in self.fields[kind] if f.review
        ]

    def mapped_sources(self) -> set[str]:
        out: set[str] = set()
        for kind in self.kinds():
            for f in self.fields[kind]:
                if f.source:
                    out.add(f.source)
        return out

    def checkbox_groups(self) -> set[str]:
        return {f.checkbox for k in self.kinds() for f in self.fields[k] if f.checkbox}


def _str(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ProfileError(f"{where} must be a non-empty text in quotes.")
    return value.strip()


def _field(kind: Kind, spec: ColumnSpec, value: object) -> FieldMap:
    where = f"[{kind}] {spec.name}"
    if isinstance(value, str):
        return FieldMap(spec.name, source=_str(value, where))
    if not isinstance(value, dict):
        raise ProfileError(f"{where} must be a source column name or a table {{ source = ... }}.")
    known = {"source", "checkbox", "codes", "several", "unit", "review"}
    extra = sorted(set(value) - known)
    if extra:
        raise ProfileError(
            f"{where}: unknown key '{extra[0]}'; allowed: {', '.join(sorted(known))}."
        )
    source = value.get("source")
    checkbox = value.get("checkbox")
    if (source is None) == (checkbox is None):
        raise ProfileError(f"{where} needs exactly one of 'source' or 'checkbox'.")
    raw_codes = value.get("codes", {})
    if not isinstance(raw_codes, dict):
        raise ProfileError(f'{where}: \'codes\' must be a table like {{ "1" = "CR" }}.')
    codes: list[tuple[str, str]] = []
    for key, target in raw_codes.items():
        target_text = _str(target, f"{where} codes.{key}")
        _check_target(kind, spec, target_text, f"{where} codes.{key}")
        codes.append((str(key).strip().lower(), target_text))
    several = value.get("several")
    if several is not None:
        several = _str(several, f"{where} several")
        _check_target(kind, spec, several, f"{where} several")
        if checkbox is None:
            raise ProfileError(f"{where}: 'several' only applies to a checkbox group.")
    unit = value.get("unit")
    if unit is not None:
        unit = _str(unit, f"{where} unit")
        if spec.type != "number":
            raise ProfileError(f"{where}: {spec.name} is not a number; it takes no unit.")
        unit_factor(spec.name, unit)
    review = value.get("review", False)
    if not isinstance(review, bool):
        raise ProfileError(f"{where}: 'review' must be true or false.")
    return FieldMap(
        spec.name,
        source=_str(source, f"{where} source") if source is not None else None,
        checkbox=_str(checkbox, f"{where} checkbox") if checkbox is not None else None,
        codes=tuple(codes),
        several=several,
        unit=unit,
        review=review,
    )


def _check_target(kind: Kind, spec: ColumnSpec, target: str, where: str) -> None:
    if spec.type == "code" and target not in spec.codes:
        raise ProfileError(
            f"{where}: unknown code '{target}' for {kind}.{spec.name}; "
            f"allowed: {', '.join(spec.codes)}."
        )
    if spec.type == "bool" and target.lower() not in ("true", "false"):
        raise ProfileError(f'{where}: {spec.name} is yes/no; map to "true" or "false".')


def load_profile(text: str, *, name: str = "profile") -> Profile:
    """Parse and check a profile's TOML text."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{name}: not valid TOML ({exc}).") from None
    top = {"name", "layout", "kind", "date_format", "not_detected", "ignore", "patients", "visits"}
    extra = sorted(set(data) - top)
    if extra:
        raise ProfileError(f"{name}: unknown key '{extra[0]}'; allowed: {', '.join(sorted(top))}.")
    layout = data.get("layout", "table")
    if layout not in LAYOUTS:
        raise ProfileError(f"{name}: layout '{layout}' is unknown; use 'table' or 'redcap'.")
    date_format = data.get("date_format", "ISO")
    if date_format not in DATE_FORMATS:
        raise ProfileError(f"{name}: date_format '{date_format}' is unknown; use ISO, DMY or MDY.")
    kind = data.get("kind")
    if layout == "table":
        if kind not in ("patients", "visits"):
            raise ProfileError(
                f"{name}: a 'table' profile names the one table its files hold: "
                'kind = "patients" or "visits".'
            )
        kinds: tuple[Kind, ...] = (cast(Kind, kind),)
    else:
        if kind is not None:
            raise ProfileError(f"{name}: a 'redcap' profile fills both tables; remove 'kind'.")
        kinds = ("patients", "visits")
    words = data.get("not_detected", list(DEFAULT_NOT_DETECTED))
    ignore = data.get("ignore", [])
    if not isinstance(words, list) or not isinstance(ignore, list):
        raise ProfileError(f"{name}: 'not_detected' and 'ignore' are lists of texts.")
    fields: dict[Kind, tuple[FieldMap, ...]] = {"patients": (), "visits": ()}
    for k in kinds:
        section = data.get(k)
        if not isinstance(section, dict):
            raise ProfileError(f"{name}: the [{k}] section is missing.")
        specs = {s.name: s for s in COLUMNS[k]}
        unknown = sorted(set(section) - set(specs))
        if unknown:
            raise ProfileError(
                f"{name}: [{k}] names '{unknown[0]}', which is not a canonical {k} column "
                f"(CONTRACT §1: {', '.join(specs)})."
            )
        fields[k] = tuple(_field(k, specs[c], v) for c, v in section.items())
        missing = [s.name for s in COLUMNS[k] if s.required and s.name not in section]
        if missing:
            raise ProfileError(
                f"{name}: [{k}] must map the required column(s) {', '.join(missing)}."
            )
    if layout == "redcap":
        ids = {f.source for k in kinds for f in fields[k] if f.canonical == "patient_id"}
        if len(ids) != 1 or None in ids:
            raise ProfileError(
                f"{name}: in a redcap profile, patient_id of [patients] and [visits] is the same "
                "record id field (a source column)."
            )
    return Profile(
        name=str(data.get("name", name)),
        layout=layout,
        kind=cast(Kind, kind) if layout == "table" else None,
        date_format=date_format,
        not_detected=tuple(str(w).strip().lower() for w in words),
        ignore=tuple(str(c) for c in ignore),
        fields=fields,
        text=text,
    )


def read_profile(path: str) -> Profile:
    from pathlib import Path

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError:
        raise ProfileError(f"{path}: no such profile file.") from None
    return load_profile(text, name=Path(path).name)
