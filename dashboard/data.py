"""The only cached loaders. Everything is keyed on the store's `data_version` (plus the request),
never on frames, so a committed upload invalidates every page at once and a rerun that changes
nothing costs one `SELECT` of the version.

Site scope: every loader reads through the signed-in account's `SiteScope`
(`dashboard.site_scope`), and the scope is an argument of every cached function, so one site's
cached figures are never served to another site's viewer. The public loaders keep the signatures
the views call; each passes `current_scope()` on to a cached `_name(…, scope, …)`."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

import polars as pl
import streamlit as st

from dashboard.filters import Filters, Held, Options, of_patients
from dashboard.site_scope import current_scope
from monitoring.analysis_registry import DurabilityRequest
from monitoring.cohort_views import OverviewTiles
from monitoring.durability_results import DurabilitySummary
from monitoring.store import Store
from monitoring.store.profiles import StoredProfile
from monitoring.store.site_scope import SiteScope

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from monitoring.ingest import IngestResult
    from monitoring.ingest.preview import UploadPreview
    from monitoring.swimmer import SwimmerPage


# The store's frames, the filtered cohort, its outcomes and the alert queue are cached as
# resources: every session reads the same frame (polars frames are not changed in place here),
# where st.cache_data unpickled a copy on every read (0.3 s for 50 000 patients' visits, several
# reads per page run). Their keys hold the data version and site scope, as before.
@st.cache_resource
def _open_store(url: str | None) -> Store:
    return Store.open(url)


def store_for(scope: SiteScope) -> Store:
    """The store named by LTFU_DATABASE_URL (set by `ltfu serve`, opened once per URL), read
    through `scope`."""
    return _open_store(os.environ.get("LTFU_DATABASE_URL")).scoped(scope)


def get_store() -> Store:
    """The store as the signed-in account may read it (its sites; no patient before sign-in)."""
    return store_for(current_scope())


def version() -> int:
    return get_store().data_version()


def snapshot(data_version: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(patients, visits) of the store at `data_version`, of the account's sites."""
    return snapshot_for(data_version, current_scope())


def content_key(data_version: int, scope: SiteScope) -> str:
    """The name of the patients' and visits' content at `data_version` (`Store.content_key`).

    What derives from the two tables alone (snapshot, cohort, outcomes, overview, durability)
    is cached under it, not under the data version, which every acknowledgement and flag moves:
    at 100 000 patients each acknowledgement derived everything again and kept another copy of
    the cohort. Read once per data version; a version read before a later commit maps to the
    newer content, never to an older one."""
    return _content_key(data_version, scope)


@st.cache_resource(max_entries=64, show_spinner=False)
def _content_key(data_version: int, scope: SiteScope) -> str:
    return store_for(scope).content_key()


def snapshot_for(data_version: int, scope: SiteScope) -> tuple[pl.DataFrame, pl.DataFrame]:
    return _snapshot(content_key(data_version, scope), scope)


def _snapshot(content: str, scope: SiteScope) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The frames of `content`; per scope the two newest contents are kept (the current one and
    the one a page still running may read), so uploads do not pile copies of the cohort up."""
    frames = _snapshot_of(content, scope)
    with _kept_lock:
        kept = _kept.setdefault(scope, [])
        if content not in kept:
            kept.append(content)
        while len(kept) > _CONTENTS_KEPT:
            _snapshot_of.clear(kept.pop(0), scope)
    return frames


_CONTENTS_KEPT = 2
_kept: dict[SiteScope, list[str]] = {}
_kept_lock = threading.Lock()


# a bound besides the per-scope one: every site and the warm-up's site-limited scopes
@st.cache_resource(max_entries=10, show_spinner=False)  # shared, not copied: see above
def _snapshot_of(content: str, scope: SiteScope) -> tuple[pl.DataFrame, pl.DataFrame]:
    _version, patients, visits = store_for(scope).snapshot()
    return patients, visits


def filter_options(data_version: int) -> Options:
    """What the sidebar's filters offer, of the account's sites."""
    return filter_options_for(data_version, current_scope())


def filter_options_for(data_version: int, scope: SiteScope) -> Options:
    """What the sidebar's filters offer to `scope` (cached per content)."""
    return _filter_options(content_key(data_version, scope), scope)


@st.cache_resource(max_entries=16, show_spinner=False)
def _filter_options(content: str, scope: SiteScope) -> Options:
    patients, _visits = _snapshot(content, scope)
    return Options.of(patients)


def _same_cohort(content: str, scope: SiteScope, filters: Filters) -> Filters:
    """`filters` without the parts that keep every patient of `content` (`Filters.without`):
    the key under which the loaders below cache the cohort's views."""
    if filters == Filters():
        return filters
    return filters.without(_held(content, scope))


def held_for(data_version: int, scope: SiteScope) -> Held:
    """What `scope`'s patients hold per filter part (`Held`, cached per content)."""
    return _held(content_key(data_version, scope), scope)


def same_cohort_for(data_version: int, scope: SiteScope, filters: Filters) -> Filters:
    """`filters` as the key of their cohort's views (`_same_cohort`)."""
    return _same_cohort(content_key(data_version, scope), scope, filters)


@st.cache_resource(max_entries=16, show_spinner=False)
def _held(content: str, scope: SiteScope) -> Held:
    patients, _visits = _snapshot(content, scope)
    return Held.of(patients)


def cohort(data_version: int, filters: Filters) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(patients, visits) after the sidebar filters."""
    return cohort_for(data_version, current_scope(), filters)


def cohort_patients(data_version: int, filters: Filters) -> pl.DataFrame:
    """The patients after the sidebar filters (`cohort` without filtering the visits, for
    pages that need only who is in the cohort)."""
    return cohort_patients_for(data_version, current_scope(), filters)


def cohort_patients_for(data_version: int, scope: SiteScope, filters: Filters) -> pl.DataFrame:
    """`cohort_patients` of `scope`'s patients (cached per content and filters)."""
    content = content_key(data_version, scope)
    return _patients_of(content, scope, _same_cohort(content, scope, filters))


@st.cache_resource(max_entries=32, show_spinner=False)  # shared, not copied: see above
def _patients_of(content: str, scope: SiteScope, filters: Filters) -> pl.DataFrame:
    patients, _visits = _snapshot(content, scope)
    return filters.chosen(patients)


def cohort_for(
    data_version: int, scope: SiteScope, filters: Filters
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`cohort` of `scope`'s patients (cached per content and filters)."""
    content = content_key(data_version, scope)
    return _cohort_of(content, scope, _same_cohort(content, scope, filters))


@st.cache_resource(max_entries=32, show_spinner=False)  # shared, not copied: see above
def _cohort_of(
    content: str, scope: SiteScope, filters: Filters
) -> tuple[pl.DataFrame, pl.DataFrame]:
    patients, visits = _snapshot(content, scope)
    chosen = _patients_of(content, scope, filters)
    return chosen, of_patients(visits, chosen)


def outcomes(data_version: int, filters: Filters, as_of: date) -> pl.DataFrame:
    return _outcomes(data_version, current_scope(), filters, as_of)


def _outcomes(data_version: int, scope: SiteScope, filters: Filters, as_of: date) -> pl.DataFrame:
    content = content_key(data_version, scope)
    return _outcomes_of(content, scope, _same_cohort(content, scope, filters), as_of)


@st.cache_resource(max_entries=32, show_spinner=False)  # shared, not copied: see above
def _outcomes_of(content: str, scope: SiteScope, filters: Filters, as_of: date) -> pl.DataFrame:
    from monitoring.outcomes import derive_outcomes

    if filters != Filters():
        # outcomes are per patient: a filter change picks the cohort's rows from everyone's
        # (derived once per content and date) instead of deriving them again
        everyone = _outcomes_of(content, scope, Filters(), as_of)
        patients = _patients_of(content, scope, filters)
        return of_patients(everyone, patients)
    patients, visits = _cohort_of(content, scope, filters)
    return derive_outcomes(patients, visits, as_of=as_of)


def everyones_outcomes(data_version: int, scope: SiteScope, as_of: date) -> pl.DataFrame:
    """The outcomes of every patient `scope` may see (no sidebar filter), derived once per data
    version and date: the overview, a filter change and the worklist all read them."""
    return _outcomes(data_version, scope, Filters(), as_of)


def durability(
    data_version: int,
    filters: Filters,
    request: DurabilityRequest,
    reference: str | None = None,
) -> tuple[pl.DataFrame, DurabilitySummary]:
    """(curve table, summary) of `monitoring.durability` for the filtered cohort; the request
    (frozen, hashable) is the cache key. Its `as_of` must be set. `reference`: the hazard
    ratios' reference group (None: the largest; a name that is not a group: UsageError)."""
    scope = current_scope()
    content = content_key(data_version, scope)
    return _durability(content, scope, _same_cohort(content, scope, filters), request, reference)


@st.cache_data(max_entries=64, show_spinner=False)
def _durability(
    content: str,
    scope: SiteScope,
    filters: Filters,
    request: DurabilityRequest,
    reference: str | None,
) -> tuple[pl.DataFrame, DurabilitySummary]:
    from monitoring.durability import durability_summary, durability_table

    if request.as_of is None:
        raise ValueError("the dashboard asks for durability as of a chosen date")
    patients, visits = _cohort_of(content, scope, filters)
    # derived once per content, scope, filters and date, shared by every endpoint
    derived = _outcomes_of(content, scope, filters, request.as_of)
    table = durability_table(patients, visits, request, outcomes=derived)
    summary = durability_summary(patients, visits, request, outcomes=derived, reference=reference)
    return table, summary


def alerts(data_version: int, as_of: date, status: str) -> pl.DataFrame:
    """The queue of the account's whole cohort (acknowledging bumps the data version)."""
    return _alerts(data_version, current_scope(), as_of, status)


@st.cache_resource(max_entries=16, show_spinner=False)  # shared, not copied: see above
def _alerts(data_version: int, scope: SiteScope, as_of: date, status: str) -> pl.DataFrame:
    from monitoring.alert_queue import alerts_with_status

    return alerts_with_status(store_for(scope), as_of, status)


def filtered_alerts(as_of: date, status: str, filters: Filters) -> pl.DataFrame:
    version_now = version()
    frame = alerts(version_now, as_of, status)
    patients = cohort_patients(version_now, filters)
    return of_patients(frame, patients)


def open_alert_counts(data_version: int, filters: Filters, as_of: date) -> Mapping[str, int]:
    """Open alerts of the filtered cohort per severity (every severity, in severity order):
    `severity_counts` of `filtered_alerts(as_of, "open", filters)`, counted once per filter
    from the per-patient counts (a new filter picked 320 000 open alerts' rows at 100 000
    patients)."""
    return open_alert_counts_for(data_version, current_scope(), filters, as_of)


def open_alert_counts_for(
    data_version: int, scope: SiteScope, filters: Filters, as_of: date
) -> Mapping[str, int]:
    """`open_alert_counts` of `scope`'s patients."""
    same = same_cohort_for(data_version, scope, filters)
    return _open_alert_counts(data_version, scope, same, as_of)


@st.cache_resource(max_entries=64, show_spinner=False)  # read-only: every session shares it
def _open_alert_counts(
    data_version: int, scope: SiteScope, filters: Filters, as_of: date
) -> Mapping[str, int]:
    from monitoring.cohort_views import severity_counts_among

    ids = cohort_patients_for(data_version, scope, filters)["patient_id"]
    return severity_counts_among(_open_per_patient(data_version, scope, as_of), ids)


@st.cache_resource(max_entries=8, show_spinner=False)
def _open_per_patient(data_version: int, scope: SiteScope, as_of: date) -> pl.DataFrame:
    """(patient_id, severity, n) of the open alert queue."""
    from monitoring.cohort_views import severity_counts_per_patient

    return severity_counts_per_patient(_alerts(data_version, scope, as_of, "open"))


def acknowledgements(data_version: int) -> pl.DataFrame:
    return _acknowledgements(data_version, current_scope())


@st.cache_data(max_entries=8, show_spinner=False)
def _acknowledgements(data_version: int, scope: SiteScope) -> pl.DataFrame:
    from monitoring.alert_queue import acknowledgement_history

    return acknowledgement_history(store_for(scope))


@st.cache_data(max_entries=8, show_spinner=False)
def uploads(data_version: int) -> pl.DataFrame:
    """The upload log (file names and counts, no patient rows): not per site."""
    return get_store().uploads()


@dataclass(frozen=True)
class Overview:
    """What the overview page shows of the filtered cohort."""

    tiles: OverviewTiles
    median_followup_days: float | None
    lanes: pl.DataFrame  # one per patient (the swimmer view filters, sorts and pages them)
    mrd: pl.DataFrame  # MRD-detected points (patient_id, day)


def overview(data_version: int, filters: Filters, as_of: date) -> Overview:
    """Tiles, swimmer lanes and MRD-detected points of the filtered cohort."""
    return overview_for(data_version, current_scope(), filters, as_of)


def overview_for(data_version: int, scope: SiteScope, filters: Filters, as_of: date) -> Overview:
    """`overview` of `scope`'s patients (cached per content, filters and date)."""
    content = content_key(data_version, scope)
    return _overview_of(content, scope, _same_cohort(content, scope, filters), as_of)


@st.cache_resource(max_entries=16, show_spinner=False)  # shared, not copied: see above
def _overview_of(content: str, scope: SiteScope, filters: Filters, as_of: date) -> Overview:
    from monitoring.cohort_views import cohort_tiles, swimmer_lanes
    from monitoring.durability import median_followup_days

    frame = _outcomes_of(content, scope, filters, as_of)
    mrd = _mrd_points(content, scope, as_of)
    if filters != Filters():
        # like the outcomes: the cohort's points picked from everyone's
        mrd = of_patients(mrd, frame)
    return Overview(
        tiles=cohort_tiles(frame),
        median_followup_days=median_followup_days(frame) if frame.height else None,
        lanes=swimmer_lanes(frame, as_of),
        mrd=mrd,
    )


@st.cache_resource(max_entries=8, show_spinner=False)  # shared, not copied: see above
def _mrd_points(content: str, scope: SiteScope, as_of: date) -> pl.DataFrame:
    """Everyone's MRD-detected visits after infusion up to `as_of` (patient_id, day), by
    patient and date. Only the detected visits are given a day (1.2 M visits at 100 000
    patients took 3.4 s to date; the condition is per visit, so filtering first keeps the same
    rows)."""
    from monitoring.outcomes import mrd_detected_expr, visits_with_day

    patients, visits = _snapshot(content, scope)
    # only the two columns the points keep go through the join and the sort (all 18 took
    # 0.3 s of the 0.45 s at 100 000 patients); rows tied on both are equal, so the order holds
    detected = (
        visits.lazy()
        .filter((pl.col("visit_date") <= as_of) & mrd_detected_expr())
        .select("patient_id", "visit_date")
    )
    with_day = visits_with_day(patients, detected)
    return with_day.filter(pl.col("day") > 0).select("patient_id", "day")


@dataclass(frozen=True)
class SwimmerPages:
    """The swimmer plot's pages of the filtered cohort (`swimmer_view.show`): each page of
    lanes and its figure are cut once per data version, filters, date, filter, order and page
    number and shared (sorting 100 000 lanes took 0.17 s, drawing a page 0.3 s, on every run)."""

    data_version: int
    scope: SiteScope
    filters: Filters
    as_of: date
    patients: int

    def page(self, show: str, sort: str, number: int) -> SwimmerPage:
        return _swimmer_page(
            self.data_version, self.scope, self.filters, self.as_of, show, sort, number
        )

    def figure(self, show: str, sort: str, number: int, stamp: str) -> go.Figure:
        return _swimmer_figure(
            self.data_version, self.scope, self.filters, self.as_of, show, sort, number, stamp
        )


def swimmer_pages(data_version: int, filters: Filters, as_of: date) -> SwimmerPages:
    return swimmer_pages_for(data_version, current_scope(), filters, as_of)


def swimmer_pages_for(
    data_version: int, scope: SiteScope, filters: Filters, as_of: date
) -> SwimmerPages:
    lanes = overview_for(data_version, scope, filters, as_of).lanes
    same = _same_cohort(content_key(data_version, scope), scope, filters)
    return SwimmerPages(data_version, scope, same, as_of, lanes.height)


_NO_ALERTS = pl.DataFrame(schema={"patient_id": pl.String, "severity": pl.String})


@st.cache_resource(max_entries=64, show_spinner=False)  # shared, not copied: see above
def _swimmer_page(
    data_version: int,
    scope: SiteScope,
    filters: Filters,
    as_of: date,
    show: str,
    sort: str,
    number: int,
) -> SwimmerPage:
    from monitoring.swimmer import PER_PAGE, swimmer_page

    lanes = overview_for(data_version, scope, filters, as_of).lanes
    alerts = _NO_ALERTS
    if show == "alerts" or sort == "alerts":  # the open alerts only when the lanes need them
        patients = cohort_patients_for(data_version, scope, filters)
        alerts = of_patients(_alerts(data_version, scope, as_of, "open"), patients)
    return swimmer_page(lanes, alerts, show=show, sort=sort, page=number, per_page=PER_PAGE)


@st.cache_resource(max_entries=32, show_spinner=False)  # drawn once, sent on every run
def _swimmer_figure(
    data_version: int,
    scope: SiteScope,
    filters: Filters,
    as_of: date,
    show: str,
    sort: str,
    number: int,
    stamp: str,
) -> go.Figure:
    from dashboard.charts import swimmer_figure

    page = _swimmer_page(data_version, scope, filters, as_of, show, sort, number)
    mrd = overview_for(data_version, scope, filters, as_of).mrd
    shown = mrd.join(page.lanes.select("patient_id"), on="patient_id", how="semi")
    return swimmer_figure(page.lanes, shown, stamp=stamp)


def patient_visits(data_version: int, patient_id: str, as_of: date) -> pl.DataFrame:
    scope = current_scope()
    return _patient_visits(content_key(data_version, scope), scope, patient_id, as_of)


@st.cache_data(max_entries=64, show_spinner=False)
def _patient_visits(content: str, scope: SiteScope, patient_id: str, as_of: date) -> pl.DataFrame:
    from monitoring.outcomes import visits_with_day

    patients, visits = _snapshot(content, scope)
    return visits_with_day(
        patients.filter(pl.col("patient_id") == patient_id),
        visits.filter((pl.col("patient_id") == patient_id) & (pl.col("visit_date") <= as_of)),
    )


def _ingest(
    store: Store,
    files: tuple[tuple[str, bytes], ...],
    date_format: str,
    profile_text: str,
    *,
    dry_run: bool,
    user: str = "dashboard",
) -> IngestResult:
    """The canonical ingest, or the profiled one when a mapping profile is chosen."""
    from monitoring.ingest import ingest_tables
    from monitoring.ingest.profile import load_profile
    from monitoring.ingest.profiled import ingest_profiled_tables
    from monitoring.ingest.read import read_bytes

    raws = [read_bytes(content, name) for name, content in files]
    if profile_text:
        profile = load_profile(profile_text)
        return ingest_profiled_tables(store, raws, profile, dry_run=dry_run, user=user)
    return ingest_tables(store, raws, dry_run=dry_run, user=user, date_format=date_format)  # type: ignore[arg-type]


def dry_run(
    data_version: int,
    files: tuple[tuple[str, bytes], ...],
    date_format: str,
    profile_text: str = "",
) -> UploadPreview:
    """Validate uploads against the store without writing (a site-limited account's upload
    may touch only its sites' patients)."""
    return _dry_run(data_version, current_scope(), files, date_format, profile_text)


@st.cache_data(max_entries=8, show_spinner="Validating…")
def _dry_run(
    data_version: int,
    scope: SiteScope,
    files: tuple[tuple[str, bytes], ...],
    date_format: str,
    profile_text: str,
) -> UploadPreview:
    from monitoring.errors import RejectedUploadError
    from monitoring.ingest.preview import preview_of, rejected_preview

    try:
        return preview_of(_ingest(store_for(scope), files, date_format, profile_text, dry_run=True))
    except RejectedUploadError as exc:
        return rejected_preview(exc)


def commit_upload(
    files: tuple[tuple[str, bytes], ...], date_format: str, user: str, profile_text: str = ""
) -> str:
    """Write the validated uploads (all or nothing); the sentence of what was stored."""
    result = _ingest(get_store(), files, date_format, profile_text, dry_run=False, user=user)
    assert result.summary is not None
    return result.summary.sentence()


@st.cache_data(max_entries=8, show_spinner=False)
def saved_profiles(data_version: int) -> list[StoredProfile]:
    """The newest version of every saved mapping profile."""
    from monitoring.store.profiles import latest_profiles

    return latest_profiles(get_store())
