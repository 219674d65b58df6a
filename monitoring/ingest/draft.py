"""A starting profile from what a data manager already has: a REDCap data dictionary (its CSV
export) or the header of an export. Fields are matched to canonical columns by name and label;
every guess is written with `review = true`, so the profile cannot be used before a person has
checked it (`ltfu profile check`), and every field without a guess is listed as a comment.

`check_rows` shows what each source column becomes on the first rows, writing nothing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import polars as pl

from monitoring.ingest.mapping import REDCAP_SYSTEM, MappedFile
from monitoring.ingest.profile import UNITS, Layout, Profile, normalise_unit
from monitoring.ingest.read import ROW_COLUMN, RawTable
from monitoring.schemas import COLUMNS, Kind

DICTIONARY_FIELD = "Variable / Field Name"
# phrases that point at a canonical column, in a field's name or label (lower case)
SYNONYMS: dict[str, tuple[str, ...]] = {
    "patient_id": (
        "record_id",
        "record id",
        "patient_id",
        "patient id",
        "study_id",
        "study id",
        "subject",
        "patient",
    ),
    "site": ("redcap_data_access_group", "data access group", "site", "centre", "center"),
    "sex": ("sex", "gender"),
    "age_at_infusion_years": ("age at infusion", "age_years", "age"),
    "product": ("car-t product", "product"),
    "infusion_date": ("infusion date", "infusion_date", "infusion"),
    "prior_hsct": ("prior hsct", "prior_hsct", "prior transplant"),
    "prior_blinatumomab": ("prior blinatumomab", "blinatumomab", "blina"),
    "kmt2a_rearranged": ("kmt2a", "mll"),
    "baseline_bm_blasts_pct": ("baseline marrow blasts", "baseline blasts", "baseline_blasts"),
    "hsct_date": ("hsct date", "hsct_date", "transplant date"),
    "new_therapy_date": ("new anti-leukemic therapy", "new therapy", "new_tx", "new_therapy"),
    "last_contact_date": ("last contact", "last_contact"),
    "death_date": ("date of death", "death date", "death_date"),
    "death_cause": ("cause of death", "death_cause", "death cause"),
    "visit_date": ("assessment date", "visit date", "sample date", "assess_date", "visit_date"),
    "disease_status": ("disease status", "response", "status"),
    "bm_blasts_pct": ("marrow blasts", "bm_blasts", "blasts"),
    "mrd_sample": ("mrd specimen", "mrd sample", "specimen", "material"),
    "mrd_flow_fraction": ("flow mrd", "mrd flow", "mrd_flow", "flow"),
    "mrd_ngs_fraction": ("ngs mrd", "mrd_ngs", "ngs"),
    "mrd_pcr_fraction": ("rq-pcr mrd", "pcr mrd", "mrd_pcr", "pcr"),
    "bcell_pct_lymphocytes": ("% of lymphocytes", "bcell_pct", "b cells (%"),
    "bcell_per_ul": ("b cells (cells", "b cells (10", "bcell_abs", "cd19+ b cells", "b cells"),
    "car_copies_per_ug": ("car transgene", "car_copies", "copies"),
    "car_pct_cd3": ("% of cd3", "car_pct", "car+ t cells"),
    "igg_mg_dl": ("serum igg", "igg"),
    "ivig_within_30d": ("ivig",),
    "cd19_status": ("cd19 on leukemic", "cd19_status", "cd19"),
    "relapse_site": ("relapse site", "relapse_site"),
    "new_malignancy": ("second malignancy", "new malignancy", "new_malig", "malignancy"),
    "comment": ("comments", "comment", "notes", "remark"),
}
# choice labels that point at a canonical code (lower case, letters and digits only)
CODE_WORDS: dict[str, tuple[str, ...]] = {
    "F": ("female", "f", "girl"),
    "M": ("male", "m", "boy"),
    "U": ("unknown", "u"),
    "CR": ("completeremissioncr", "completeremission", "cr"),
    "CRi": ("crwithincompleterecoverycri", "cri", "crwithincompleterecovery"),
    "no_response": ("noresponse", "nonresponse", "refractory"),
    "not_assessed": ("notassessed", "notdone"),
    "BM": ("bonemarrow", "marrow", "bm"),
    "PB": ("peripheralblood", "blood", "pb"),
    "lineage_switch": ("lineageswitch",),
    "treatment_related": ("treatmentrelated", "trm"),
    "other_extramedullary": ("otherextramedullary", "extramedullary"),
    "cns": ("cns", "centralnervoussystem"),
}


@dataclass(frozen=True)
class SourceField:
    name: str
    label: str = ""
    field_type: str = ""
    choices: tuple[tuple[str, str], ...] = ()  # (code, label)


@dataclass
class Draft:
    layout: Layout
    kind: Kind | None
    fields: list[SourceField]
    guesses: dict[Kind, dict[str, SourceField]] = field(default_factory=dict)


def _key(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _choices(text: str | None) -> tuple[tuple[str, str], ...]:
    if not text:
        return ()
    out = []
    for part in text.split("|"):
        if "," in part:
            code, label = part.split(",", 1)
            out.append((code.strip(), label.strip()))
    return tuple(out)


def fields_from_dictionary(frame: pl.DataFrame) -> list[SourceField]:
    """Source fields of a REDCap data dictionary (its 'Download the data dictionary' CSV)."""
    columns = {c.lower(): c for c in frame.columns}

    def col(prefix: str) -> str | None:
        return next((c for k, c in columns.items() if k.startswith(prefix)), None)

    name, label = col("variable / field name"), col("field label")
    ftype, choices = col("field type"), col("choices")
    out = []
    for row in frame.iter_rows(named=True):
        if not name or not row.get(name):
            continue
        out.append(
            SourceField(
                str(row[name]),
                str(row.get(label or "", "") or ""),
                str(row.get(ftype or "", "") or ""),
                _choices(row.get(choices or "")),
            )
        )
    return out


def _score(canonical: str, source: SourceField) -> int:
    text = f"{source.name} {source.label}".lower()
    best = 0
    for phrase in SYNONYMS.get(canonical, ()):
        if phrase in text:
            best = max(best, len(phrase) + (10 if phrase == source.name.lower() else 0))
    return best


def guess(fields: list[SourceField], kinds: tuple[Kind, ...]) -> dict[Kind, dict[str, SourceField]]:
    """Greedy: the strongest (longest phrase) match first, one field per canonical column."""
    out: dict[Kind, dict[str, SourceField]] = {k: {} for k in kinds}
    candidates: list[tuple[int, str, int]] = []
    canonical = [c.name for k in kinds for c in COLUMNS[k] if c.name != "patient_id"]
    for name in dict.fromkeys(canonical):
        for i, source in enumerate(fields):
            score = _score(name, source)
            if score:
                candidates.append((score, name, i))
    used_fields: set[int] = set()
    done: set[str] = set()
    id_field = max(range(len(fields)), key=lambda i: _score("patient_id", fields[i]), default=None)
    if id_field is not None and _score("patient_id", fields[id_field]):
        used_fields.add(id_field)
        for k in kinds:
            out[k]["patient_id"] = fields[id_field]
    for _score_value, name, i in sorted(candidates, key=lambda c: (-c[0], c[1], c[2])):
        if name in done or i in used_fields:
            continue
        done.add(name)
        used_fields.add(i)
        for k in kinds:
            if any(c.name == name for c in COLUMNS[k]):
                out[k][name] = fields[i]
    return out


def _unit(canonical: str, source: SourceField) -> str | None:
    known = UNITS.get(canonical)
    if not known or canonical == "age_at_infusion_years":
        return None
    text = source.label + " " + source.name
    for part in re.findall(r"\(([^)]*)\)", text) + text.split():
        unit = normalise_unit(part)
        for name in known:
            if unit == name or unit.startswith(name):
                return part.strip() if unit == name else name
    if canonical.endswith("_fraction"):
        return (
            "%"
            if ("%" in text or "pct" in text.lower() or "percent" in text.lower())
            else "fraction"
        )
    return None


def _code_for(label: str, codes: tuple[str, ...]) -> str | None:
    key = _key(label)
    for code in codes:
        if key == _key(code) or key in CODE_WORDS.get(code, ()):
            return code
    for code in codes:
        if any(key.startswith(w) for w in CODE_WORDS.get(code, ()) if len(w) > 3):
            return code
    return None


def _q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def render(draft: Draft, *, title: str) -> str:
    """The draft as profile TOML: every guess marked `review = true`, every gap commented."""
    lines = [
        f"# Draft profile from {title}: made by `ltfu profile draft`.",
        "# Every mapping below is a GUESS marked review = true: check each one with",
        "# `ltfu profile check PROFILE FILE`, correct it, and delete the review mark.",
        "# ltfu refuses to ingest with a profile that still has a review mark. Format: docs/profiles.md",
        f"name = {_q('draft: ' + title)}",
        f"layout = {_q(draft.layout)}",
    ]
    if draft.kind:
        lines.append(f"kind = {_q(draft.kind)}")
    lines += ['date_format = "ISO"', 'not_detected = ["neg", "negative", "not detected", "<0.01%"]']
    used: set[str] = set()
    for kind, guesses in draft.guesses.items():
        lines += ["", f"[{kind}]"]
        for spec in COLUMNS[kind]:
            source = guesses.get(spec.name)
            if source is None:
                lines.append(
                    f"# {spec.name} = ?   (no field found{'; REQUIRED' if spec.required else ''})"
                )
                continue
            used.add(source.name)
            parts = []
            notes = []
            if source.field_type == "checkbox":
                parts.append(f"checkbox = {_q(source.name)}")
            else:
                parts.append(f"source = {_q(source.name)}")
            if spec.type == "code" and source.choices:
                mapped = []
                for code, label in source.choices:
                    target = _code_for(label, spec.codes) or _code_for(code, spec.codes)
                    if target is None:
                        notes.append(f"no code guessed for choice {code} '{label}'")
                        continue
                    mapped.append(f"{_q(code)} = {_q(target)}")
                    if source.field_type != "checkbox":
                        mapped.append(f"{_q(label)} = {_q(target)}")
                parts.append("codes = { " + ", ".join(mapped) + " }")
                if source.field_type == "checkbox" and "combined" in spec.codes:
                    parts.append('several = "combined"')
            elif spec.type == "text" and source.choices:
                mapped = [f"{_q(code)} = {_q(label)}" for code, label in source.choices]
                mapped += [f"{_q(label)} = {_q(label)}" for _code, label in source.choices]
                parts.append("codes = { " + ", ".join(mapped) + " }")
            unit = _unit(spec.name, source) if spec.type == "number" else None
            if unit:
                parts.append(f"unit = {_q(unit)}")
            parts.append("review = true")
            label = f"  # {source.label}" if source.label else ""
            lines.append(f"{spec.name} = {{ {', '.join(parts)} }}{label}")
            lines += [f"#   ^ {note}" for note in notes]
    unused = [
        f.name
        for f in draft.fields
        if f.name not in used and not (draft.layout == "redcap" and REDCAP_SYSTEM.match(f.name))
    ]
    if unused:
        lines += [
            "",
            "# Source fields not mapped (ignored with a warning unless listed in `ignore`):",
        ]
        lines += [f"#   {name}" for name in unused]
    return "\n".join(lines) + "\n"


def draft_from_dictionary(frame: pl.DataFrame, *, title: str) -> str:
    fields = fields_from_dictionary(frame)
    fields.insert(1, SourceField("redcap_data_access_group", "Data access group (site)"))
    kinds: tuple[Kind, ...] = ("patients", "visits")
    return render(Draft("redcap", None, fields, guess(fields, kinds)), title=title)


def draft_from_header(raw: RawTable) -> str:
    header = [c for c in raw.frame.columns if c != ROW_COLUMN]
    checkbox = {c.split("___")[0] for c in header if "___" in c}
    fields = [SourceField(c) for c in header if "___" not in c]
    fields += [SourceField(c, field_type="checkbox") for c in sorted(checkbox)]
    is_redcap = "redcap_event_name" in header or bool(checkbox)
    if is_redcap:
        kinds: tuple[Kind, ...] = ("patients", "visits")
        return render(Draft("redcap", None, fields, guess(fields, kinds)), title=raw.name)
    found = guess(fields, ("patients", "visits"))
    kind: Kind = "visits" if "visit_date" in found["visits"] else "patients"
    return render(Draft("table", kind, fields, {kind: found[kind]}), title=raw.name)


def draft_profile(raw: RawTable) -> str:
    """A REDCap data dictionary or any export's header → draft profile TOML."""
    if DICTIONARY_FIELD.lower() in [c.lower() for c in raw.frame.columns]:
        return draft_from_dictionary(raw.frame.drop(ROW_COLUMN), title=raw.name)
    return draft_from_header(raw)


def check_rows(mapped: MappedFile, profile: Profile, rows: int = 3) -> pl.DataFrame:
    """What each source column becomes on the first rows: `source → canonical` per row."""
    out: list[dict[str, str | None]] = []
    source = mapped.source
    by_row = {int(r[ROW_COLUMN]): r for r in source.head(5000).iter_rows(named=True)}
    for kind, table in zip(profile.kinds(), mapped.tables, strict=True):
        head = table.frame.head(rows)
        for fm in profile.fields[kind]:
            entry: dict[str, str | None] = {
                "table": kind,
                "canonical": fm.canonical,
                "source": fm.label,
            }
            for i, record in enumerate(head.iter_rows(named=True)):
                row = int(record[ROW_COLUMN])
                value = record.get(fm.canonical)
                if mapped.patient_cells is not None and kind == "patients":
                    cell = mapped.patient_cells.filter(
                        (pl.col("patient_id") == record["patient_id"])
                        & (pl.col("column") == fm.canonical)
                    )
                    row = int(cell["row"][0]) if cell.height else row
                raw_value = None
                if fm.source:
                    raw_value = (by_row.get(row) or {}).get(fm.source)
                else:
                    ticked = [
                        c
                        for c in fm.source_columns(tuple(source.columns))
                        if str((by_row.get(row) or {}).get(c) or "").lower() in ("1", "checked")
                    ]
                    raw_value = ", ".join(ticked) or "(none ticked)"
                shown_raw = "(empty)" if raw_value is None else str(raw_value)
                shown = "(empty)" if value is None else str(value)
                entry[f"example {i + 1}"] = f"row {row}: {shown_raw} → {shown}"
            out.append(entry)
    return pl.DataFrame(out)
