"""The rule alerts of the store's clinical data, evaluated once per clinical version, date and
settings, and after a commit only for the patients it changed.

What the rules read: patients, visits, the evaluation date, the thresholds and the code. Not
acknowledgements and not physician flags: those are joined at read time (`queue_alerts`), so
acknowledging an alert or raising a flag costs no evaluation.

Every rule is per patient (each reads one patient's visits and facts: windows, shifts and
as-of joins run within a patient, joins are on patient_id, the only cross-patient step is the
final sort, whose key is total), so

    rules(store) = rules(unchanged patients) ∪ rules(changed patients)

and an evaluation kept for an older clinical version of the same date and settings
(`store.alert_cache`) is brought up to date by evaluating only the patients changed since
(`store.clinical_version.changed_since`) and merging. A site-limited read keeps its sites'
patients of the whole store's evaluation (the same rows as evaluating its sites alone, for the
same reason). A new date with nothing kept for it starts from an evaluation of the same rows
kept for another date: the passing of time changes the alerts of some patients nobody touched
(closed MRD windows, overdue follow-up, dates that come into view), and `time_sensitive` names
them from what reads the date; only those are evaluated again.

What moved is kept as a delta over a whole entry (`store.alert_cache`): an upload of some
patients keeps its patients' rows over the previous entry of the day (the upload costs what it
holds and its first reader merges a few rows), a reader that brought an older entry up to date
and a new day keep only the patients they evaluated again. A delta that would replace more than
`1 / _DELTA_SHARE` of the patients is written whole instead (compaction).

Never stale: the kept entry is written only when the clinical state read before the evaluation
is still the state after it (nothing committed in between), under that state's token; a reader
finds entries by the token of the state it sees now.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date

import polars as pl

from monitoring.alerts import (
    CLINICAL_RULES,
    evaluate_alerts,
    flag_alerts,
    followup_hits,
    sort_alerts,
    with_text,
)
from monitoring.config import Config, get_config
from monitoring.outcomes import FOLLOWUP_DATES, evaluation_rows, outcomes_of
from monitoring.store import Store, alert_cache
from monitoring.store.clinical_version import ClinicalState

_PID = "patient_id"
# what a count needs of the facts (the whole outcomes frame is read for `kept_outcomes`)
FACT_COLUMNS = ["patient_id", "infusion_date", "site"]
# an evaluation that would re-evaluate more than this share of the kept patients starts over
_INCREMENTAL_SHARE = 2
# a kept delta replaces at most 1/_DELTA_SHARE of its whole entry's patients; else whole
_DELTA_SHARE = 4
# patients evaluated at once (`evaluate_patients`)
_CHUNK_PATIENTS = 50_000


@dataclass(frozen=True)
class RuleEvaluation:
    """The rule alerts (no physician flags) of some patients as of one date, and their facts:
    `derive_outcomes` as of that date (one row per patient infused by then, with its site).

    The alerts are kept and merged as `evaluate_alerts(..., text=False)` makes them: an
    evaluation for a reader that counts makes no message or evidence but keeps the raw values
    they are made of, and the text of such rows is made where alerts are shown (`alerts`,
    `queue_alerts`: `with_text`)."""

    hits: pl.DataFrame  # HIT_COLUMNS, TEXTED, text or raw values; in no particular order
    facts: pl.DataFrame  # derive_outcomes' frame (or some of its columns), by patient_id
    as_of: date
    config: Config

    @functools.cached_property
    def alerts(self) -> pl.DataFrame:
        """The alerts with their text (ALERT_COLUMNS), sorted as `evaluate_alerts` sorts."""
        return with_text(self.hits, self.as_of, self.config)


def evaluate_patients(
    patients: pl.DataFrame,
    visits: pl.DataFrame,
    as_of: date,
    config: Config,
    text: bool = True,
) -> RuleEvaluation:
    """The rule alerts of these patients (all their rows) as of `as_of`; `text` False makes
    no message or evidence (a count needs none; `RuleEvaluation.alerts` makes them).

    More than `_CHUNK_PATIENTS` patients are evaluated a range of patient ids at a time: every
    rule is per patient, so the rows are the same (and sorted the same: the sort key is
    total), while the intermediate frames are those of one range (at 200 000 patients one
    evaluation held about 1 GB of them, the first ingest's peak)."""
    if patients.height <= _CHUNK_PATIENTS:
        return _evaluate(patients, visits, as_of, config, text)
    ids = patients.get_column(_PID).sort()
    parts: list[RuleEvaluation] = []
    for start in range(0, ids.len(), _CHUNK_PATIENTS):
        low, high = ids[start], ids[min(start + _CHUNK_PATIENTS, ids.len()) - 1]
        in_range = pl.col(_PID).is_between(pl.lit(low), pl.lit(high))
        in_rows = patients.filter(in_range), visits.filter(in_range)
        parts.append(_evaluate(*in_rows, as_of, config, text))
    hits = _stack([part.hits for part in parts])
    facts = pl.concat([part.facts for part in parts]).sort(_PID)
    return RuleEvaluation(hits, facts, as_of, config)


def _evaluate(
    patients: pl.DataFrame, visits: pl.DataFrame, as_of: date, config: Config, text: bool
) -> RuleEvaluation:
    rows = evaluation_rows(patients, visits, as_of)  # prepared once for the outcomes and rules
    outcomes = outcomes_of(rows, as_of, config)
    hits = evaluate_alerts(
        patients,
        visits,
        as_of,
        config,
        outcomes,
        rules=CLINICAL_RULES,
        rows=rows,
        kept=True,
        text=text,
    )
    return RuleEvaluation(hits, outcomes, as_of, config)


def _stack(frames: list[pl.DataFrame]) -> pl.DataFrame:
    """Hits of several evaluations as one frame: each holds every rule's raw columns, but a
    kept one was read back from Parquet (a column of nulls may come back untyped)."""
    return pl.concat(frames, how="diagonal_relaxed")


def merge(kept: RuleEvaluation, changed: pl.Series, fresh: RuleEvaluation) -> RuleEvaluation:
    """`kept` with the patients in `changed` replaced by `fresh` (their new evaluation, whose
    date it has)."""
    gone = pl.col(_PID).is_in(changed.cast(pl.String).implode())
    hits = _stack([kept.hits.filter(~gone), fresh.hits])
    facts = _merged_facts(kept.facts, changed, fresh.facts)
    return RuleEvaluation(hits, facts, fresh.as_of, fresh.config)


def _merged_facts(kept: pl.DataFrame, changed: pl.Series, fresh: pl.DataFrame) -> pl.DataFrame:
    """`kept` facts with the patients in `changed` replaced by `fresh`, by patient_id."""
    gone = pl.col(_PID).is_in(changed.cast(pl.String).implode())
    return pl.concat([kept.filter(~gone), fresh.cast(kept.schema)]).sort(_PID)


def _key(config: Config) -> str:
    return alert_cache.settings_key(repr(config))


def _whole(kept: alert_cache.KeptEvaluation, config: Config) -> RuleEvaluation:
    """A kept entry's evaluation: a delta's rows merged into its whole entry's."""
    whole = RuleEvaluation(kept.alerts, kept.facts, kept.as_of, config)
    if kept.delta is None:
        return whole
    delta = kept.delta
    fresh = RuleEvaluation(delta.alerts, delta.facts, kept.as_of, config)
    return merge(whole, delta.replaced, fresh)


@dataclass(frozen=True)
class _Over:
    """A whole entry a new entry may be kept as a delta over: every patient's rows but those of
    `replaced` are the same in both."""

    entry_id: int
    replaced: pl.Series
    patients: int  # how many patients the whole entry holds

    def small(self) -> bool:
        """Few enough replaced patients for a delta (else a whole entry: compaction)."""
        return self.replaced.len() * _DELTA_SHARE <= max(self.patients, 1)


def _over(kept: alert_cache.KeptEvaluation | None, moved: pl.Series, patients: int) -> _Over | None:
    """The whole entry behind `kept` and what differs from it once the patients `moved` (since
    `kept`) are replaced too."""
    if kept is None:
        return None
    moved = moved.cast(pl.String)
    if kept.delta is None:
        return _Over(kept.entry_id, moved.unique(), patients)
    replaced = pl.concat([kept.delta.replaced.cast(pl.String), moved]).unique()
    return _Over(kept.delta.base_entry, replaced, patients)


def _keep(
    whole: Store,
    state: ClinicalState,
    as_of: date,
    key: str,
    result: RuleEvaluation,
    over: _Over | None,
) -> None:
    """Keep `result` (every patient's rows) as a delta over `over` when it replaces few
    patients, else whole."""
    if over is None or not over.small():
        alert_cache.write_entry(whole, state, as_of, key, result.hits, result.facts)
        return
    moved = pl.col(_PID).is_in(over.replaced.implode())
    alerts, facts = result.hits.filter(moved), result.facts.filter(moved)
    alert_cache.write_entry(whole, state, as_of, key, alerts, facts, over.entry_id, over.replaced)


def rule_evaluation(
    store: Store, as_of: date, config: Config, columns: list[str] | None = None
) -> RuleEvaluation:
    """Every patient's rule alerts and outcomes (the whole store, whatever `store`'s scope) as
    of `as_of`: kept, brought up to date from an older kept entry, or evaluated; kept for the
    next reader. `columns` (a subset of HIT_COLUMNS) limits what a kept entry is read with
    (then the hits are only those columns and the facts only FACT_COLUMNS), and an evaluation
    for such a reader makes no text of everyone (it keeps the raw values: a later reader that
    shows the alerts makes their text)."""
    text = columns is None
    whole = store.unscoped()
    key = _key(config)
    fact_columns = FACT_COLUMNS if columns is not None else None
    found = alert_cache.lookup(whole, as_of, key, columns, fact_columns)
    if found.hit is not None:
        return _whole(found.hit, config)
    base, changed = found.base, found.changed
    result: RuleEvaluation | None = None
    over: _Over | None = None  # what the result may be kept as a delta over
    whole_rows: tuple[pl.DataFrame, pl.DataFrame] | None = None  # one snapshot: one state
    kept = _whole(base, config) if base is not None else None
    if (
        base is not None
        and kept is not None
        and changed is not None
        and changed.len() * _INCREMENTAL_SHARE <= max(kept.facts.height, 1)
    ):
        _version, patients, visits = whole.snapshot_of(changed)
        fresh = evaluate_patients(patients, visits, as_of, config, _texted(kept, text))
        result = merge(kept, changed, fresh)
        over = _over(base, changed, base.facts.height)
    else:
        _version, patients, visits = whole.snapshot()
        whole_rows = (patients, visits)
        from_day = _from_another_day(found.other_day, patients, visits, as_of, config, text)
        if from_day is not None:
            result, moved = from_day
            other = found.other_day
            over = _over(other, moved, other.facts.height) if other is not None else None
    # nothing committed since the lookup: every read was of `state` (tokens never repeat), so
    # the result is its alerts and may be kept; else a merge could mix two states: start over
    unchanged = found.state.token is not None and alert_cache.clinical_state(whole) == found.state
    if result is None or not unchanged:
        if whole_rows is None:
            _version, patients, visits = whole.snapshot()
            whole_rows = (patients, visits)
        result = evaluate_patients(*whole_rows, as_of, config, text)
        over = None
    if unchanged:
        _keep(whole, found.state, as_of, key, result, over)
    if columns is not None:
        hits, facts = result.hits.select(columns), result.facts.select(FACT_COLUMNS)
        return RuleEvaluation(hits, facts, as_of, config)
    return result


def time_sensitive(
    patients: pl.DataFrame,
    visits: pl.DataFrame,
    kept_day: date,
    as_of: date,
    config: Config,
) -> pl.Series:
    """The patients whose outcomes or rule alerts may differ between an evaluation as of
    `kept_day` and one as of `as_of`, for the same rows, beyond `overdue_by`'s.

    What reads the evaluation date, and so what the passing of time can change (everything else
    is per patient and relative to the infusion date):
    - `derive_outcomes`: the patients infused by the date; hsct, new therapy, death and last
      contact dates after it hidden; visits after it dropped; a response "pending" that becomes
      "non-responder" once `response_window_days` have passed (and by death, a hidden date);
    - the rules: the same visits (`visit_date <= as_of`); `missed_mrd_assessment` fires for a
      window whose end is before the date; `followup_overdue` fires when more than
      `followup_overdue_days` passed since the last contact, and its message and evidence name
      the date (so an overdue patient's alert differs every day); flags are joined later.
    So with lo < hi the two dates, a patient is re-evaluated when any of its dates (infusion, a
    visit, hsct, new therapy, death, last contact) is in (lo, hi], or its infusion plus the
    response window or plus a window's end day is in [lo, hi). Every other patient has the same
    outcomes on both dates, and the same alerts except `followup_overdue` when it is overdue as
    of hi (`overdue_by`): that rule reads only the outcomes and the date."""
    lo, hi = sorted((kept_day, as_of))

    def between(column: pl.Expr) -> pl.Expr:
        return (column > lo) & (column <= hi)

    def crosses(days: int) -> pl.Expr:
        edge = pl.col("infusion_date") + pl.duration(days=days)
        return (edge >= lo) & (edge < hi)

    dated = patients.filter(
        pl.any_horizontal(
            between(pl.col("infusion_date")),
            *[between(pl.col(c)) for c in FOLLOWUP_DATES],
            crosses(config.response_window_days),
            *[crosses(end) for _start, end in config.mrd_assessment_windows],
        ).fill_null(False)
    )[_PID]
    visited = visits.filter(between(pl.col("visit_date")))[_PID]
    return pl.concat([dated, visited]).cast(pl.String).unique()


def overdue_by(facts: pl.DataFrame, kept_day: date, as_of: date, config: Config) -> pl.Series:
    """The patients of `facts` (outcomes) whose follow-up is overdue as of the later date: their
    `followup_overdue` alert may differ between the dates (its message names the date)."""
    hi = max(kept_day, as_of)
    gap = (pl.lit(hi) - pl.col("last_contact_date")).dt.total_days()
    overdue = facts.filter(pl.col("death_date").is_null() & (gap > config.followup_overdue_days))
    return overdue[_PID].cast(pl.String)


def _texted(kept: RuleEvaluation, text: bool) -> bool:
    """Whether some patients evaluated again to be merged into `kept` get their text: when the
    reader shows alerts, and when `kept` has text (their few texts cost little, and the merged
    rows hold no raw values of everyone: at 200 000 patients 0.3 GB of null columns)."""
    return text or "message" in kept.hits.columns


def _from_another_day(
    kept: alert_cache.KeptEvaluation | None,
    patients: pl.DataFrame,
    visits: pl.DataFrame,
    as_of: date,
    config: Config,
    text: bool,
) -> tuple[RuleEvaluation, pl.Series] | None:
    """The evaluation as of `as_of` from one of the same rows kept for another date, and the
    patients whose rows differ from it: only the `time_sensitive` patients evaluated again;
    None when there is none or most would be."""
    if kept is None:
        return None
    whole = _whole(kept, config)
    again = time_sensitive(patients, visits, kept.as_of, as_of, config)
    if again.len() * _INCREMENTAL_SHARE > max(whole.facts.height, 1):
        return None
    keep = pl.col(_PID).is_in(again.implode())
    text = _texted(whole, text)
    fresh = evaluate_patients(patients.filter(keep), visits.filter(keep), as_of, config, text)
    # the other patients' outcomes are those of `as_of`: only their overdue alert moves
    overdue = overdue_by(whole.facts, kept.as_of, as_of, config)
    overdue = overdue.filter(~overdue.is_in(again.implode()))
    merged = merge(whole, again, fresh)
    if overdue.is_empty():
        return merged, again
    moved = pl.col(_PID).is_in(overdue.implode())
    hits = merged.hits.filter(~(moved & (pl.col("rule") == "followup_overdue")))
    updated = followup_hits(merged.facts.filter(moved), as_of, config, text=text)
    result = RuleEvaluation(_stack([hits, updated]), merged.facts, as_of, config)
    return result, pl.concat([again, overdue])


def keep_committed(
    store: Store,
    committed_version: int,
    as_of: date,
    config: Config,
    touched: pl.Series,
    fresh: RuleEvaluation,
) -> bool:
    """After a commit (clinical version `committed_version`) whose changed patients `touched`
    were evaluated as `fresh` (their rows after the commit): keep it as the whole store's
    evaluation for `as_of`. A commit that touched every stored patient (a first ingest, a
    whole re-upload) keeps `fresh` whole. A commit of some patients keeps their rows as a delta
    over the day's previous entry when only this commit changed patients since it (reading of
    that entry only its own delta rows, never everyone's alerts: the upload costs what it
    holds); when there is none, or the delta would grow too large, it keeps nothing and the
    first reader (the dashboard's warm-up, `ltfu status`) merges (`rule_evaluation`). Nothing is
    kept when another commit landed since. Returns whether an entry was kept."""
    whole = store.unscoped()
    key = _key(config)
    found = alert_cache.lookup(whole, as_of, key, base=False)
    state = found.state
    if state.version != committed_version or state.token is None or found.hit is not None:
        return False
    touched = touched.cast(pl.String).unique()
    if touched.len() >= found.stored_patients:
        if alert_cache.clinical_state(whole) != state:
            return False
        alert_cache.write_entry(whole, state, as_of, key, fresh.hits, fresh.facts)
        return True
    head = alert_cache.newest_older(whole, as_of, key)
    if head is None or head.state != state:
        return False
    changed = head.changed.cast(pl.String)
    if not changed.is_in(touched.implode()).all():  # other commits since: the reader merges
        return False
    over = _over(head.entry, changed, found.stored_patients)
    if over is None or not over.small():
        return False
    rows = fresh
    if head.entry.delta is not None:  # the earlier delta's rows of patients not changed now
        earlier = head.entry.delta
        kept = RuleEvaluation(earlier.alerts, earlier.facts, as_of, config)
        rows = merge(kept, changed, fresh)
    if alert_cache.clinical_state(whole) != state:
        return False
    _keep(whole, state, as_of, key, rows, over)
    return True


def _in_scope(store: Store, facts: pl.DataFrame) -> pl.DataFrame:
    if store.scope.is_every_site:
        return facts
    return facts.filter(pl.col("site").is_in(sorted(store.scope.sites or ())))


def kept_outcomes(store: Store, as_of: date, config: Config | None = None) -> pl.DataFrame | None:
    """`derive_outcomes` of the store's scope as of `as_of`, when an evaluation of the current
    clinical data for that date is kept (an upload or a reader of the day made it); else None
    (derive them). Cheap: one read of the kept facts."""
    found = alert_cache.lookup(
        store.unscoped(), as_of, _key(config or get_config()), [_PID], None, base=False
    )
    if found.hit is None:
        return None
    return _in_scope(store, _whole_facts(found.hit))


def _whole_facts(kept: alert_cache.KeptEvaluation) -> pl.DataFrame:
    """A kept entry's facts (`_whole` without merging its alerts)."""
    if kept.delta is None:
        return kept.facts
    return _merged_facts(kept.facts, kept.delta.replaced, kept.delta.facts)


def evaluated_outcomes(store: Store, as_of: date, config: Config | None = None) -> pl.DataFrame:
    """`derive_outcomes` of the store's scope as of `as_of`, derived together with the alerts
    (kept, brought up to date, or evaluated and kept): for a reader that will want the alerts of
    the same date too, so the outcomes are derived once for both."""
    return _in_scope(store, rule_evaluation(store, as_of, config or get_config()).facts)


def queue_alerts(
    store: Store,
    as_of: date,
    config: Config | None,
    flags: pl.DataFrame,
    columns: list[str] | None = None,
) -> pl.DataFrame:
    """All alerts of the store's scope as of `as_of`: the rule alerts of its patients and the
    physician flags (`flags`: the scope's `flags` table), sorted as `evaluate_alerts` sorts.
    Identical to `evaluate_alerts(patients, visits, as_of, config, flags=flags)` of the scope's
    patients and visits. With `columns` (a subset of HIT_COLUMNS, for a count): only those,
    in no particular order, and no text is made."""
    cfg = config or get_config()
    rules = rule_evaluation(store, as_of, cfg, columns)
    facts = _in_scope(store, rules.facts)
    hits = rules.hits
    if not store.scope.is_every_site:
        hits = hits.filter(pl.col(_PID).is_in(facts[_PID].implode()))
    flagged = flag_alerts(flags, facts, as_of, cfg)
    if columns is not None:
        return pl.concat([hits, flagged.select(columns)]) if flagged.height else hits
    # the text of only the scope's alerts, and only for a reader that shows them
    alerts = with_text(hits, as_of, cfg)
    if flagged.is_empty():
        return alerts
    return sort_alerts(pl.concat([alerts, flagged]))


__all__ = [
    "FACT_COLUMNS",
    "evaluated_outcomes",
    "kept_outcomes",
    "RuleEvaluation",
    "evaluate_patients",
    "keep_committed",
    "merge",
    "queue_alerts",
    "rule_evaluation",
    "overdue_by",
    "time_sensitive",
]
