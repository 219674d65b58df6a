"""Warm the dashboard's caches in the server process, so the first person to sign in after the
server starts or after a commit does not wait for the cohort to be derived.

A daemon thread started by `dashboard.server` polls the store's data version (one `SELECT` every
`dashboard_warm_up_seconds`) and, for every new version or day, computes what the Overview reads
first: the snapshot, everyone's outcomes, the Overview's tiles, lanes and MRD points, the swimmer
plot's first page, the open alert queue and the worklist. It calls the very loaders the pages call (`dashboard.data`,
`dashboard.day_data`), so the results land in the same `st.cache_resource` entries, keyed on the
data version as before: a page run always reads the version committed when it starts, warmed or
not, and one that asks for a value the thread is computing waits for it instead of computing it
twice (Streamlit holds one lock per cache key).

The scopes warmed: every site (admins and unrestricted accounts), plus the few site-limited
scopes that signed in since the server started (`remember_scope`). A failure is logged as its
type only (no data) and retried at the next poll; it never stops the server, and a page then
computes what it needs itself.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import sys
import threading
import time
from collections import OrderedDict
from datetime import date

from monitoring.store.site_scope import SiteScope

OVERVIEW_DUE_DAYS = 7  # the Overview's "Due this week" worklist
_MAX_LIMITED_SCOPES = 4  # site-limited scopes warmed besides every site (most recent first)
_limited: OrderedDict[SiteScope, None] = OrderedDict()
_limited_lock = threading.Lock()


def remember_scope(scope: SiteScope) -> None:
    """A site-limited account signed in: warm its scope after the next commits too."""
    if scope.is_every_site or not scope.sites:
        return
    with _limited_lock:
        _limited[scope] = None
        _limited.move_to_end(scope, last=False)
        while len(_limited) > _MAX_LIMITED_SCOPES:
            _limited.popitem()


def scopes() -> list[SiteScope]:
    with _limited_lock:
        return [SiteScope.every(), *_limited]


def warm_scope(scope: SiteScope, day: date) -> int:
    """Compute and cache what the Overview reads first for `scope` as of `day`; the data
    version warmed (read once, before anything else, so everything is of that version)."""
    from dashboard import data, day_data
    from dashboard.components import Stamp
    from dashboard.filters import Filters
    from monitoring.swimmer import SHOW, SORT

    everyone = Filters()
    version = warm_first_content(scope, day)
    # the swimmer plot's first page as the Overview opens (its first filter and order)
    show, sort = next(iter(SHOW)), next(iter(SORT))
    stamp = Stamp(version, day, everyone.describe()).text()
    data.swimmer_pages_for(version, scope, everyone, day).figure(show, sort, 1, stamp)
    data.open_alert_counts_for(version, scope, everyone, day)
    day_data.due_count_for(version, scope, everyone, day, OVERVIEW_DUE_DAYS)
    return version


def warm_first_content(scope: SiteScope, day: date) -> int:
    """What the first page after sign-in shows first, cached for `scope` as of `day`: the
    sidebar's options and the Overview's tiles (the snapshot, everyone's outcomes, the MRD
    points); the data version warmed. Polars and `monitoring` only: no page module (pandas,
    plotly) is needed, so this runs while another thread imports them."""
    from dashboard import data
    from dashboard.filters import Filters

    version = data.store_for(scope).data_version()
    data.snapshot_for(version, scope)
    data.filter_options_for(version, scope)
    data.overview_for(version, scope, Filters(), day)
    data.held_for(version, scope)  # read by every filter change
    return version


def warm_once(day: date | None = None) -> dict[SiteScope, int]:
    """Warm every scope once; the version warmed per scope."""
    today = day or date.today()
    return {scope: warm_scope(scope, today) for scope in scopes()}


def _import_page_modules() -> None:
    """What a page run imports, imported once here instead of by the first sign-in's run (in
    app.py's order: plotly looks pandas up in sys.modules without importing it)."""
    import pandas  # noqa: F401
    import plotly.graph_objects  # noqa: F401

    import dashboard.charts
    import dashboard.swimmer_view  # noqa: F401
    import monitoring.alert_queue
    import monitoring.cohort_views
    import monitoring.durability
    import monitoring.worklist  # noqa: F401


def freeze_long_lived() -> None:
    """Move the objects made so far, which live as long as the server (modules, classes,
    functions, the first cached loaders), out of the garbage collector's sight (`gc.freeze`).
    The server's warm-up calls it twice: once the pages' modules are imported, and once after
    its first warm-up (`WarmUp.run`).

    Streamlit runs a full collection after every script run (`runner.postScriptGC`). It
    traversed these 190 000 objects each time: 0.3-1.3 s of CPU on this 2-core machine, holding
    the interpreter lock while the browser drew the page the run had just sent (and delaying
    the next run, and the warm-up the first page waits for). Objects made later are still
    collected as before; the frozen ones are freed by reference counting when nothing holds
    them, but a reference cycle among them is never collected (a bounded, one-time amount:
    they were made once, at start)."""
    gc.collect()  # what is garbage already is not frozen
    gc.freeze()


def _say(text: str) -> None:
    print(f"ltfu dashboard: {text}", file=sys.stderr, flush=True)


class WarmUp(threading.Thread):
    """The polling thread (`start_warm_up`); `stop()` ends it at its next poll."""

    def __init__(self, poll_seconds: float, *, freeze: bool = False) -> None:
        super().__init__(name=_THREAD_NAME, daemon=True)
        self.poll_seconds = poll_seconds
        self.freeze = freeze  # the server's own process only (`freeze_long_lived`)
        self._stop_event = threading.Event()
        self.warmed: dict[SiteScope, tuple[int, date]] = {}

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        # The pages' imports hold the interpreter lock; polars mostly releases it. So the data
        # of the first page's tiles is read and derived on this thread while another imports
        # (on two cores, a sign-in right after the start waited for both one after the other).
        importer = threading.Thread(
            target=self._import_pages, name=f"{_THREAD_NAME}-imports", daemon=True
        )
        importer.start()
        self.first_content()
        importer.join()
        frozen_after_warm_up = False
        while not self._stop_event.is_set():
            self.poll()
            if self.freeze and not frozen_after_warm_up:
                freeze_long_lived()  # and what the first warm-up made
                frozen_after_warm_up = True
            self._stop_event.wait(self.poll_seconds)

    def _import_pages(self) -> None:
        try:
            _import_page_modules()
        except Exception as exc:  # the pages import them again and show the error themselves
            _say(f"warm-up could not import the pages ({type(exc).__name__})")
        if self.freeze:
            freeze_long_lived()  # the imports' objects: the runs meanwhile no longer walk them

    def first_content(self) -> None:
        """`warm_first_content` for every site, today (what the first sign-in shows first;
        `poll` then warms the rest). A failure is left to `poll`, which logs it."""
        with contextlib.suppress(Exception):  # poll tries again at once and logs the failure
            warm_first_content(SiteScope.every(), date.today())

    def poll(self) -> None:
        """Warm every scope whose data version or day changed since it was last warmed."""
        from dashboard import data

        for scope in scopes():
            today = date.today()
            try:
                version = data.store_for(scope).data_version()
                if self.warmed.get(scope) == (version, today):
                    continue
                started = time.perf_counter()
                warmed = warm_scope(scope, today)
            except Exception as exc:  # never the server's end: the pages compute on demand
                _say(f"warm-up failed ({type(exc).__name__}); pages compute on demand")
                continue
            self.warmed[scope] = (warmed, today)
            seconds = time.perf_counter() - started
            which = "every site" if scope.is_every_site else "a site-limited scope"
            _say(f"data version {warmed} ready for {which} ({seconds:.1f} s)")


_THREAD_NAME = "ltfu-warm-up"
_CONTEXT_LOGGER = "streamlit.runtime.scriptrunner_utils.script_run_context"


class _NoContextWarningFromWarmUp(logging.Filter):
    """Streamlit warns "missing ScriptRunContext! This warning can be ignored…" whenever a
    cached loader runs outside a page run, which is what the warm-up thread is for: in the
    server's log it read like a fault. Other threads still warn."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.threadName == _THREAD_NAME and "missing ScriptRunContext" in str(record.msg)
        )


def quiet_missing_context() -> None:
    logger = logging.getLogger(_CONTEXT_LOGGER)
    if not any(isinstance(f, _NoContextWarningFromWarmUp) for f in logger.filters):
        logger.addFilter(_NoContextWarningFromWarmUp())


def start_warm_up(poll_seconds: float, *, freeze: bool = False) -> WarmUp | None:
    """Start the warm-up thread (None when `poll_seconds` is 0: warm-up off); `freeze`: the
    server's process, whose long-lived objects it freezes after the first warm-up."""
    if poll_seconds <= 0:
        return None
    quiet_missing_context()
    thread = WarmUp(poll_seconds, freeze=freeze)
    thread.start()
    return thread
