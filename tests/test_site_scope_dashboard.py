"""The dashboard's loaders read through the signed-in account's site scope, and the scope is
part of every cache key: a figure cached for one site's viewer is never served to another's.

The loaders are called directly (Streamlit's caches work without a running app); the signed-in
account is what `dashboard.site_scope.signed_in` returns, as app.py leaves it for every run."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import polars as pl
import pytest
import streamlit as st

from dashboard import data, day_data, site_scope
from dashboard.filters import Filters
from monitoring.accounts import Account
from monitoring.analysis_registry import DurabilityRequest
from monitoring.errors import RejectedUploadError
from monitoring.store import Store
from monitoring.store.site_scope import SiteScope
from tests.conftest import PATIENTS_HEADER, write_csv
from tests.test_site_scope import A_IDS, AS_OF, B_IDS, _load

B_SITE = {"B-1", "B-2"}


@pytest.fixture
def two_sites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = Store.open(url)
    _load(store, tmp_path)
    monkeypatch.setenv("LTFU_DATABASE_URL", url)
    st.cache_data.clear()
    st.cache_resource.clear()
    yield store
    st.cache_data.clear()
    st.cache_resource.clear()
    store.close()


def _as(monkeypatch: pytest.MonkeyPatch, sites: SiteScope | None) -> None:
    """Sign in (for the loaders) as a viewer limited to `sites`; None: nobody signed in."""
    account = None if sites is None else Account("v", "viewer", False, 0, None, "", sites)
    monkeypatch.setattr(site_scope, "signed_in", lambda: account)


def _ids(frame: pl.DataFrame) -> set[str]:
    return set(frame["patient_id"].to_list())


def _everything(version: int) -> dict[str, set[str]]:
    """The patient ids in what every loader returns for the signed-in account."""
    request = DurabilityRequest(endpoint="efs", as_of=AS_OF)
    overview = data.overview(version, Filters(), AS_OF)
    return {
        "snapshot": _ids(data.snapshot(version)[0]) | _ids(data.snapshot(version)[1]),
        "cohort": _ids(data.cohort(version, Filters())[0]),
        "outcomes": _ids(data.outcomes(version, Filters(), AS_OF)),
        "overview": _ids(overview.lanes) | _ids(overview.mrd),
        "alerts": _ids(data.alerts(version, AS_OF, "all")),
        "filtered alerts": _ids(data.filtered_alerts(AS_OF, "all", Filters())),
        "queue": _ids(day_data.queue(version, AS_OF, "all")),
        "worklist": _ids(day_data.worklist(version, AS_OF, 400)),
        "patient B-1": _ids(data.patient_visits(version, "B-1", AS_OF)),
        "patient A-1": _ids(data.patient_visits(version, "A-1", AS_OF)),
        "at risk": {str(n) for n in [data.durability(version, Filters(), request)[1].groups[0].n]},
    }


def test_each_account_gets_its_own_sites_from_every_loader(
    two_sites: Store, monkeypatch: pytest.MonkeyPatch
):
    version = two_sites.data_version()
    _as(monkeypatch, SiteScope.of({"A"}))
    site_a = _everything(version)  # fills every cache for site A first
    _as(monkeypatch, SiteScope.of({"B"}))
    site_b = _everything(version)  # the same keys but the scope: must not be A's entries
    _as(monkeypatch, SiteScope.every())
    every = _everything(version)
    _as(monkeypatch, None)
    nobody = data.snapshot(version)

    for name, ids in site_a.items():
        if name != "at risk":
            assert ids <= A_IDS, name
    assert site_a["snapshot"] == A_IDS and site_a["patient B-1"] == set()
    assert site_a["alerts"] and site_a["queue"] == site_a["alerts"]
    for name, ids in site_b.items():
        if name != "at risk":
            assert ids <= B_SITE, name
    assert site_b["snapshot"] == B_SITE and site_b["patient A-1"] == set()
    assert every["snapshot"] == A_IDS | B_IDS and every["alerts"] >= {"A-1", "B-1"}
    assert (site_a["at risk"], site_b["at risk"], every["at risk"]) == ({"2"}, {"2"}, {"5"})
    assert nobody[0].is_empty() and nobody[1].is_empty()
    assert day_data.latest_visit_date(version) is None  # nobody signed in: no visit at all
    _as(monkeypatch, SiteScope.of({"A"}))
    assert day_data.latest_visit_date(version) == date(2024, 6, 7)  # A's latest, not B's


def test_the_dry_run_of_an_upload_is_checked_against_the_signed_in_scope(
    two_sites: Store, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    version = two_sites.data_version()
    upload = write_csv(
        tmp_path / "p.csv", PATIENTS_HEADER, "B-2,B,M,5,tisagenlecleucel,2024-04-10,,,"
    )
    files = (("p.csv", upload.read_bytes()),)
    _as(monkeypatch, SiteScope.every())
    assert not data.dry_run(version, files, "ISO").rejected
    _as(monkeypatch, SiteScope.of({"A"}))
    preview = data.dry_run(version, files, "ISO")  # the same file and version: not the cache
    assert preview.rejected
    assert preview.report.filter(pl.col("column") == "site")["patient_id"].to_list() == ["B-2"]
    with pytest.raises(RejectedUploadError):
        data.commit_upload(files, "ISO", "dm-a")
    stored = two_sites.snapshot()[1].filter(pl.col("patient_id") == "B-2")
    assert stored["age_at_infusion_years"].to_list() == [4]


def test_an_admin_limits_an_account_to_sites_on_the_accounts_page(two_sites: Store):
    from streamlit.testing.v1 import AppTest

    from monitoring import accounts

    accounts.add_user(two_sites, "boss", "admin", "a long admin passphrase")
    accounts.add_user(two_sites, "viewer-1", "viewer", "a long viewer passphrase")
    app = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")
    at = AppTest.from_file(app, default_timeout=120)
    at.session_state["ltfu_token"] = accounts.create_session(two_sites, "boss")
    at.switch_page("views/accounts.py").run()
    at.selectbox(key="acct_user").set_value("viewer-1")
    at.text_input(key="acct_sites").input("A")
    next(b for b in at.button if b.label == "Set sites").click().run()
    assert not at.exception
    assert accounts.get_user(two_sites, "viewer-1").sites == SiteScope.of({"A"})  # type: ignore[union-attr]
    at.text_input(key="acct_sites").input("")
    next(b for b in at.button if b.label == "Set sites").click().run()
    assert accounts.get_user(two_sites, "viewer-1").sites.is_every_site  # type: ignore[union-attr]


def test_the_site_filter_offers_a_limited_account_only_its_sites(two_sites: Store):
    from streamlit.testing.v1 import AppTest

    from monitoring import accounts

    accounts.add_user(
        two_sites, "viewer-a", "viewer", "a long viewer passphrase", sites=SiteScope.of({"A"})
    )
    accounts.add_user(two_sites, "viewer-all", "viewer", "a long viewer passphrase")
    app = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")
    seen = {}
    for name in ("viewer-a", "viewer-all"):
        at = AppTest.from_file(app, default_timeout=120)
        at.session_state["ltfu_token"] = accounts.create_session(two_sites, name)
        at.run()
        assert not at.exception
        site = at.sidebar.multiselect[0]
        seen[name] = (site.placeholder, list(site.options))
    assert seen["viewer-a"] == ("All your sites", ["A"])
    assert seen["viewer-all"] == ("All sites", ["A", "B"])
