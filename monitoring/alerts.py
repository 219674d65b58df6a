"""The alert rules of CONTRACT.md §4: a registry of small rule functions → one alerts frame.

`ALERT_RULES` holds one `AlertRule` per contract rule, in contract order, each with its
severity, title, clinical rationale and evidence source (DOMAIN.md §1–§4, §10); `docs/alerts.md`
documents every one (a test checks it). `evaluate_alerts(patients, visits, as_of)` runs them all:

    alert_id      sha1(patient_id|rule|triggered_on) as 16 hex characters: the same alert gets
                  the same id in every run, process and re-upload (acknowledgements key on it)
    patient_id, rule, severity ("critical" | "high" | "medium" | "data")
    triggered_on  the date of the triggering visit (see each rule)
    day           days since infusion of triggered_on
    message       one plain clinical sentence with the triggering values
    evidence      JSON text: the values that triggered the alert

One alert per patient, rule and triggering date. Every rule is whole-column polars over the
visits (joins, shifts over visits sorted by patient and date), never a Python loop over visits;
only the alert ids are hashed in Python, one per alert.

Scope (CONTRACT.md §4), and the choices made where the contract is silent:
- MRD, B-cell and CAR rules look at visits from remission onset (inclusive) to strictly before
  the relapse date; `lineage_switch` and `antigen_escape` from onset up to and including it.
  Patients without remission onset (non-responders, response pending) get none of them.
- B-cell and CAR rules, and `mrd_with_aplasia` (a B-cell rule for the transplant scope), fire
  only on visits strictly before hsct_date: donor B cells are not loss of CAR function.
- `early_bcell_recovery` / `bcell_recovery` / `car_loss` use the §2 patient facts. One dated
  before remission onset fires on the onset date, and the triggering date's day decides the
  rule; one confirmed only at or after the relapse date fires nothing (revision 2).
- `mrd_with_aplasia`: the B-cell assessment it looks back to may predate remission onset (it is
  the supporting value, not the trigger) but must be on day 0 or later. One alert per episode:
  the episode runs over the in-scope visits with an MRD result, from the first qualifying one
  to the next one that does not qualify (revision 2).
- `hypogammaglobulinemia`: one alert per episode of native IgG (ivig_within_30d not true) below
  the limit; results after IVIG neither start nor end an episode (revision 2).
- `mrd_rising` compares consecutive in-scope results of one method in one sample (an unrecorded
  sample is a series of its own); a ratio of exactly 10 counts. When two methods rise on the
  same visit they make one alert listing both.
- Every threshold is compared with the relative tolerance of `monitoring.thresholds`.
- `physician_flag`: flags raised the same day for one patient make one alert (one id), with the
  highest severity and every note.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl

from monitoring.config import Config, get_config
from monitoring.outcomes import (
    NON_RESPONDER,
    EvaluationRows,
    bcell_assessed_expr,
    bcell_recovered_expr,
    evaluation_rows,
    flow_detected_expr,
    mrd_detected_expr,
    mrd_negative_expr,
    outcomes_of,
    with_patient_columns,
)
from monitoring.schemas import MRD_COLUMNS, polars_schema
from monitoring.severities import FLAG_SEVERITIES, SEVERITIES, Severity
from monitoring.thresholds import at_least, below

ALERT_COLUMNS: tuple[str, ...] = (
    "alert_id",
    "patient_id",
    "rule",
    "severity",
    "triggered_on",
    "day",
    "message",
    "evidence",
)
ALERT_SCHEMA: dict[str, pl.DataType] = {
    "alert_id": pl.String(),
    "patient_id": pl.String(),
    "rule": pl.String(),
    "severity": pl.String(),
    "triggered_on": pl.Date(),
    "day": pl.Int64(),
    "message": pl.String(),
    "evidence": pl.String(),
}
FLAG_COLUMNS: tuple[str, ...] = ("patient_id", "user_name", "severity", "note", "raised_on", "at")

_PID = "patient_id"
_MRD_METHODS: tuple[tuple[str, str], ...] = (
    ("flow", "mrd_flow_fraction"),
    ("NGS", "mrd_ngs_fraction"),
    ("PCR", "mrd_pcr_fraction"),
)
_NO_SAMPLE = 2**32 - 1  # the series code of results without a recorded sample


@dataclass(frozen=True)
class RuleInput:
    """What every rule function reads: the visits in evaluation scope and the patient facts."""

    visits: pl.LazyFrame  # visits <= as_of of infused patients, sorted, with day + scope columns
    outcomes: pl.LazyFrame  # derive_outcomes() as of the evaluation date
    as_of: date
    config: Config
    flags: pl.LazyFrame  # physician flags raised on or before as_of


@dataclass(frozen=True)
class Hits:
    """What a rule found: `rows`, a plan collected together with every other rule's; `shape`,
    which makes one row per alert of the collected rows: patient_id, triggered_on (and
    severity if the rule chooses one per alert, as physician_flag does) and the raw values its
    text is made of; and `text`, which makes message and evidence of those rows (in their
    order). The text is built only where alerts are shown (`with_text`): a count of open
    alerts, and the kept evaluation, need none of it."""

    rows: pl.LazyFrame
    shape: Callable[[pl.DataFrame], pl.DataFrame]
    text: Callable[[pl.DataFrame], pl.DataFrame]
    reads: tuple[str, ...]  # the raw values `text` reads (besides triggered_on)


RuleFunction = Callable[[RuleInput], Hits]


@dataclass(frozen=True)
class AlertRule:
    id: str
    severity: Severity | None  # None: chosen per alert (physician_flag)
    title: str
    trigger: str
    rationale: str
    evidence_source: str
    evaluate: RuleFunction


# ---- formatting helpers (whole-column) -----------------------------------------------------
def _num(expr: pl.Expr, digits: int = 1) -> pl.Expr:
    """2.40 → "2.4", 88.0 → "88" (a float's text has one trailing zero at most)."""
    return expr.round(digits).cast(pl.String).str.strip_suffix(".0")


# every power of ten a finite float can have, as superscript text: a lookup, not a per-row
# character replacement
_POWERS = pl.Series("power", range(-400, 401), dtype=pl.Int64)
_SUPERSCRIPTS = pl.Series(
    "superscript",
    [str(p).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")) for p in _POWERS],
    dtype=pl.String,
)


def _sci(expr: pl.Expr) -> pl.Expr:
    """A fraction as "3×10⁻⁵" (0 → "0 (not detected)")."""
    # only a positive fraction has a power of ten (log10(0) is -inf, which no integer holds)
    power = pl.when(expr > 0).then(expr.log10().floor())
    mantissa = (expr / pl.lit(10.0).pow(power)).round(1)
    carry = mantissa >= 10
    exponent = pl.when(carry).then(power + 1).otherwise(power).cast(pl.Int64)
    mantissa = pl.when(carry).then(mantissa / 10).otherwise(mantissa)
    superscript = exponent.replace_strict(_POWERS, _SUPERSCRIPTS, return_dtype=pl.String)
    return (
        pl.when(expr == 0)
        .then(pl.lit("0 (not detected)"))
        .otherwise(pl.concat_str(_num(mantissa), pl.lit("×10"), superscript))
    )


def _day_text(column: str = "day") -> pl.Expr:
    return pl.concat_str(pl.lit("day "), pl.col(column).cast(pl.String))


def _sample_text() -> pl.Expr:
    return (
        pl.when(pl.col("mrd_sample") == "BM")
        .then(pl.lit("marrow"))
        .when(pl.col("mrd_sample") == "PB")
        .then(pl.lit("blood"))
        .otherwise(pl.lit("unrecorded sample"))
    )


def _method_detected(label: str, value: pl.Expr, config: Config) -> pl.Expr:
    """One method's MRD detected (CONTRACT §2): flow at/above its threshold, NGS or PCR above 0."""
    return flow_detected_expr(value, config) if label == "flow" else value > 0


def _mrd_values_text(detected_only: bool = False, config: Config | None = None) -> pl.Expr:
    """Text like "flow 2×10⁻⁴, NGS 3×10⁻⁵" from the MRD columns present (or detected) at a visit."""
    cfg = config or get_config()
    parts = []
    for label, column in _MRD_METHODS:
        value = pl.col(column)
        keep = value.is_not_null()
        if detected_only:
            keep = keep & _method_detected(label, value, cfg)
        parts.append(
            pl.when(keep).then(pl.concat_str(pl.lit(label + " "), _sci(value))).otherwise(None)
        )
    return pl.concat_str(parts, separator=", ", ignore_nulls=True)


def _bcell_text(prefix: str = "") -> pl.Expr:
    """Text like "2.4 % of lymphocytes (88/µL)", "2.4 % of lymphocytes" or "88/µL"."""
    pct = pl.col(prefix + "bcell_pct_lymphocytes")
    per_ul = pl.col(prefix + "bcell_per_ul")
    pct_text = pl.concat_str(_num(pct, 2), pl.lit(" % of lymphocytes"))
    ul_text = pl.concat_str(_num(per_ul), pl.lit("/µL"))
    return (
        pl.when(pct.is_not_null() & per_ul.is_not_null())
        .then(pl.concat_str(pct_text, pl.lit(" ("), ul_text, pl.lit(")")))
        .when(pct.is_not_null())
        .then(pct_text)
        .otherwise(ul_text)
    )


def _evidence(**fields: pl.Expr | str) -> pl.Expr:
    exprs = [
        (pl.col(value) if isinstance(value, str) else value).alias(name)
        for name, value in fields.items()
    ]
    return pl.struct(exprs).struct.json_encode()


def _out(frame: pl.LazyFrame, message: pl.Expr, evidence: pl.Expr) -> Hits:
    """The hits of `frame` (one per row, triggered on its visit_date) with only the columns
    `message` and `evidence` read; both are built from those columns where alerts are shown."""
    read = {_PID, "visit_date", *message.meta.root_names(), *evidence.meta.root_names()}
    return Hits(
        frame.select(sorted(read)),
        lambda rows: rows.rename({"visit_date": "triggered_on"}),
        lambda rows: _text_columns(rows, message, evidence),
        tuple(sorted(read - {_PID, "visit_date"})),
    )


def _text_columns(rows: pl.DataFrame, message: pl.Expr, evidence: pl.Expr) -> pl.DataFrame:
    """message and evidence of a rule's alerts (`shape`d rows: the visit_date is the
    triggered_on)."""
    return rows.with_columns(visit_date=pl.col("triggered_on")).select(
        message.alias("message"), evidence.alias("evidence")
    )


def _previous_in(series: list[str], expr: pl.Expr) -> pl.Expr:
    """`expr` of the row before in the same series (null on a series' first row), for a frame
    whose series are contiguous and in date order: `expr.shift(1).over(series)` without the
    per-group window (a shift and a comparison of neighbours)."""
    same = pl.all_horizontal([pl.col(key) == pl.col(key).shift(1) for key in series])
    return pl.when(same).then(expr.shift(1))


# ---- scope ---------------------------------------------------------------------------------
def _from_onset() -> pl.Expr:
    return pl.col("remission_onset_date").is_not_null() & (
        pl.col("visit_date") >= pl.col("remission_onset_date")
    )


def _up_to_relapse() -> pl.Expr:
    """From remission onset up to and including the relapse date."""
    return _from_onset() & (
        pl.col("relapse_date").is_null() | (pl.col("visit_date") <= pl.col("relapse_date"))
    )


def _before_relapse() -> pl.Expr:
    """From remission onset to strictly before the relapse date (MRD, B-cell and CAR rules)."""
    return _from_onset() & (
        pl.col("relapse_date").is_null() | (pl.col("visit_date") < pl.col("relapse_date"))
    )


def _before_hsct(column: str = "visit_date") -> pl.Expr:
    return pl.col("hsct_date").is_null() | (pl.col(column) < pl.col("hsct_date"))


def _trigger_on_or_after_onset(first: str) -> pl.Expr:
    """A finding dated before remission onset fires on the onset date (CONTRACT §4 scope)."""
    return pl.max_horizontal(pl.col(first), pl.col("remission_onset_date"))


def _in_scope_finding(trigger: str, confirmed: str) -> pl.Expr:
    """A confirmed B-cell / CAR finding that may fire on `trigger`: the patient has a remission
    onset, the finding was confirmed strictly before relapse, and `trigger` is before hsct."""
    return (
        pl.col("remission_onset_date").is_not_null()
        & (pl.col("relapse_date").is_null() | (pl.col(confirmed) < pl.col("relapse_date")))
        & _before_hsct(trigger)
    )


# ---- the rules -----------------------------------------------------------------------------
def _relapse(r: RuleInput) -> Hits:
    hit = r.visits.filter(pl.col("visit_date") == pl.col("relapse_date"))
    cd19 = pl.col("cd19_status").fill_null("unknown")
    message = pl.concat_str(
        [
            pl.lit("Relapse on "),
            _day_text(),
            pl.concat_str(pl.lit(": marrow blasts "), _num(pl.col("bm_blasts_pct")), pl.lit(" %")),
            pl.concat_str(pl.lit(", site "), pl.col("relapse_site").str.replace("_", " ")),
            pl.concat_str(pl.lit(", CD19 "), cd19),
            pl.lit(": confirm CD19 status and lineage before salvage"),
        ],
        ignore_nulls=True,
    )
    evidence = _evidence(
        visit_date="visit_date",
        day="day",
        disease_status="disease_status",
        bm_blasts_pct="bm_blasts_pct",
        relapse_site="relapse_site",
        cd19_status="cd19_status",
    )
    return _out(hit, message, evidence)


def _lineage_switch(r: RuleInput) -> Hits:
    hit = r.visits.filter(_up_to_relapse() & (pl.col("cd19_status") == "lineage_switch"))
    message = pl.concat_str(
        [
            pl.lit("Lineage switch on "),
            _day_text(),
            pl.concat_str(pl.lit(" (marrow blasts "), _num(pl.col("bm_blasts_pct")), pl.lit(" %)")),
            pl.when(pl.col("kmt2a_rearranged")).then(pl.lit(", KMT2A-rearranged")),
            pl.lit(": CD19-directed therapy will not work; myeloid work-up needed"),
        ],
        ignore_nulls=True,
    )
    evidence = _evidence(
        visit_date="visit_date",
        day="day",
        cd19_status="cd19_status",
        disease_status="disease_status",
        bm_blasts_pct="bm_blasts_pct",
        kmt2a_rearranged="kmt2a_rearranged",
    )
    return _out(hit, message, evidence)


def _antigen_escape(r: RuleInput) -> Hits:
    is_relapse = (pl.col("visit_date") == pl.col("relapse_date")).fill_null(False)
    found = is_relapse | mrd_detected_expr(r.config)
    hit = r.visits.filter(
        _up_to_relapse() & found & pl.col("cd19_status").is_in(["negative", "dim", "partial"])
    ).with_columns(_is_relapse=is_relapse)
    message = pl.concat_str(
        pl.lit("CD19-"),
        pl.col("cd19_status"),
        pl.when(pl.col("_is_relapse"))
        .then(pl.lit(" relapse on "))
        .otherwise(
            pl.concat_str(
                pl.lit(" MRD ("),
                _mrd_values_text(True, r.config),
                pl.lit(", "),
                _sample_text(),
                pl.lit(") on "),
            )
        ),
        _day_text(),
        pl.lit(": CD19-directed therapy unlikely to work"),
    )
    evidence = _evidence(
        visit_date="visit_date",
        day="day",
        cd19_status="cd19_status",
        relapse="_is_relapse",
        disease_status="disease_status",
        bm_blasts_pct="bm_blasts_pct",
        mrd_sample="mrd_sample",
        mrd_flow_fraction="mrd_flow_fraction",
        mrd_ngs_fraction="mrd_ngs_fraction",
        mrd_pcr_fraction="mrd_pcr_fraction",
    )
    return _out(hit, message, evidence)


def _new_malignancy(r: RuleInput) -> Hits:
    hit = r.visits.filter(pl.col("new_malignancy").fill_null(False))
    message = pl.concat_str(
        pl.lit("New malignancy recorded on "),
        _day_text(),
        pl.lit(": reportable; ask the manufacturer to test the tumour for the CAR transgene"),
    )
    evidence = _evidence(
        visit_date="visit_date", day="day", new_malignancy="new_malignancy", comment="comment"
    )
    return _out(hit, message, evidence)


def _mrd_rising(r: RuleInput) -> Hits:
    cfg = r.config
    # consecutive results of one method in one sample (BM or PB; an unrecorded sample is its own
    # series): blood reads about a log lower than marrow, so a PB → BM pair is no rise.
    # Series: one integer per patient and sample (the sample's category code, an unrecorded
    # one its own), made contiguous once by a stable sort (dates stay in order); each method's
    # results are a filter of that, and the row before in the same series is the previous result
    sample = pl.col("mrd_sample").cast(pl.Categorical).to_physical().fill_null(_NO_SAMPLE)
    has_mrd = pl.any_horizontal([pl.col(c).is_not_null() for _, c in _MRD_METHODS])
    scoped = (
        r.visits.filter(_before_relapse() & has_mrd)
        .with_columns(_series=pl.col("_pidx").cast(pl.UInt64) * 2**32 + sample.cast(pl.UInt64))
        .sort("_series", maintain_order=True)
    )
    series = ["_series"]
    parts: list[pl.LazyFrame] = []
    for label, column in _MRD_METHODS:
        value = pl.col(column)
        detected = _method_detected(label, value, cfg)
        results = scoped.filter(value.is_not_null()).with_columns(
            previous_value=_previous_in(series, value),
            previous_date=_previous_in(series, pl.col("visit_date")),
            previous_day=_previous_in(series, pl.col("day")),
            previous_detected=_previous_in(series, detected),
        )
        # a ratio of exactly 10 counts: relative tolerance, never raw floats (0.00012 → 0.0012)
        hit = results.filter(
            detected
            & pl.col("previous_detected").fill_null(False)
            & at_least(value, pl.col("previous_value") * cfg.mrd_rising_factor)
        )
        parts.append(
            hit.select(
                _PID,
                "visit_date",
                "day",
                "mrd_sample",
                "previous_date",
                "previous_day",
                "previous_value",
                value.alias("value"),
                _method=pl.lit(label),
            )
        )
    value = pl.col("value")
    text = pl.concat_str(
        pl.col("_method"),
        pl.lit(" MRD rose from "),
        _sci(pl.col("previous_value")),
        pl.lit(" on "),
        _day_text("previous_day"),
        pl.lit(" to "),
        _sci(value),
        pl.lit(" on "),
        _day_text(),
        pl.lit(" (×"),
        _num(value / pl.col("previous_value")),
        pl.lit(", "),
        _sample_text(),
        pl.lit(")"),
    )
    result = pl.struct(
        pl.col("_method").alias("method"),
        pl.col("previous_date"),
        pl.col("previous_day"),
        pl.col("previous_value"),
        value,
        (value / pl.col("previous_value")).alias("ratio"),
    )
    message = pl.concat_str(pl.col("_text"), pl.lit(": molecular progression"))
    evidence = _evidence(
        visit_date="visit_date", day="day", mrd_sample="mrd_sample", results="_result"
    )

    # one alert per visit: the methods that rose on it, in method order (lists, one item per
    # method; named apart from other rules' columns of one value)
    each = ("_method", "previous_date", "previous_day", "previous_value", "value")

    def shape(rows: pl.DataFrame) -> pl.DataFrame:
        return (
            rows.group_by(_PID, "visit_date", maintain_order=True)
            .agg(
                pl.col("day").first(),
                pl.col("mrd_sample").first(),
                *[pl.col(c).alias(f"rising{c}") for c in each],
            )
            .rename({"visit_date": "triggered_on"})
        )

    lists = tuple(f"rising{c}" for c in each)

    def texts(rows: pl.DataFrame) -> pl.DataFrame:
        per_method = (
            rows.select("triggered_on", "day", "mrd_sample", *lists)  # of this rule only
            .with_row_index("_alert")
            .explode(lists)
            .rename({f"rising{c}": c for c in each})
            .with_columns(visit_date=pl.col("triggered_on"))
        )
        per_visit = (
            per_method.with_columns(_text=text, _result=result)
            .group_by("_alert", maintain_order=True)
            .agg(
                pl.col("visit_date").first(),
                pl.col("day").first(),
                pl.col("mrd_sample").first(),
                pl.col("_text").str.join("; "),
                pl.col("_result"),
            )
        )
        return per_visit.select(message.alias("message"), evidence.alias("evidence"))

    return Hits(pl.concat(parts), shape, texts, ("day", "mrd_sample", *lists))


def _mrd_early_positive(r: RuleInput) -> Hits:
    windows = r.config.mrd_early_windows
    in_window = pl.any_horizontal([pl.col("day").is_between(lo, hi) for lo, hi in windows])
    window_text = pl.lit(None, pl.String)
    for lo, hi in reversed(windows):
        window_text = (
            pl.when(pl.col("day").is_between(lo, hi))
            .then(pl.lit(f"day {lo}–{hi}"))
            .otherwise(window_text)
        )
    hit = r.visits.filter(
        _before_relapse() & (pl.col("mrd_sample") == "BM") & mrd_detected_expr(r.config) & in_window
    ).with_columns(_window=window_text)
    message = pl.concat_str(
        pl.lit("Bone-marrow MRD "),
        _mrd_values_text(True, r.config),
        pl.lit(" on "),
        _day_text(),
        pl.lit(" ("),
        pl.col("_window"),
        pl.lit(" window): strongest early predictor of relapse"),
    )
    evidence = _evidence(
        visit_date="visit_date",
        day="day",
        window="_window",
        mrd_sample="mrd_sample",
        mrd_flow_fraction="mrd_flow_fraction",
        mrd_ngs_fraction="mrd_ngs_fraction",
        mrd_pcr_fraction="mrd_pcr_fraction",
    )
    return _out(hit, message, evidence)


def _mrd_reemergence(r: RuleInput) -> Hits:
    cfg = r.config
    detected = mrd_detected_expr(cfg)
    negative = mrd_negative_expr(cfg)
    results = r.visits.filter(_before_relapse() & (detected | negative)).with_columns(
        _detected=detected,
        _previous_negative=(~detected).shift(1),
        previous_date=pl.col("visit_date").shift(1),
        previous_day=pl.col("day").shift(1),
        _same=(pl.col(_PID).shift(1) == pl.col(_PID)).fill_null(False),
    )
    hit = results.filter(pl.col("_same") & pl.col("_detected") & pl.col("_previous_negative"))
    # "NGS MRD 3×10⁻⁵", per detected method
    parts = []
    for label, column in _MRD_METHODS:
        value = pl.col(column)
        keep = _method_detected(label, value, cfg)
        parts.append(
            pl.when(keep.fill_null(False)).then(pl.concat_str(pl.lit(label + " MRD "), _sci(value)))
        )
    message = pl.concat_str(
        pl.concat_str(parts, separator=", ", ignore_nulls=True),
        pl.lit(" in "),
        _sample_text(),
        pl.lit(" on "),
        _day_text(),
        pl.lit(", after a negative result on "),
        _day_text("previous_day"),
        pl.lit(": molecular relapse"),
    )
    evidence = _evidence(
        visit_date="visit_date",
        day="day",
        mrd_sample="mrd_sample",
        mrd_flow_fraction="mrd_flow_fraction",
        mrd_ngs_fraction="mrd_ngs_fraction",
        mrd_pcr_fraction="mrd_pcr_fraction",
        previous_negative_date="previous_date",
        previous_negative_day="previous_day",
    )
    return _out(hit, message, evidence)


def _mrd_with_aplasia(r: RuleInput) -> Hits:
    cfg = r.config
    # every in-scope visit with an MRD result: a result that does not qualify ends an episode
    # both sides stay sorted by patient and date: join_asof needs `on` sorted within `by`
    has_mrd = pl.any_horizontal([pl.col(c).is_not_null() for c in MRD_COLUMNS])
    mrd = r.visits.filter(_before_relapse() & _before_hsct() & has_mrd)
    bcells = r.visits.filter(bcell_assessed_expr() & (pl.col("day") >= 0)).select(
        "_pidx",
        pl.col("visit_date").alias("bcell_date"),
        pl.col("day").alias("bcell_day"),
        pl.col("bcell_pct_lymphocytes").alias("b_pct"),
        pl.col("bcell_per_ul").alias("b_per_ul"),
        (~bcell_recovered_expr(cfg)).alias("_aplastic"),
    )
    joined = mrd.join_asof(
        bcells,
        left_on="visit_date",
        right_on="bcell_date",
        by="_pidx",
        strategy="backward",
        tolerance=timedelta(days=cfg.mrd_with_aplasia_lookback_days),
        check_sortedness=False,
    )
    qualifies = mrd_detected_expr(cfg) & pl.col("_aplastic").fill_null(False)
    # one alert per episode: a qualifying result whose previous MRD result did not qualify
    hit = joined.with_columns(_qualifies=qualifies).filter(
        pl.col("_qualifies") & ~_previous_in(["_pidx"], pl.col("_qualifies")).fill_null(False)
    )
    bcell_values = (
        pl.when(pl.col("b_pct").is_not_null() & pl.col("b_per_ul").is_not_null())
        .then(
            pl.concat_str(
                _num(pl.col("b_pct"), 2), pl.lit(" %, "), _num(pl.col("b_per_ul")), pl.lit("/µL")
            )
        )
        .when(pl.col("b_pct").is_not_null())
        .then(pl.concat_str(_num(pl.col("b_pct"), 2), pl.lit(" % of lymphocytes")))
        .otherwise(pl.concat_str(_num(pl.col("b_per_ul")), pl.lit("/µL")))
    )
    message = pl.concat_str(
        pl.lit("MRD "),
        _mrd_values_text(True, cfg),
        pl.lit(" in "),
        _sample_text(),
        pl.lit(" on "),
        _day_text(),
        pl.lit(" while B cells are still aplastic ("),
        bcell_values,
        pl.lit(" on "),
        _day_text("bcell_day"),
        pl.lit("): suspect CD19-negative escape"),
    )
    evidence = _evidence(
        visit_date="visit_date",
        day="day",
        mrd_sample="mrd_sample",
        mrd_flow_fraction="mrd_flow_fraction",
        mrd_ngs_fraction="mrd_ngs_fraction",
        mrd_pcr_fraction="mrd_pcr_fraction",
        bcell_date="bcell_date",
        bcell_day="bcell_day",
        bcell_pct_lymphocytes="b_pct",
        bcell_per_ul="b_per_ul",
    )
    return _out(hit, message, evidence)


def _before_onset_text(finding_day: str) -> pl.Expr:
    """ ", before remission onset on day 60" when the finding predates the onset, else ""."""
    return (
        pl.when(pl.col(finding_day) < pl.col("onset_day"))
        .then(pl.concat_str(pl.lit(", before remission onset on "), _day_text("onset_day")))
        .otherwise(pl.lit(""))
    )


def _bcell_recovery_alerts(r: RuleInput, first_day: int | None, last_day: int) -> Hits:
    # the triggering date's day (the recovery, or the later remission onset) decides the rule
    trigger_day = (pl.col("_trigger") - pl.col("infusion_date")).dt.total_days()
    window = trigger_day <= last_day
    if first_day is not None:
        window = window & (trigger_day >= first_day)
    facts = (
        r.outcomes.filter(pl.col("bcell_recovery_date").is_not_null())
        .with_columns(_trigger=_trigger_on_or_after_onset("bcell_recovery_date"))
        .filter(window & _in_scope_finding("_trigger", "bcell_recovery_confirmed_date"))
        .select(
            _PID,
            pl.col("bcell_recovery_date"),
            pl.col("bcell_recovery_day").alias("recovery_day"),
            pl.col("_trigger").alias("visit_date"),
            trigger_day.alias("day"),
            "bcell_recovery_confirmed_date",
            pl.col("bcell_recovery_confirmed_day").alias("confirmed_day"),
            pl.col("remission_onset_day").alias("onset_day"),
        )
    )
    # both dates are of B-cell assessments: only those visits are joined
    assessed = r.visits.filter(bcell_assessed_expr())
    values = assessed.select(
        _PID,
        pl.col("visit_date").alias("bcell_recovery_date"),
        "bcell_pct_lymphocytes",
        "bcell_per_ul",
    )
    confirmed = assessed.select(
        _PID,
        pl.col("visit_date").alias("bcell_recovery_confirmed_date"),
        pl.col("bcell_pct_lymphocytes").alias("c_bcell_pct_lymphocytes"),
        pl.col("bcell_per_ul").alias("c_bcell_per_ul"),
    )
    hit = facts.join(values, on=[_PID, "bcell_recovery_date"], how="left").join(
        confirmed, on=[_PID, "bcell_recovery_confirmed_date"], how="left"
    )
    meaning = (
        ": early loss of B-cell aplasia (loss of CAR function; CD19-positive relapse risk)"
        if first_day is None
        else ": loss of B-cell aplasia in the first year (relapse risk)"
    )
    message = pl.concat_str(
        pl.lit("B cells "),
        _bcell_text(),
        pl.lit(" on "),
        _day_text("recovery_day"),
        pl.lit(", confirmed on "),
        _day_text("confirmed_day"),
        pl.lit(" ("),
        _bcell_text("c_"),
        pl.lit(")"),
        _before_onset_text("recovery_day"),
        pl.lit(meaning),
    )
    evidence = _evidence(
        recovery_date="bcell_recovery_date",
        day="recovery_day",
        triggered_day="day",
        bcell_pct_lymphocytes="bcell_pct_lymphocytes",
        bcell_per_ul="bcell_per_ul",
        confirmed_date="bcell_recovery_confirmed_date",
        confirmed_day="confirmed_day",
        confirmed_bcell_pct_lymphocytes="c_bcell_pct_lymphocytes",
        confirmed_bcell_per_ul="c_bcell_per_ul",
    )
    return _out(hit, message, evidence)


def _early_bcell_recovery(r: RuleInput) -> Hits:
    return _bcell_recovery_alerts(r, None, r.config.early_bcell_recovery_last_day)


def _bcell_recovery(r: RuleInput) -> Hits:
    cfg = r.config
    return _bcell_recovery_alerts(
        r, cfg.early_bcell_recovery_last_day + 1, cfg.bcell_recovery_last_day
    )


def _car_loss(r: RuleInput) -> Hits:
    cfg = r.config
    facts = r.outcomes.filter(pl.col("car_loss_date").is_not_null()).select(_PID, "car_loss_date")
    # the loss run: the CAR results (day >= 0, before hsct) from the loss date on, first n
    run = (
        r.visits.filter(
            pl.col("car_copies_per_ug").is_not_null() & (pl.col("day") >= 0) & _before_hsct()
        )
        # the visits' order kept (by patient and date): the first n rows are the first n dates
        .join(facts, on=_PID, how="inner", maintain_order="left")
        .filter(pl.col("visit_date") >= pl.col("car_loss_date"))
        .group_by(_PID)
        .agg(
            pl.col("visit_date").head(cfg.car_loss_confirmations).alias("_dates"),
            pl.col("day").head(cfg.car_loss_confirmations).alias("_days"),
            pl.col("car_copies_per_ug").head(cfg.car_loss_confirmations).alias("_copies"),
        )
        .with_columns(
            loss_date=pl.col("_dates").list.first(),
            loss_day=pl.col("_days").list.first(),
            confirmed_date=pl.col("_dates").list.last(),
            confirmed_day=pl.col("_days").list.last(),
        )
        .join(
            r.outcomes.select(
                _PID,
                "infusion_date",
                "remission_onset_date",
                pl.col("remission_onset_day").alias("onset_day"),
                "relapse_date",
                "hsct_date",
            ),
            on=_PID,
            how="left",
        )
        # a loss dated before remission onset fires on the onset date; its day decides
        .with_columns(visit_date=_trigger_on_or_after_onset("loss_date"))
        .with_columns(day=(pl.col("visit_date") - pl.col("infusion_date")).dt.total_days())
        .filter(
            _in_scope_finding("visit_date", "confirmed_date")
            & (pl.col("day") <= cfg.car_loss_last_day)
        )
    )
    copies_text = (
        pl.col("_copies")
        .list.eval(
            pl.when(pl.element() == 0)
            .then(pl.lit("0 (not detected)"))
            .otherwise(_num(pl.element()))
        )
        .list.join(", then ")
    )
    message = pl.concat_str(
        pl.lit("CAR transgene "),
        copies_text,
        pl.lit(" copies/µg from "),
        _day_text("loss_day"),
        pl.lit(" to "),
        _day_text("confirmed_day"),
        pl.lit(f" (below {_plain(cfg.car_loss_copies_per_ug)} copies/µg)"),
        _before_onset_text("loss_day"),
        pl.lit(": loss of CAR persistence"),
    )
    evidence = _evidence(
        loss_date="loss_date",
        day="loss_day",
        triggered_day="day",
        confirmed_date="confirmed_date",
        confirmed_day="confirmed_day",
        result_dates="_dates",
        car_copies_per_ug="_copies",
    )
    return _out(run, message, evidence)


def _hypogammaglobulinemia(r: RuleInput) -> Hits:
    limit = r.config.hypogammaglobulinemia_igg_mg_dl
    # native IgG results only (IgG within 30 days of IVIG neither starts nor ends an episode);
    # one alert per episode: a low result whose previous native result was not low
    low = below(pl.col("igg_mg_dl"), limit)
    hit = (
        r.visits.filter(
            pl.col("igg_mg_dl").is_not_null() & ~pl.col("ivig_within_30d").fill_null(False)
        )
        .with_columns(_low=low)
        .filter(pl.col("_low") & ~_previous_in(["_pidx"], pl.col("_low")).fill_null(False))
    )
    message = pl.concat_str(
        pl.lit("IgG "),
        _num(pl.col("igg_mg_dl")),
        pl.lit(" mg/dL on "),
        _day_text(),
        pl.lit(f" (below {_plain(limit)}), no immunoglobulin replacement "),
        pl.when(pl.col("ivig_within_30d").is_null())
        .then(pl.lit("recorded in the 30 days before"))
        .otherwise(pl.lit("in the 30 days before")),
        pl.lit(": consider IgG replacement"),
    )
    evidence = _evidence(
        visit_date="visit_date", day="day", igg_mg_dl="igg_mg_dl", ivig_within_30d="ivig_within_30d"
    )
    return _out(hit, message, evidence)


def _missed_mrd_assessment(r: RuleInput) -> Hits:
    def before(column: str) -> pl.Expr:
        return pl.col(column).is_null() | (pl.col("visit_date") < pl.col(column))

    eligible = r.outcomes.filter(
        pl.col("death_date").is_null() & (pl.col("response") != NON_RESPONDER)
    )
    bm_results = r.visits.filter(
        (pl.col("mrd_sample") == "BM")
        & pl.any_horizontal([pl.col(c).is_not_null() for _, c in _MRD_METHODS])
    ).select(_PID, "day")
    # one window at a time: its closed windows without a marrow result in it
    parts = []
    for start, end in r.config.mrd_assessment_windows:
        closed = eligible.with_columns(
            visit_date=pl.col("infusion_date") + pl.duration(days=end),
            window_start_day=pl.lit(start, pl.Int64),
            window_end_day=pl.lit(end, pl.Int64),
        ).filter(
            (pl.col("visit_date") < pl.lit(r.as_of))
            & before("relapse_date")
            & before("hsct_date")
            & before("new_therapy_date")
        )
        done = bm_results.filter(pl.col("day").is_between(start, end)).select(_PID)
        parts.append(closed.join(done, on=_PID, how="anti"))
    if not parts:  # no windows configured: none missed
        never = pl.lit(0, pl.Int64)
        parts.append(
            eligible.head(0).with_columns(
                visit_date="infusion_date", window_start_day=never, window_end_day=never
            )
        )
    hit = pl.concat(parts).with_columns(day=pl.col("window_end_day"))
    message = pl.concat_str(
        pl.lit("No bone-marrow MRD result in the day "),
        pl.col("window_start_day").cast(pl.String),
        pl.lit("–"),
        pl.col("window_end_day").cast(pl.String),
        pl.lit(" window (closed "),
        pl.col("visit_date").cast(pl.String),
        pl.lit("): record the result or the reason it was not done"),
    )
    evidence = _evidence(
        window_start_day="window_start_day",
        window_end_day="window_end_day",
        window_end_date="visit_date",
        response="response",
    )
    return _out(hit, message, evidence)


def _followup_overdue(r: RuleInput) -> Hits:
    gap = (pl.lit(r.as_of) - pl.col("last_contact_date")).dt.total_days()
    hit = r.outcomes.filter(
        pl.col("death_date").is_null() & (gap > r.config.followup_overdue_days)
    ).with_columns(visit_date=pl.col("last_contact_date"), day=pl.col("last_contact_day"), _gap=gap)
    message = pl.concat_str(
        pl.lit("No contact since "),
        _day_text(),
        pl.lit(" ("),
        pl.col("visit_date").cast(pl.String),
        pl.lit("): "),
        pl.col("_gap").cast(pl.String),
        pl.lit(
            f" days by {r.as_of.isoformat()}, over the {r.config.followup_overdue_days}-day "
            "yearly follow-up window; contact the family or record vital status"
        ),
    )
    evidence = _evidence(
        last_contact_date="visit_date",
        day="day",
        days_without_contact="_gap",
        evaluated_on=pl.lit(r.as_of),
    )
    return _out(hit, message, evidence)


def _physician_flag(r: RuleInput) -> Hits:
    rank = pl.col("severity").replace_strict(
        {s: i for i, s in enumerate(SEVERITIES)}, default=len(SEVERITIES), return_dtype=pl.Int64
    )
    grouped = (
        r.flags.join(r.outcomes.select(_PID), on=_PID, how="inner")
        .sort(_PID, "raised_on", "at")
        .with_columns(_rank=rank)
        .group_by(_PID, "raised_on", maintain_order=True)
        .agg(
            pl.col("_rank").min(),
            pl.concat_str(
                pl.lit("Flagged by "),
                pl.col("user_name"),
                pl.lit(" ("),
                pl.col("severity"),
                pl.lit("): "),
                pl.col("note"),
            )
            .str.join("; ")
            .alias("_text"),
            pl.struct("user_name", "severity", "note", "at").alias("flags"),
        )
    )
    alerts = grouped.select(
        _PID,
        pl.col("raised_on").alias("triggered_on"),
        pl.col("_text").alias("message"),
        _evidence(raised_on="raised_on", flags="flags").alias("evidence"),
        pl.col("_rank")
        .replace_strict(dict(enumerate(SEVERITIES)), return_dtype=pl.String)
        .alias("severity"),
    )
    # few: the text is built in the plan, and kept as the raw values of the alert
    return Hits(
        alerts,
        lambda rows: rows,
        lambda rows: rows.select("message", "evidence"),
        ("message", "evidence"),
    )


def _plain(value: float) -> str:
    return f"{value:g}"


# ---- the registry --------------------------------------------------------------------------
ALERT_RULES: tuple[AlertRule, ...] = (
    AlertRule(
        "relapse",
        "critical",
        "Relapse",
        "the relapse visit of CONTRACT §2: the first visit after remission onset with "
        "disease_status relapse or marrow blasts ≥ 5 %",
        "Treatment failure: salvage depends on CD19 status and lineage, so both need work-up "
        "now. Median overall survival after post-CAR-T relapse is 11.9 months.",
        "Lamble et al., Blood Adv 2023;7:575 (n=420); DOMAIN.md §4.1, §10 A1",
        _relapse,
    ),
    AlertRule(
        "lineage_switch",
        "critical",
        "Lineage switch",
        "a visit from remission onset up to relapse with cd19_status lineage_switch",
        "Myeloid lineage switch (mostly KMT2A-rearranged) makes CD19-directed salvage useless; "
        "there were no long-term survivors after lineage switch.",
        "Lamble et al., Blood Adv 2023;7:575; Leahy et al., Blood 2022;139:2173; "
        "DOMAIN.md §4.2, §10 A2",
        _lineage_switch,
    ),
    AlertRule(
        "antigen_escape",
        "critical",
        "CD19 antigen escape",
        "a visit from remission onset up to relapse where leukemia is found (relapse or MRD "
        "detected) with cd19_status negative, dim or partial",
        "CD19-negative or CD19-dim leukemia escapes CD19 CAR-T: CD19-directed therapy is "
        "unlikely to work; choose a non-CD19 target (CD22) or transplant.",
        "Pulsipher et al., Blood Cancer Discov 2022;3:66 (23/25 relapses during aplasia CD19-); "
        "Blood Adv 2019;3:3539; Lamble 2023 (41 % of relapses CD19-); DOMAIN.md §4.1–4.2",
        _antigen_escape,
    ),
    AlertRule(
        "new_malignancy",
        "critical",
        "New malignancy",
        "any visit with new_malignancy true",
        "Second malignancies, T-cell lymphomas above all, are reportable after CAR-T: the FDA "
        "boxed warning asks for lifelong monitoring and CAR-transgene testing of the tumour.",
        "FDA class-wide boxed warning, January 2024; FDA LTFU guidance 2020; DOMAIN.md §7, §10 A17",
        _new_malignancy,
    ),
    AlertRule(
        "mrd_rising",
        "critical",
        "Rising MRD",
        "MRD detected by the same method in the same sample (BM or PB) on two consecutive "
        "results of that method and sample, the later at least 10 × the earlier (fires on the "
        "later); a ratio of exactly 10 counts",
        "A ten-fold rise of detectable MRD is molecular progression heading for morphologic "
        "relapse; time to plan transplant or another therapy.",
        "Pulsipher et al., Blood Cancer Discov 2022;3:66 (month-3 NGS-MRD HR 12); "
        "DOMAIN.md §1.5, §10 A4",
        _mrd_rising,
    ),
    AlertRule(
        "mrd_early_positive",
        "high",
        "MRD positive at day 28 or month 3",
        "bone-marrow MRD detected on day 21–35 or day 76–104",
        "Detectable marrow MRD at day 28 or month 3 is the strongest early predictor of "
        "relapse after tisagenlecleucel (HR 4.87 at day 28, HR 12 at month 3).",
        "Pulsipher et al., Blood Cancer Discov 2022;3:66; ELIANA (95 % MRD-negative by day 28); "
        "DOMAIN.md §1.3–1.5, §10 A3–A5",
        _mrd_early_positive,
    ),
    AlertRule(
        "mrd_reemergence",
        "high",
        "MRD re-emergence",
        "the first MRD-detected result after an MRD-negative result (each negative → detected "
        "transition)",
        "Conversion from MRD-negative to MRD-positive is molecular relapse and precedes "
        "morphologic relapse; repeat within 2–4 weeks and plan treatment.",
        "Pulsipher et al., Blood Cancer Discov 2022;3:66; DOMAIN.md §4.1, §10 A6",
        _mrd_reemergence,
    ),
    AlertRule(
        "mrd_with_aplasia",
        "high",
        "MRD during B-cell aplasia",
        "the first visit of each episode of MRD detected while the latest B-cell assessment on "
        "that day or in the 30 days before (from day 0 on) is below the recovery thresholds; "
        "the episode ends at the next visit with an MRD result that does not qualify",
        "Leukemia that grows while CAR-T still keeps B cells away is mostly CD19-negative: "
        "suspect antigen escape and plan non-CD19 salvage.",
        "Pulsipher et al., Blood Cancer Discov 2022;3:66 (88 % of relapses during aplasia "
        "CD19-); Blood Adv 2019;3:3539; DOMAIN.md §2.3, §10 A7",
        _mrd_with_aplasia,
    ),
    AlertRule(
        "early_bcell_recovery",
        "high",
        "Early B-cell recovery",
        "B-cell recovery (CONTRACT §2) dated on or before day 183; fires on the recovery date, "
        "or on the remission onset date when the recovery is dated before it",
        "B-cell recovery within 6 months means loss of functional CAR-T cells and a raised "
        "CD19-positive relapse risk (HR 3.33 at day 28, 4.5 in year 1): consider reinfusion, "
        "transplant or maintenance.",
        "Pulsipher et al., Blood Cancer Discov 2022;3:66; Mueller et al., Clin Cancer Res "
        "2018;24:6175; CHOP reinfusion series, Blood Adv 2024;8:2182; DOMAIN.md §2.3, §10 A8",
        _early_bcell_recovery,
    ),
    AlertRule(
        "bcell_recovery",
        "medium",
        "B-cell recovery in the first year",
        "B-cell recovery dated day 184–365",
        "B-cell recovery in the first year still raises relapse risk (HR 4.5).",
        "Pulsipher et al., Blood Cancer Discov 2022;3:66; DOMAIN.md §2.3, §10 A10",
        _bcell_recovery,
    ),
    AlertRule(
        "car_loss",
        "medium",
        "Loss of CAR persistence",
        "loss of CAR persistence (CONTRACT §2) dated on or before day 365; one dated before "
        "remission onset fires on the onset date",
        "Early loss of the CAR transgene goes with early B-cell recovery and CD19-positive "
        "relapse; check B cells and marrow MRD.",
        "Mueller et al., Clin Cancer Res 2018;24:6175 (qPCR LLOQ about 50 copies/µg); "
        "DOMAIN.md §3, §10 A12",
        _car_loss,
    ),
    AlertRule(
        "hypogammaglobulinemia",
        "medium",
        "Hypogammaglobulinemia",
        "the first IgG result of each episode: an episode starts at igg_mg_dl < 400 with "
        "ivig_within_30d not true and ends at the next IgG ≥ 400 with ivig_within_30d not true; "
        "results with ivig_within_30d true neither start nor end one",
        "Native IgG below 400 mg/dL carries infection risk and meets IgG-replacement "
        "criteria; IgG within 30 days of IVIG is not native and does not count.",
        "Hill et al. 2019 and AAAAI 2022 criteria (PMC11272770); CIBMTR 2100 manual (IVIG in "
        "the prior 30 days); DOMAIN.md §2.4, §10 A15",
        _hypogammaglobulinemia,
    ),
    AlertRule(
        "missed_mrd_assessment",
        "data",
        "Missed marrow MRD assessment",
        "a closed window (day 21–35, 76–104, 152–213, 244–305, 335–395) without a bone-marrow "
        "MRD result; triggered on the window's last day",
        "Marrow MRD at day 28 and month 3 is the strongest relapse predictor; a missing "
        "protocol assessment leaves the patient unmonitored.",
        "Pulsipher et al., Blood Cancer Discov 2022;3:66; monitoring schedule DOMAIN.md §1.4; "
        "DOMAIN.md §10 A20",
        _missed_mrd_assessment,
    ),
    AlertRule(
        "followup_overdue",
        "data",
        "Follow-up overdue",
        "more than 425 days between the last contact and the evaluation date, patient not "
        "known dead; triggered on the last contact date",
        "Genetically modified cell therapy needs 15 years of yearly follow-up; the CIBMTR "
        "yearly contact window closes at day 425.",
        "FDA LTFU guidance 2020 (15 years); CIBMTR form 4100 (day 365–425 window); "
        "DOMAIN.md §7, §10 A19",
        _followup_overdue,
    ),
    AlertRule(
        "physician_flag",
        None,
        "Physician flag",
        "a physician flags the patient by hand, with a severity (critical, high or medium) and "
        "a note; triggered on the day it is raised",
        "Clinical concern that the data do not capture (symptoms, outside results, family "
        "contact) joins the same queue and is acknowledged like any alert.",
        "CONTRACT.md §4 (physician flags); DOMAIN.md §10 severity scale",
        _physician_flag,
    ),
)

RULES_BY_ID: dict[str, AlertRule] = {rule.id: rule for rule in ALERT_RULES}


# ---- evaluation ----------------------------------------------------------------------------
def alert_id(patient_id: str, rule: str, triggered_on: date) -> str:
    """sha1 of `patient_id|rule|YYYY-MM-DD`, first 16 hex characters."""
    key = f"{patient_id}|{rule}|{triggered_on.isoformat()}"
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]


def _alert_ids(alerts: pl.DataFrame) -> pl.Series:
    """`alert_id` for every row: one sha1 per alert (the only per-row Python work)."""
    keys = alerts.select(
        pl.concat_str(
            "patient_id", "rule", pl.col("triggered_on").dt.strftime("%Y-%m-%d"), separator="|"
        )
    ).to_series()
    sha1 = hashlib.sha1
    return pl.Series(
        "alert_id", [sha1(k.encode("utf-8")).hexdigest()[:16] for k in keys], dtype=pl.String
    )


def empty_alerts() -> pl.DataFrame:
    return pl.DataFrame(schema=ALERT_SCHEMA)


def empty_flags() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "patient_id": pl.String(),
            "user_name": pl.String(),
            "severity": pl.String(),
            "note": pl.String(),
            "raised_on": pl.Date(),
            "at": pl.String(),
        }
    )


def severity_rank() -> pl.Expr:
    """0 for critical … 3 for data (sort key)."""
    return pl.col("severity").replace_strict(
        {s: i for i, s in enumerate(SEVERITIES)}, default=len(SEVERITIES), return_dtype=pl.Int64
    )


def evaluate_alerts(
    patients: pl.DataFrame | pl.LazyFrame,
    visits: pl.DataFrame | pl.LazyFrame,
    as_of: date | None = None,
    config: Config | None = None,
    outcomes: pl.DataFrame | None = None,
    *,
    flags: pl.DataFrame | None = None,
    rules: Sequence[AlertRule] = ALERT_RULES,
    rows: EvaluationRows | None = None,
    kept: bool = False,
    text: bool = True,
) -> pl.DataFrame:
    """Every alert of `rules` as of `as_of` (default today); columns `ALERT_COLUMNS`.

    `outcomes` may be passed when already derived for the same `as_of` and `config`, and
    `rows` when `evaluation_rows(patients, visits, as_of)` already prepared them.
    `flags` (the store's `flags` table) adds the physician flags raised on or before `as_of`.
    Sorted by severity (critical first), triggered_on, patient_id, rule.
    `kept`: the alerts as kept: `HIT_COLUMNS`, `TEXTED`, and message and evidence (sorted), or
    with `text` False each rule's raw values instead (in no particular order: for a count);
    `with_text` makes the alerts of either.
    """
    cfg = config or get_config()
    as_of = as_of or date.today()
    prepared = rows if rows is not None else evaluation_rows(patients, visits, as_of)
    facts = outcomes if outcomes is not None else outcomes_of(prepared, as_of, cfg)
    # the visits in evaluation scope: those by as_of of the patients of `facts`, sorted by
    # patient and date, with the patient's context (the old inner join on patient_id)
    context = ["kmt2a_rearranged", "remission_onset_date", "relapse_date"]
    joined = with_patient_columns(prepared.visits, facts, context)
    scoped_visits = joined.select(
        *polars_schema("visits"),
        "infusion_date",
        *context,
        "hsct_date",
        "day",
        # the patient as a number in patient order: a cheap key for sorts, windows and as-of
        # joins
        _pidx=pl.col(_PID).ne_missing(pl.col(_PID).shift(1)).cast(pl.UInt32).cum_sum(),
    )
    flag_frame = flags if flags is not None else empty_flags()
    rule_input = RuleInput(
        visits=scoped_visits.lazy(),
        outcomes=facts.lazy(),
        as_of=as_of,
        config=cfg,
        flags=_flags_as_of(flag_frame, as_of),
    )
    hits = _assemble(rules, rule_input, facts, text=text or not kept)
    return hits if kept else with_text(hits, as_of, cfg)


def _flags_as_of(flags: pl.DataFrame, as_of: date) -> pl.LazyFrame:
    """The physician flags raised on or before `as_of`, as the rules read them."""
    return (
        flags.lazy()
        .select(FLAG_COLUMNS)
        .cast({"raised_on": pl.Date})
        .filter(pl.col("raised_on") <= as_of)
    )


# an alert as kept (`evaluate_alerts(..., text=False)`, `with_text`): ALERT_COLUMNS but the text,
# TEXTED, and either message and evidence (TEXTED true) or each rule's raw values (RAW_PREFIX)
HIT_COLUMNS: tuple[str, ...] = tuple(c for c in ALERT_COLUMNS if c not in ("message", "evidence"))
TEXTED = "texted"
RAW_PREFIX = "raw."
_HIT_SCHEMA = {c: ALERT_SCHEMA[c] for c in HIT_COLUMNS}


def _assemble(
    rules: Sequence[AlertRule], rule_input: RuleInput, facts: pl.DataFrame, *, text: bool
) -> pl.DataFrame:
    """Run `rules` and make the alerts as kept: ids, day, and the text (`text`: sorted) or each
    rule's raw values (prefixed, one column per name over every rule: a rule's rows leave the
    others' null; in no particular order: a count needs none, and `with_text` sorts)."""
    if not rules:
        return pl.DataFrame(schema={**_HIT_SCHEMA, TEXTED: pl.Boolean()})
    hits = [rule.evaluate(rule_input) for rule in rules]
    parts: list[pl.DataFrame] = []
    for rule, found, rows in zip(rules, hits, pl.collect_all([h.rows for h in hits]), strict=True):
        part = found.shape(rows)
        if rule.severity is not None:
            part = part.with_columns(severity=pl.lit(rule.severity))
        columns = (
            _PID,
            pl.lit(rule.id).alias("rule"),
            pl.col("severity").cast(pl.String),
            pl.col("triggered_on").cast(pl.Date),
        )
        if text:
            made = found.text(part)
            texts = made["message"].cast(pl.String), made["evidence"].cast(pl.String)
            parts.append(part.select(*columns).with_columns(*texts))
        else:
            raw = [c for c in part.columns if c not in (_PID, "triggered_on", "severity")]
            parts.append(part.select(*columns, *[pl.col(c).alias(RAW_PREFIX + c) for c in raw]))
    # a name two rules share must be one type (a rule's raw values are read back unchanged)
    alerts = pl.concat(parts, how="diagonal")
    # one alert per patient, rule and date; the rules make them so from valid visits (one
    # per patient and date), and finding a duplicate costs a third of removing one
    key = [_PID, "rule", "triggered_on"]
    if alerts.select(pl.struct(key).is_duplicated().any()).item():
        alerts = alerts.unique(subset=key, keep="first", maintain_order=True)
    alerts = alerts.join(facts.select(_PID, "infusion_date"), on=_PID, how="left").with_columns(
        day=(pl.col("triggered_on") - pl.col("infusion_date")).dt.total_days()
    )
    alerts = alerts.with_columns(alert_id=_alert_ids(alerts), **{TEXTED: pl.lit(text)})
    if not text:  # for a count: in no order
        raw = [c for c in alerts.columns if c.startswith(RAW_PREFIX)]
        return alerts.select(*HIT_COLUMNS, TEXTED, *raw).cast(_HIT_SCHEMA)  # type: ignore[arg-type]
    # kept in the order shown: a reader that shows them does not move the text again
    texted = alerts.select(*HIT_COLUMNS, TEXTED, "message", "evidence")
    return sort_alerts(texted.cast(_HIT_SCHEMA))  # type: ignore[arg-type]


def _texts(as_of: date, config: Config) -> dict[str, Hits]:
    """Each rule's `text` and what it reads, as of `as_of` (a rule's plan is built, never run:
    cheap)."""
    empty = pl.LazyFrame()
    rule_input = RuleInput(visits=empty, outcomes=empty, as_of=as_of, config=config, flags=empty)
    return {rule.id: rule.evaluate(rule_input) for rule in ALERT_RULES}


def with_text(hits: pl.DataFrame, as_of: date, config: Config | None = None) -> pl.DataFrame:
    """`hits` (alerts as kept, as of `as_of`: `evaluate_alerts(..., text=False)`, or rows of
    an evaluation with text, or both) with their message and evidence, sorted as
    `evaluate_alerts` sorts; columns `ALERT_COLUMNS`. A row without text is given it by its
    rule, from its own raw values: the same text the evaluation would have made."""
    if hits.is_empty():
        return empty_alerts()
    texted = pl.col(TEXTED).fill_null(False)
    missing = hits.select(pl.col("rule").filter(~texted).unique(maintain_order=True))["rule"]
    if missing.is_empty():  # every row has its text (an entry kept by a reader that shows)
        return _in_order(hits.select(ALERT_COLUMNS).cast(ALERT_SCHEMA))  # type: ignore[arg-type]
    parts = []
    if "message" in hits.columns:
        parts.append(hits.lazy().filter(texted).select(ALERT_COLUMNS).collect())
    if not missing.is_empty():
        texts = _texts(as_of, config or get_config())
        # each rule's rows with only its own raw values (a projection: no copy of the others;
        # the alert's own columns apart, as a rule's raw values may share a name with them)
        plans = [
            hits.lazy()
            .filter(~texted & (pl.col("rule") == rule))
            .select(
                *[pl.col(c).alias("~" + c) for c in HIT_COLUMNS],
                "triggered_on",
                *[pl.col(RAW_PREFIX + c).alias(c) for c in texts[rule].reads],
            )
            for rule in missing
        ]
        for rule, rows in zip(missing, pl.collect_all(plans), strict=True):
            made = texts[rule].text(rows.select("triggered_on", *texts[rule].reads))
            alert = rows.select([pl.col("~" + c).alias(c) for c in HIT_COLUMNS])
            parts.append(pl.concat([alert, made], how="horizontal"))
    frame = pl.concat(parts, how="diagonal_relaxed").select(ALERT_COLUMNS)
    return _in_order(frame.cast(ALERT_SCHEMA))  # type: ignore[arg-type]


def _in_order(alerts: pl.DataFrame) -> pl.DataFrame:
    """`sort_alerts(alerts)`, without moving the text when it is in that order already (an
    evaluation with text is kept sorted): the order is found from the keys alone."""
    keys = alerts.select(
        pl.arg_sort_by(severity_rank(), "triggered_on", _PID, "rule").alias("order")
    )["order"]
    if keys.is_sorted():  # a permutation in ascending order is no move at all
        return alerts
    return alerts[keys]


def sort_alerts(alerts: pl.DataFrame) -> pl.DataFrame:
    """The evaluation's order: severity (critical first), triggered_on, patient_id, rule."""
    return (
        alerts.with_columns(_rank=severity_rank())
        .sort("_rank", "triggered_on", _PID, "rule")
        .drop("_rank")
    )


def flag_alerts(
    flags: pl.DataFrame, facts: pl.DataFrame, as_of: date, config: Config | None = None
) -> pl.DataFrame:
    """The `physician_flag` alerts of `flags` raised on or before `as_of`, for the patients of
    `facts` (patient_id, infusion_date: the patients `derive_outcomes` keeps as of `as_of`);
    the same rows `evaluate_alerts(..., flags=flags)` gives for that rule."""
    cfg = config or get_config()
    rule_input = RuleInput(
        visits=pl.LazyFrame(),
        outcomes=facts.lazy().select(_PID, "infusion_date"),
        as_of=as_of,
        config=cfg,
        flags=_flags_as_of(flags, as_of),
    )
    flags_found = _assemble([RULES_BY_ID["physician_flag"]], rule_input, facts, text=True)
    return with_text(flags_found, as_of, cfg)


def followup_hits(
    facts: pl.DataFrame, as_of: date, config: Config | None = None, *, text: bool = True
) -> pl.DataFrame:
    """The `followup_overdue` alerts as of `as_of` of the patients of `facts` (their
    `derive_outcomes` rows as of `as_of`), as kept (`evaluate_alerts(..., text=False)`, with
    their text made or not): the one rule that reads only the outcomes and the date, so a
    patient whose outcomes did not change gets it without an evaluation."""
    rule_input = RuleInput(
        visits=pl.LazyFrame(),
        outcomes=facts.lazy(),
        as_of=as_of,
        config=config or get_config(),
        flags=empty_flags().lazy(),
    )
    return _assemble([RULES_BY_ID["followup_overdue"]], rule_input, facts, text=text)


CLINICAL_RULES: tuple[AlertRule, ...] = tuple(r for r in ALERT_RULES if r.id != "physician_flag")


def evidence_object(evidence: str | None) -> object:
    """The evidence JSON text as a Python object (for JSON output)."""
    return json.loads(evidence) if evidence else {}


__all__ = [
    "ALERT_COLUMNS",
    "ALERT_RULES",
    "CLINICAL_RULES",
    "FLAG_SEVERITIES",
    "RULES_BY_ID",
    "SEVERITIES",
    "AlertRule",
    "RuleInput",
    "HIT_COLUMNS",
    "RAW_PREFIX",
    "TEXTED",
    "alert_id",
    "evaluate_alerts",
    "evidence_object",
    "flag_alerts",
    "followup_hits",
    "severity_rank",
    "sort_alerts",
    "with_text",
]
