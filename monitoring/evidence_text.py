"""An alert's evidence as labelled values with units, for people to read.

`evidence_items(evidence_json)` turns the evidence JSON of `monitoring.alerts` into
`(label, value)` pairs of plain text: "Flow MRD" → "2.6×10⁻⁴ (0.026 %)", "IgG" → "344 mg/dL",
"IVIG in the 30 days before" → "no". Never Python dict or list text, never raw booleans;
empty values are left out. Unknown keys still show, with a label made from the key.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable

_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def plain_number(value: float, digits: int = 2) -> str:
    """2.40 → "2.4", 88.0 → "88"."""
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def fraction_text(value: float) -> str:
    """An MRD fraction as "2.6×10⁻⁴ (0.026 %)"; 0 as "0 (not detected)"."""
    if value == 0:
        return "0 (not detected)"
    exponent = math.floor(math.log10(abs(value)))
    mantissa = round(value / 10**exponent, 1)
    if mantissa >= 10:
        mantissa, exponent = mantissa / 10, exponent + 1
    percent = plain_number(value * 100, 4 if value < 0.001 else 3)
    return f"{plain_number(mantissa, 1)}×10{str(exponent).translate(_SUPERSCRIPT)} ({percent} %)"


def _unit(unit: str, digits: int = 2) -> Callable[[object], str]:
    def render(value: object) -> str:
        return f"{_scalar(value, digits)}{unit}"

    return render


def _scalar(value: object, digits: int = 2) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return plain_number(float(value), digits)
    return str(value).replace("_", " ")


def _fraction(value: object) -> str:
    return fraction_text(float(value)) if isinstance(value, int | float) else _scalar(value)


_SAMPLE = {"BM": "bone marrow", "PB": "peripheral blood"}

# key → (label, renderer)
FIELDS: dict[str, tuple[str, Callable[[object], str]]] = {
    "visit_date": ("Visit", _scalar),
    "day": ("Day since infusion", _scalar),
    "disease_status": ("Disease status", _scalar),
    "bm_blasts_pct": ("Marrow blasts", _unit(" %", 1)),
    "mrd_sample": ("MRD sample", lambda v: _SAMPLE.get(str(v), _scalar(v))),
    "mrd_flow_fraction": ("Flow MRD", _fraction),
    "mrd_ngs_fraction": ("NGS MRD", _fraction),
    "mrd_pcr_fraction": ("PCR MRD", _fraction),
    "cd19_status": ("CD19 on leukemic cells", _scalar),
    "relapse_site": ("Relapse site", _scalar),
    "relapse": ("Relapse at this visit", _scalar),
    "kmt2a_rearranged": ("KMT2A rearranged", _scalar),
    "new_malignancy": ("New malignancy", _scalar),
    "comment": ("Comment", _scalar),
    "bcell_pct_lymphocytes": ("B cells", _unit(" % of lymphocytes")),
    "bcell_per_ul": ("B cells per µL", _unit("/µL", 1)),
    "bcell_date": ("B-cell assessment", _scalar),
    "bcell_day": ("B-cell assessment day", _scalar),
    "recovery_date": ("Recovery (first of two)", _scalar),
    "confirmed_date": ("Confirmed on", _scalar),
    "confirmed_day": ("Confirmed on day", _scalar),
    "confirmed_bcell_pct_lymphocytes": ("Confirming B cells", _unit(" % of lymphocytes")),
    "confirmed_bcell_per_ul": ("Confirming B cells per µL", _unit("/µL", 1)),
    "loss_date": ("CAR loss (first of two)", _scalar),
    "result_dates": ("Result dates", _scalar),
    "car_copies_per_ug": ("CAR transgene", _unit(" copies/µg", 1)),
    "car_pct_cd3": ("CAR T cells", _unit(" % of CD3")),
    "igg_mg_dl": ("IgG", _unit(" mg/dL", 0)),
    "ivig_within_30d": ("IVIG in the 30 days before", _scalar),
    "window": ("Window", _scalar),
    "window_start_day": ("Window opens on day", _scalar),
    "window_end_day": ("Window closes on day", _scalar),
    "window_end_date": ("Window closed", _scalar),
    "response": ("Response", _scalar),
    "previous_negative_date": ("Previous MRD-negative result", _scalar),
    "previous_negative_day": ("Previous MRD-negative day", _scalar),
    "last_contact_date": ("Last contact", _scalar),
    "days_without_contact": ("Days without contact", _unit(" days", 0)),
    "evaluated_on": ("Evaluated on", _scalar),
    "raised_on": ("Raised on", _scalar),
    "user_name": ("By", _scalar),
    "severity": ("Severity", _scalar),
    "note": ("Note", lambda v: str(v)),
    "at": ("At", _scalar),
}
_METHOD = {"flow": "Flow", "NGS": "NGS", "PCR": "PCR"}


def _label(key: str) -> str:
    return FIELDS[key][0] if key in FIELDS else key.replace("_", " ").capitalize()


def field_label(key: str) -> str:
    """A column's label for people ("bm_blasts_pct" → "Marrow blasts")."""
    return _label(key)


def field_text(key: str, value: object) -> str:
    """One recorded value with its unit, as text; an empty value as an empty string."""
    return "" if value is None else _render(key, value)


def _render(key: str, value: object) -> str:
    if isinstance(value, list):
        return ", ".join(_render(key, item) for item in value if item is not None)
    if isinstance(value, dict):
        return _rise_text(value) if "ratio" in value else _pairs_text(value)
    return FIELDS[key][1](value) if key in FIELDS else _scalar(value)


def _rise_text(result: dict[str, object]) -> str:
    """One `mrd_rising` result: "NGS 1.8×10⁻⁵ (day 94) → 2.2×10⁻⁴ (day 120), ×12.2"."""
    method = _METHOD.get(str(result.get("method")), _scalar(result.get("method")))
    before = _fraction(result.get("previous_value"))
    after = _fraction(result.get("value"))
    ratio = result.get("ratio")
    times = f", ×{plain_number(float(ratio), 1)}" if isinstance(ratio, int | float) else ""
    return f"{method} {before} (day {_scalar(result.get('previous_day'))}) → {after}{times}"


def _pairs_text(mapping: dict[str, object]) -> str:
    return "; ".join(
        f"{_label(k).lower()} {_render(k, v)}" for k, v in mapping.items() if v is not None
    )


def evidence_items(evidence: str | None) -> list[tuple[str, str]]:
    """(label, value with unit) for every recorded value of the evidence JSON."""
    if not evidence:
        return []
    try:
        parsed = json.loads(evidence)
    except ValueError:
        return [("Evidence", evidence)]
    if not isinstance(parsed, dict):
        return [("Evidence", _render("evidence", parsed))]
    items: list[tuple[str, str]] = []
    for key, value in parsed.items():
        if value is None or value == [] or value == "":
            continue
        if key == "results" and isinstance(value, list):
            items.extend(("MRD rise", _render(key, item)) for item in value)
            continue
        if key == "flags" and isinstance(value, list):
            items.extend(("Flag", _render(key, item)) for item in value)
            continue
        items.append((_label(key), _render(key, value)))
    return items


__all__ = ["FIELDS", "evidence_items", "fraction_text", "plain_number"]
