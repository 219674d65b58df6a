"""The cohort report as one self-contained HTML page: inline CSS and inline SVG figures, no
script, no font, image or style from anywhere else (its Content-Security-Policy forbids them),
so it opens offline and Chromium prints it to PDF as it is.

Every text that comes from the data (sites, products, group and cause names) or from the
caller (the filters) is escaped with `html.escape` where it is written; numbers are formatted
here. The same `CohortReport` always gives the same bytes (no clock is read), so the command
line and the dashboard's button give the same file for the same data, date and filters.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from html import escape

import polars as pl

from monitoring import palette
from monitoring.cohort_report.content import (
    AlertBurden,
    CohortReport,
    Completeness,
    Composition,
    EndpointSection,
    Overview,
    Swimmer,
    tick_months,
)
from monitoring.cohort_report.svg import (
    Bar,
    Lane,
    Mark,
    StepSeries,
    bar_chart,
    step_chart,
    swimmer_chart,
)
from monitoring.cohort_views import CD19_CATEGORIES, cd19_category
from monitoring.config import DAYS_PER_MONTH
from monitoring.durability_results import GroupSummary, Landmark

TITLE = "Long-term follow-up report: CD19 CAR-T cohort"
CURVE_COLOUR = "#0072B2"
MAX_CENSOR_MARKS = 200  # beyond this the ticks merge into a thick line: none are drawn
# the report spells out what an antigen-escape relapse covers
CAUSE_LABELS = {
    **palette.CAUSE_LABELS,
    "relapse_antigen_escape": "Relapse, antigen escape (CD19-negative or lineage switch)",
}
CAUSE_COLOURS = palette.CAUSE_COLOURS
CD19_COLOURS = {category: palette.CD19_COLOURS[category] for category in CD19_CATEGORIES}
APLASIA, RECOVERY = "#56B4E9", "#E69F00"
SWIMMER_LEGEND = (
    ("span", APLASIA, "B-cell aplasia"),
    ("span", RECOVERY, "B-cell recovery"),
    ("circle", "#009E73", "CR/CRi"),
    ("diamond-open", "#1F2A36", "MRD detected"),
    *(("triangle", colour, f"Relapse, {category}") for category, colour in CD19_COLOURS.items()),
    ("square", "#000000", "Transplant"),
    ("cross", "#000000", "Death"),
)
SEVERITY_COLOURS = {
    "critical": "#D55E00",
    "high": "#E69F00",
    "medium": "#56B4E9",
    "data": "#999999",
}
ENDPOINT_NOTES = {  # CONTRACT §3, the report's options (no censoring at transplant)
    "os": "All infused, from infusion. Event: death. Censored at last contact.",
    "efs": "All infused, from infusion. Events: non-response (at day 0), relapse, death. "
    "Censored at last contact (not at transplant or new therapy: the registry convention).",
    "rfs": "Responders, from remission onset. Events: relapse or death. Censored at last contact "
    "(not at transplant or new therapy).",
    "bca": "Responders, from infusion. Events: B-cell recovery or relapse before transplant and "
    "new therapy. Without one: censored at the last B-cell assessment, transplant, new therapy "
    "or death.",
    "car": "Infused with at least one CAR result, from infusion. Event: loss of CAR persistence. "
    "Without one: censored at the last CAR result or transplant.",
    "cir": "Responders, from remission onset: cumulative incidence of relapse (Aalen–Johansen), "
    "death without relapse competing. Censored at last contact.",
}

CSS = """
@page { size: A4; margin: 14mm 13mm 16mm 13mm; }
* { box-sizing: border-box; }
body { font-family: Helvetica, Arial, sans-serif; font-size: 10.5pt; color: #1c2329;
       margin: 0 auto; max-width: 820px; padding: 16px; line-height: 1.35; }
h1 { font-size: 19pt; margin: 0 0 4px 0; }
h2 { font-size: 14pt; margin: 0 0 4px 0; border-bottom: 2px solid #0072B2; padding-bottom: 2px; }
h3 { font-size: 11pt; margin: 10px 0 4px 0; }
p { margin: 4px 0; }
.stamp { color: #5A6772; font-size: 8.5pt; }
.lead { color: #3b4650; }
section { margin: 18px 0 8px 0; break-inside: avoid; page-break-inside: avoid; }
section.newpage { break-before: page; page-break-before: always; }
.tiles { display: grid; grid-template-columns: repeat(4, 1fr); gap: 8px; margin: 8px 0; }
.tile { border: 1px solid #cfd6db; border-radius: 6px; padding: 6px 8px; }
.tile .label { font-size: 8.5pt; color: #5A6772; }
.tile .value { font-size: 17pt; font-weight: bold; }
.tile .note { font-size: 8pt; color: #5A6772; }
.grid2 { display: grid; grid-template-columns: 1fr 1fr; gap: 4px 18px; }
table { border-collapse: collapse; width: 100%; margin: 4px 0; font-size: 9pt; }
th, td { border-bottom: 1px solid #e3e7ea; padding: 2px 6px; text-align: left; }
th { background: #f2f4f6; font-weight: bold; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
ol.contents { columns: 2; font-size: 9.5pt; margin: 6px 0; }
svg { display: block; margin: 4px 0; }
"""
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def _ci(low: float | None, high: float | None) -> str:
    if low is None and high is None:
        return "–"
    low_text = "–" if low is None else f"{100 * low:.1f}"
    return f"{low_text} to {_pct(high)}"


def _months(days: float | None) -> str:
    return "–" if days is None else f"{days / DAYS_PER_MONTH:.1f}"


def _p(value: float | None) -> str:
    if value is None:
        return "–"
    return "< 0.0001" if value < 0.0001 else f"{value:.4f}"


def _cells(values: Iterable[str], numeric: Sequence[bool] = ()) -> str:
    out = []
    for i, value in enumerate(values):
        cls = ' class="n"' if i < len(numeric) and numeric[i] else ""
        out.append(f"<td{cls}>{escape(value)}</td>")
    return "<tr>" + "".join(out) + "</tr>"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], numeric: Sequence[bool]) -> str:
    head = "".join(
        f"<th{' class=' + chr(34) + 'n' + chr(34) if i < len(numeric) and numeric[i] else ''}>"
        f"{escape(h)}</th>"
        for i, h in enumerate(header)
    )
    body = "".join(_cells(row, numeric) for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _stamp(stamp: str) -> str:
    return f'<p class="stamp">{escape(stamp)}</p>'


def _group_name(group: str) -> str:
    return "All patients" if group == "all" else group


# ---- curves ---------------------------------------------------------------------------------
def _finite(value: object) -> float | None:
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def _series(
    rows: pl.DataFrame, label: str, colour: str, *, start: float, dashed: bool = False
) -> StepSeries:
    """A step curve from durability-table rows of one group (and cause): from `start` at
    month 0, 95 % limits carried forward where the table has none (as the page draws them)."""
    rows = rows.sort("time_days")
    times: list[float] = [0.0]
    values: list[float] = [start]
    band: list[tuple[float, float]] = [(start, start)]
    censored: list[tuple[float, float]] = []
    for row in rows.iter_rows(named=True):
        estimate = _finite(row["estimate"])
        if estimate is None:
            continue
        t = float(row["time_days"]) / DAYS_PER_MONTH
        low, high = _finite(row["ci_lower"]), _finite(row["ci_upper"])
        previous = band[-1]
        times.append(t)
        values.append(estimate)
        band.append(
            (
                low if low is not None else min(previous[0], estimate),
                high if high is not None else max(previous[1], estimate),
            )
        )
        if "cause" not in rows.columns and row["censored"] and t > 0:
            censored.append((t, estimate))
    return StepSeries(
        label=label,
        colour=colour,
        times=tuple(times),
        values=tuple(values),
        band=tuple(band),
        censored=tuple(censored) if len(censored) <= MAX_CENSOR_MARKS else (),
        dashed=dashed,
    )


def _km_label(group: GroupSummary) -> str:
    median = (
        "median not reached"
        if group.median_days is None
        else f"median {_months(group.median_days)} months"
    )
    return f"{_group_name(group.group)}: n = {group.n}, {group.events} events, {median}"


def _curve(section: EndpointSection) -> str:
    table = section.table
    series: list[StepSeries] = []
    if section.spec.competing_risks:
        events = {
            cause.cause: cause.events
            for group in section.summary.groups
            for cause in group.causes or ()
        }
        for cause in table["cause"].unique(maintain_order=True).to_list():
            if not events.get(cause, 0):
                continue  # a flat line at 0: the table below lists it
            rows = table.filter(pl.col("cause") == cause)
            label = f"{CAUSE_LABELS.get(cause, cause)}: {events.get(cause, 0)} events"
            series.append(
                _series(
                    rows,
                    label,
                    CAUSE_COLOURS.get(cause, "#56B4E9"),
                    start=0.0,
                    dashed=cause in ("death", "hsct"),
                )
            )
        y_title = "Cumulative incidence (%)"
        highest = max((hi for s in series for _lo, hi in s.band or ()), default=0.0)
        y_max = min(1.0, max(0.2, math.ceil(highest * 5 - 1e-9) / 5))
    else:
        for group in section.summary.groups:
            rows = table.filter(pl.col("group") == group.group)
            series.append(_series(rows, _km_label(group), CURVE_COLOUR, start=1.0))
        y_title = f"{section.title} (%)"
        y_max = 1.0
    return step_chart(
        series,
        ticks=section.ticks,
        x_title=section.x_title,
        y_title=y_title,
        at_risk=[(_group_name(r.group), r.counts) for r in section.at_risk],
        caption=section.stamp,
        y_max=y_max,
    )


# ---- sections -------------------------------------------------------------------------------
def _landmark_table(landmarks: Sequence[Landmark], extra: Sequence[Sequence[str]] = ()) -> str:
    """Landmarks across (6, 12, 24, 36, 60 months): estimate, 95 % limits, numbers at risk,
    then any `extra` rows (label first, one cell per landmark)."""
    header = ["", *(f"{lm.months} mo" for lm in landmarks)]
    rows: list[Sequence[str]] = [
        ["Estimate", *(_pct(lm.estimate) for lm in landmarks)],
        ["95 % CI", *(_ci(lm.ci_lower, lm.ci_upper) for lm in landmarks)],
        ["At risk", *("–" if lm.at_risk is None else str(lm.at_risk) for lm in landmarks)],
        *extra,
    ]
    return _table(header, rows, [False, *(True for _ in landmarks)])


def _km_summary(section: EndpointSection) -> str:
    parts = []
    for group in section.summary.groups:
        median = (
            "not reached"
            if group.median_days is None
            else f"{_months(group.median_days)} months (95 % CI {_months(group.median_ci_lower)}"
            f" to {_months(group.median_ci_upper)})"
        )
        parts.append(
            f"<p><b>{escape(_group_name(group.group))}</b>: n = {group.n}, events = "
            f"{group.events}, median {escape(median)}.</p>"
        )
        parts.append(_landmark_table(group.landmarks))
    return "".join(parts)


def _cir_summary(section: EndpointSection) -> str:
    parts = []
    for group in section.summary.groups:
        causes = ", ".join(
            f"{CAUSE_LABELS.get(c.cause, c.cause)} {c.events}" for c in group.causes or ()
        )
        parts.append(
            f"<p><b>{escape(_group_name(group.group))}</b>: n = {group.n}, relapses = "
            f"{group.events} (events: {escape(causes)}). Cumulative incidence of relapse (all "
            "relapses), then of each cause:</p>"
        )
        extra = [
            [
                f"{CAUSE_LABELS.get(cause.cause, cause.cause)} ({cause.events})",
                *(_pct(lm.estimate) for lm in cause.landmarks),
            ]
            for cause in group.causes or ()
            if cause.cause != "relapse"
        ]
        parts.append(_landmark_table(group.landmarks, extra))
    return "".join(parts)


def _endpoint(section: EndpointSection, anchor: str, note: str) -> str:
    summary = _cir_summary(section) if section.spec.competing_risks else _km_summary(section)
    if section.table.is_empty():
        body = "<p>No patient is in this endpoint's population as of the evaluation date.</p>"
        body += _stamp(section.stamp)
    else:
        body = _curve(section) + summary  # the figure carries the stamp
    return (
        f'<section id="{anchor}"><h2>{escape(section.title)}</h2>'
        f'<p class="lead">{escape(note)}</p>{body}</section>'
    )


def _tile(label: str, value: str, note: str = "") -> str:
    extra = f'<div class="note">{escape(note)}</div>' if note else ""
    return (
        f'<div class="tile"><div class="label">{escape(label)}</div>'
        f'<div class="value">{escape(value)}</div>{extra}</div>'
    )


def _composition(item: Composition) -> str:
    return (
        f"<div><h3>{escape(item.title)}</h3>"
        + _table(["", "Patients"], [[c.label, str(c.n)] for c in item.counts], [False, True])
        + "</div>"
    )


def _overview(overview: Overview, alerts: AlertBurden) -> str:
    t = overview.tiles
    fu = overview.median_followup_days
    rate = "–" if t.response_rate is None else f"{100 * t.response_rate:.0f} %"
    tiles = "".join(
        [
            _tile("Patients infused", str(t.infused)),
            _tile("Median follow-up", "–" if fu is None else f"{_months(fu)} mo", "reverse KM"),
            _tile("CR/CRi rate", rate, f"{t.responders} of {t.assessed}; {t.pending} pending"),
            _tile("In remission", str(t.in_remission), "responders alive without relapse"),
            _tile(
                "Relapses",
                str(t.relapses),
                " · ".join(f"{category} {count}" for category, count in t.relapse_cd19),
            ),
            _tile("Ongoing B-cell aplasia", str(t.aplasia), "in remission, no recovery or HSCT"),
            _tile("Deaths", str(t.deaths)),
            _tile(
                "Open alerts",
                str(overview.open_alerts),
                " · ".join(f"{s.severity} {s.open}" for s in alerts.by_severity),
            ),
        ]
    )
    composition = "".join(_composition(item) for item in overview.composition)
    return (
        '<section id="overview"><h2>Cohort overview</h2>'
        f'<div class="tiles">{tiles}</div>'
        f'<div class="grid2">{composition}</div>{_stamp(overview.stamp)}</section>'
    )


def _lane(row: dict[str, object], mrd_days: Sequence[float]) -> Lane:
    def month(column: str) -> float | None:
        value = _finite(row[column])
        return None if value is None else value / DAYS_PER_MONTH

    spans = tuple(
        (start, stop, colour)
        for start, stop, colour in (
            (month("aplasia_start"), month("aplasia_end"), APLASIA),
            (month("recovery_start"), month("recovery_end"), RECOVERY),
        )
        if start is not None and stop is not None and stop > start
    )
    marks: list[Mark] = []
    onset = month("remission_onset_day")
    if onset is not None:
        marks.append(Mark(onset, "circle", "#009E73"))
    marks.extend(Mark(day / DAYS_PER_MONTH, "diamond-open", "#1F2A36") for day in mrd_days)
    relapse = month("relapse_day")
    if relapse is not None:
        status = row["relapse_cd19_status"]
        colour = CD19_COLOURS[cd19_category(status if isinstance(status, str) else None)]
        marks.append(Mark(relapse, "triangle", colour))
    for column, shape in (("hsct_day", "square"), ("death_day", "cross")):
        at = month(column)
        if at is not None:
            marks.append(Mark(at, shape, "#000000"))
    return Lane(
        end=month("end_day") or 0.0,
        spans=spans,
        marks=tuple(marks),
        arrow=bool(row["in_follow_up"]),
    )


def _swimmer(swimmer: Swimmer) -> str:
    lanes = swimmer.lanes.sort("lane")
    mrd: dict[str, list[float]] = {}
    for patient_id, day in swimmer.mrd.iter_rows():
        mrd.setdefault(str(patient_id), []).append(float(day))
    drawn = [_lane(row, mrd.get(str(row["patient_id"]), [])) for row in lanes.iter_rows(named=True)]
    last = lanes["end_day"].max() if lanes.height else 0.0
    ticks = tick_months(float(last) if isinstance(last, int | float) else 0.0)
    shown = (
        f"The {lanes.height} most recently infused of {swimmer.total} patients. "
        if swimmer.total > lanes.height
        else ""
    )
    return (
        '<section id="swimmer" class="newpage"><h2>Swimmer plot</h2>'
        f'<p class="lead">{escape(shown)}One lane per patient from infusion to last contact '
        "(an arrow: alive and in follow-up); the longest follow-up at the top.</p>"
        + swimmer_chart(
            drawn,
            ticks=ticks,
            x_title="Months since infusion",
            legend=SWIMMER_LEGEND,
            caption=swimmer.stamp,
        )
        + "</section>"
    )


def _alerts(burden: AlertBurden) -> str:
    bars = bar_chart(
        [
            Bar(f"{s.severity}: open", s.open, SEVERITY_COLOURS.get(s.severity, "#999999"))
            for s in burden.by_severity
        ]
    )
    severity = _table(
        ["Severity", "Open", "Acknowledged", "All"],
        [
            [s.severity, str(s.open), str(s.acknowledged), str(s.open + s.acknowledged)]
            for s in burden.by_severity
        ],
        [False, True, True, True],
    )
    rules = _table(
        ["Rule", "Severity", "Alerts", "Open", "Patients", "Per patient-year"],
        [
            [
                r.title,
                r.severity,
                str(r.alerts),
                str(r.open),
                str(r.patients),
                "–" if r.per_patient_year is None else f"{r.per_patient_year:.3f}",
            ]
            for r in burden.by_rule
        ],
        [False, False, True, True, True, True],
    )
    return (
        '<section id="alerts"><h2>Alert burden</h2>'
        f'<p class="lead">{burden.total} alerts as of the evaluation date, {burden.open} open '
        "(rules: docs/alerts.md). Per patient-year: alerts ÷ years from infusion to the earlier "
        "of the evaluation date and last contact, summed over the cohort.</p>"
        f"{bars}{severity}<h3>By rule</h3>{rules}{_stamp(burden.stamp)}</section>"
    )


def _completeness(c: Completeness) -> str:
    missed = _table(
        ["Protocol window (days since infusion)", "Missed bone-marrow MRD"],
        [[m.window, str(m.missed)] for m in c.missed_mrd],
        [False, True],
    )
    return (
        '<section id="completeness"><h2>Data completeness</h2>'
        f"<p>Alive patients with a contact in the last 365 days: {c.contact_within_year} of "
        f"{c.alive}. Follow-up overdue (more than {c.overdue_days} days since last contact, "
        f"alive): {c.followup_overdue} patient(s).</p>"
        "<h3>Missed marrow MRD assessments by protocol window</h3>"
        "<p>A window counts once it has closed without a bone-marrow MRD result, before any "
        "relapse, transplant, new therapy or death (rule missed_mrd_assessment).</p>"
        f"{missed}{_stamp(c.stamp)}</section>"
    )


def render_html(report: CohortReport) -> str:
    """The whole report as one HTML document (UTF-8 text)."""
    endpoint_sections = [
        _endpoint(
            section,
            f"endpoint-{section.request.endpoint}",
            ENDPOINT_NOTES[section.request.endpoint],
        )
        for section in report.endpoints
    ]
    cd19 = _endpoint(
        report.cd19,
        "relapse-cd19",
        "Relapse split by the CD19 status of the relapse (CD19-positive, antigen escape, "
        "unknown); death without relapse competing.",
    )
    contents = "".join(
        f'<li><a href="#{anchor}">{escape(name)}</a></li>'
        for anchor, name in [
            ("overview", "Cohort overview"),
            ("swimmer", "Swimmer plot"),
            *((f"endpoint-{s.request.endpoint}", s.title) for s in report.endpoints),
            ("relapse-cd19", report.cd19.title),
            ("alerts", "Alert burden"),
            ("completeness", "Data completeness"),
        ]
    )
    body = "".join(
        [
            f"<header><h1>{escape(TITLE)}</h1>",
            f"<p><b>Cohort as of {escape(report.as_of.isoformat())}</b>. ",
            "Estimates are Kaplan–Meier (95 % limits log-log) and Aalen–Johansen cumulative "
            "incidence; the same numbers as <code>ltfu durability --summary</code>.</p>",
            _stamp(report.stamp),
            f'<ol class="contents">{contents}</ol></header>',
            _overview(report.overview, report.alerts),
            _swimmer(report.overview.swimmer),
            *endpoint_sections,
            cd19,
            _alerts(report.alerts),
            _completeness(report.completeness),
        ]
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(TITLE)} · {escape(report.as_of.isoformat())}</title>"
        f"<style>{CSS}</style></head><body>{body}</body></html>\n"
    )
