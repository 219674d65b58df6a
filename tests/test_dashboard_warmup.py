"""The server's warm-up (`dashboard/warmup.py`): the first page after a commit is computed before
anyone asks, a page never shows data older than the committed version, and a failed warm-up never
ends the server. AppTest runs the app in this process, so it shares the caches the warm-up fills.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import polars as pl
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

import dashboard.charts
import monitoring.cohort_views
import monitoring.outcomes
import monitoring.swimmer
from dashboard import warmup
from monitoring import accounts
from monitoring.ingest import ingest_files
from monitoring.store import Store
from monitoring.store.site_scope import SiteScope
from monitoring.synthetic import make_cohort, write_csv

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")
PASSWORD = "a long test password"

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def cohort(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Store, Path]]:
    """A store holding 40 of a 50-patient cohort, an admin, and the CSVs of all 50."""
    everyone = write_csv(make_cohort(50, seed=7), tmp_path / "all")
    patients, visits = (pl.read_csv(path, infer_schema=False) for path in everyone)
    first = patients.head(40)
    part = tmp_path / "part"
    part.mkdir()
    first.write_csv(part / "patients.csv")
    visits.join(first.select("patient_id"), on="patient_id", how="semi").write_csv(
        part / "visits.csv"
    )
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = Store.open(url)
    ingest_files(store, [part / "patients.csv", part / "visits.csv"], user="test")
    accounts.add_user(store, "admin", "admin", PASSWORD + " for the admin")
    monkeypatch.setenv("LTFU_DATABASE_URL", url)
    st.cache_data.clear()
    st.cache_resource.clear()
    yield store, tmp_path / "all"
    st.cache_data.clear()
    st.cache_resource.clear()
    store.close()


def _overview(store: Store) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["ltfu_token"] = accounts.create_session(store, "admin")
    at.switch_page("views/overview.py")
    return at


def _shown(at: AppTest) -> dict[str, str]:
    """The Overview's tiles and the swimmer plot's caption."""
    assert not at.exception, at.exception
    tiles = {m.label: str(m.value) for m in at.main.metric}
    return tiles | {"swimmer": next(c.value for c in at.main.caption if "Lanes" in c.value)}


def _no_derivation(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the warm-up computed may not be computed by the page again."""

    def refuse(*_args: object, **_kwargs: object) -> pl.DataFrame:
        raise AssertionError("the page computed what the warm-up should have")

    for module, name in (
        (monitoring.outcomes, "derive_outcomes"),  # everyone's outcomes
        (monitoring.outcomes, "visits_with_day"),  # the MRD points
        (monitoring.cohort_views, "cohort_tiles"),  # the tiles
        (monitoring.swimmer, "swimmer_page"),  # the swimmer's first page
        (dashboard.charts, "swimmer_figure"),  # and its figure
    ):
        monkeypatch.setattr(module, name, refuse)


def _wait_warmed(thread: warmup.WarmUp, version: int) -> None:
    deadline = time.monotonic() + 120
    while thread.warmed.get(SiteScope.every(), (0, None))[0] != version:
        assert thread.is_alive() and time.monotonic() < deadline, "not warmed in time"
        time.sleep(0.05)


def test_the_warmed_page_is_the_page_and_derives_nothing(
    cohort: tuple[Store, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, _csv = cohort
    expected = _shown(_overview(store).run())  # computed by the page itself
    assert expected["Patients infused"] == "40"
    st.cache_data.clear()
    st.cache_resource.clear()
    assert warmup.warm_once() == {SiteScope.every(): store.data_version()}
    _no_derivation(monkeypatch)  # the first page after the warm-up only reads
    assert _shown(_overview(store).run()) == expected


def test_a_commit_through_another_process_is_shown_at_once_and_warmed(
    cohort: tuple[Store, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, everyone = cohort
    thread = warmup.start_warm_up(0.05)
    assert thread is not None
    try:
        _wait_warmed(thread, store.data_version())
        at = _overview(store).run()
        assert _shown(at)["Patients infused"] == "40"
        subprocess.run(
            [sys.executable, "-m", "monitoring.cli", "ingest", *map(str, everyone.iterdir())],
            check=True,
            capture_output=True,
        )
        committed = store.data_version()
        # the next run shows the commit whether or not the warm-up has reached it
        assert _shown(at.run())["Patients infused"] == "50"
        _wait_warmed(thread, committed)
        _no_derivation(monkeypatch)
        assert _shown(_overview(store).run())["Patients infused"] == "50"
    finally:
        thread.stop()
        thread.join(timeout=30)


def test_a_failing_warm_up_never_ends_the_server(
    cohort: tuple[Store, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    store, _csv = cohort

    def broken(scope: SiteScope, day: date) -> int:
        raise OSError("disk gone: CART-000001 must not be logged")

    monkeypatch.setattr(warmup, "warm_scope", broken)
    thread = warmup.start_warm_up(0.05)
    assert thread is not None
    try:
        said, deadline = "", time.monotonic() + 60  # the first poll follows the first content
        while "warm-up failed" not in said and time.monotonic() < deadline:
            time.sleep(0.1)
            said += capsys.readouterr().err
        time.sleep(0.3)  # and polls again after it
        assert thread.is_alive()
        said += capsys.readouterr().err
        assert "warm-up failed (OSError); pages compute on demand" in said
        assert "CART" not in said  # the error's type only, never its text
        assert _shown(_overview(store).run())["Patients infused"] == "40"  # the page computes
    finally:
        thread.stop()
        thread.join(timeout=30)


def test_site_limited_scopes_that_signed_in_are_warmed(cohort: tuple[Store, Path]) -> None:
    store, _csv = cohort
    site = str(store.patients()["site"].drop_nulls()[0])
    limited = SiteScope.of([site])
    warmup.remember_scope(limited)
    try:
        assert set(warmup.warm_once()) == {SiteScope.every(), limited}
        from dashboard import data
        from dashboard.filters import Filters

        version = store.data_version()
        lanes = data.overview_for(version, limited, Filters(), date.today()).lanes
        sites = store.patients().filter(pl.col("patient_id").is_in(lanes["patient_id"].implode()))
        assert lanes.height > 0 and set(sites["site"].to_list()) == {site}
    finally:
        warmup._limited.clear()


def test_an_acknowledgement_derives_nothing_again(
    cohort: tuple[Store, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An acknowledgement moves the data version but not patients or visits: the next page
    reads the outcomes, tiles and MRD points derived before it (at 100 000 patients deriving
    them again took seconds, and each acknowledgement kept another copy of the cohort)."""
    from monitoring.alert_queue import acknowledge, alerts_with_status

    store, _csv = cohort
    before = _shown(_overview(store).run())
    open_alerts = alerts_with_status(store, date.today(), "open")
    assert open_alerts.height > 0
    version = store.data_version()
    acknowledge(store, str(open_alerts["alert_id"][0]), "admin", "seen")
    assert store.data_version() > version
    for module, name in (
        (monitoring.outcomes, "derive_outcomes"),
        (monitoring.outcomes, "visits_with_day"),
        (monitoring.cohort_views, "cohort_tiles"),
    ):
        monkeypatch.setattr(module, name, _refuse)
    after = _shown(_overview(store).run())
    assert after["Patients infused"] == before["Patients infused"]
    assert int(after["Open alerts"]) == int(before["Open alerts"]) - 1


def _refuse(*_args: object, **_kwargs: object) -> pl.DataFrame:
    raise AssertionError("derived again after an acknowledgement")


def test_each_scope_keeps_the_two_newest_contents_only(
    cohort: tuple[Store, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each upload is a new content: older copies of the cohort are dropped, not piled up."""
    from dashboard import data

    store, _csv = cohort
    reads: list[int] = []
    real = store.snapshot

    def counted() -> tuple[int, pl.DataFrame, pl.DataFrame]:
        reads.append(1)
        return real()

    monkeypatch.setattr(Store, "snapshot", lambda _self: counted())
    every = SiteScope.every()
    for content in ("first", "second", "third"):
        data._snapshot(content, every)
    assert len(reads) == 3
    data._snapshot("third", every)
    data._snapshot("second", every)
    assert len(reads) == 3  # the two newest are kept
    data._snapshot("first", every)
    assert len(reads) == 4  # the oldest was dropped
    data._kept.clear()


def test_the_warm_up_thread_logs_no_missing_context_warning_and_others_still_do():
    import logging
    import threading

    from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    logger = logging.getLogger(warmup._CONTEXT_LOGGER)
    handler = Keep(level=logging.WARNING)
    logger.addHandler(handler)
    try:
        warmup.quiet_missing_context()
        for name in (warmup._THREAD_NAME, "another-thread"):
            thread = threading.Thread(target=get_script_run_ctx, name=name)
            thread.start()
            thread.join()
    finally:
        logger.removeHandler(handler)
    assert [r.threadName for r in seen if "missing ScriptRunContext" in r.msg] == ["another-thread"]


def test_the_servers_long_lived_objects_are_frozen_after_the_imports_and_the_first_warm_up() -> (
    None
):
    """Streamlit collects garbage fully after every script run; the server's own warm-up thread
    (and only the server's: never a test process) freezes what lives as long as the server,
    so those collections do not traverse it each time: once the pages' modules are imported
    (the runs during the first warm-up no longer walk them), and once after the first warm-up,
    never again."""
    code = (
        "import gc, json, sys, threading, time\n"
        "from dashboard import warmup\n"
        "freezes = []\n"
        "real_freeze = gc.freeze\n"
        "def counted_freeze():\n"
        "    freezes.append((gc.get_freeze_count(), 'pandas' in sys.modules, polls.count(True)))\n"
        "    real_freeze()\n"
        "gc.freeze = counted_freeze\n"
        "polls = []\n"
        "polled = threading.Event()\n"
        "def poll(self):\n"
        "    polls.append(self.freeze); polled.set()\n"
        "warmup.WarmUp.poll = poll\n"
        "warmup.WarmUp.first_content = lambda self: None\n"
        "quiet = warmup.start_warm_up(0.05)\n"
        "polled.wait(60); time.sleep(0.2); quiet.stop(); quiet.join(5)\n"
        "print(len(freezes), gc.get_freeze_count())\n"
        "server = warmup.start_warm_up(0.05, freeze=True)\n"
        "deadline = time.monotonic() + 60\n"
        "while polls.count(True) < 5 and time.monotonic() < deadline: time.sleep(0.05)\n"
        "server.stop(); server.join(5)\n"
        "print(polls.count(True), len(freezes), gc.get_freeze_count())\n"
        "print(json.dumps(freezes))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    quiet_line, server_line, each_line = done.stdout.splitlines()
    # a warm-up without freeze (tests, AppTest) leaves the collector alone
    assert [int(n) for n in quiet_line.split()] == [0, 0]
    server_polls, freezes, frozen = (int(n) for n in server_line.split())
    assert server_polls >= 5  # the server's warm-up polled 5 times...
    assert freezes == 2  # ...and froze twice:
    first, second = json.loads(each_line)  # (objects frozen before, pandas imported, polls)
    assert first[1:] == [True, 0]  # after the pages' imports, before the first poll
    assert second[2] == 1  # and after the first poll only
    assert frozen > 10_000  # the imports' modules, classes and functions
