"""Institution sign-in in Chromium against a real OpenID provider (issue 16 item 9).

The provider (tests/oidc_provider.py: Authlib's authorization server, RS256 id_tokens with a
nonce, PKCE) and its own `ltfu serve` with institution sign-in configured in ltfu.toml and the
secrets in the environment run on 127.0.0.1 for this module only. One journey: the sign-in page
offers "Sign in with Test Hospital" → the provider's page → back signed in as a physician limited
to two sites → a reload stays signed in → sign out (the provider's end-session endpoint is
visited, Streamlit's identity cookie is gone, and putting the old cookie back does not sign in
again) → a person whose role claim is unknown is refused with one sentence and no session.
Every step is checked in the audit log, with the client address.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator

import polars as pl
import pytest
from playwright.sync_api import Browser, Page, expect

from monitoring import institution
from monitoring.store import Store
from tests.e2e.conftest import (
    TIMEOUT_MS,
    Server,
    _free_port,
    run_cli,
    serving,
    shot,
    sidebar,
    wait_idle,
)
from tests.oidc_provider import OidcProvider, Person, running_provider

pytestmark = pytest.mark.e2e

CLIENT_ID = "ltfu-dashboard"
PHYSICIAN = Person(
    sub="p-100",
    email="ann.physician@hospital.test",
    name="Ann Physician",
    claims={"groups": ["staff", "ltfu-physicians"], "ltfu_sites": ["SEA", "PHL"]},
)
UNKNOWN_ROLE = Person(
    sub="v-200",
    email="victor.visitor@hospital.test",
    name="Victor Visitor",
    claims={"groups": ["visitors"], "ltfu_sites": ["SEA"]},
)
SITE_FILE = """[thresholds]
institution_name = "Test Hospital"
institution_metadata_url = "{issuer}/.well-known/openid-configuration"
institution_client_id = "{client_id}"
institution_redirect_uri = "{url}/oauth2callback"
institution_sites_claim = "ltfu_sites"
institution_roles = {{ "ltfu-admins" = "admin", "ltfu-physicians" = "physician" }}
"""


@pytest.fixture(scope="module")
def institution_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Server, OidcProvider]]:
    """A small demo store, the provider, and `ltfu serve` configured for it (module-scoped)."""
    workdir = tmp_path_factory.mktemp("institution")
    db_url = f"sqlite:///{workdir / 'ltfu.db'}"
    run_cli(db_url, "demo", "--patients", "30")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    client_secret = secrets.token_urlsafe(24)
    with running_provider(
        [PHYSICIAN, UNKNOWN_ROLE], CLIENT_ID, client_secret, f"{url}/oauth2callback"
    ) as provider:
        site_file = workdir / "ltfu.toml"
        site_file.write_text(
            SITE_FILE.format(issuer=provider.issuer, client_id=CLIENT_ID, url=url), "utf-8"
        )
        env = {
            "LTFU_CONFIG": str(site_file),
            institution.CLIENT_SECRET_ENV: client_secret,
            institution.COOKIE_SECRET_ENV: secrets.token_urlsafe(32),
        }
        with serving(db_url, workdir, port=port, env=env, create_accounts=False) as server:
            yield server, provider


def _audit(server: Server, user: str) -> list[dict[str, object]]:
    entries: list[dict[str, object]] = json.loads(
        run_cli(server.db_url, "audit", "--user", user, "--format", "json")
    )
    return [{**e, "detail": json.loads(str(e["detail"]))} for e in reversed(entries)]


def _patients_at(server: Server, sites: set[str]) -> int:
    store = Store.open(server.db_url)
    try:
        patients = store.patients()
    finally:
        store.close()
    assert patients.height > patients.filter(pl.col("site").is_in(sorted(sites))).height > 0
    return patients.filter(pl.col("site").is_in(sorted(sites))).height


def _choose_on_provider(page: Page, provider: OidcProvider, who: Person) -> None:
    page.get_by_role("button", name="Sign in with Test Hospital").click()
    page.wait_for_url(f"{provider.issuer}/authorize?*")
    expect(page.get_by_role("heading", name="Test institution")).to_be_visible()
    page.get_by_role("button", name=f"{who.name} ({who.email})").click()


def test_institution_sign_in_journey(
    browser: Browser, institution_server: tuple[Server, OidcProvider]
) -> None:
    server, provider = institution_server
    context = browser.new_context(viewport={"width": 1400, "height": 3000})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        # the sign-in page: the local form and the institution's button
        page.goto(server.url + "/")
        expect(page.get_by_label("Username", exact=True)).to_be_visible()
        expect(page.get_by_role("button", name="Sign in with Test Hospital")).to_be_visible()
        wait_idle(page)
        shot(page, "institution-signin", "signed_out")

        # to the provider and back: signed in with the mapped role and sites
        _choose_on_provider(page, provider, PHYSICIAN)
        page.wait_for_url(f"{server.url}/**")
        sign_out = sidebar(page).get_by_role("button", name="Sign out")
        sign_out.wait_for()
        wait_idle(page)
        side = sidebar(page).inner_text().replace("\u2060", "")  # md() keeps @ from linking
        assert "ann.physician@hospital.test" in side and "physician" in side, side
        assert "Sites: PHL, SEA" in side and "Signed in with Test Hospital" in side, side
        assert provider.issued[-1]["nonce"], provider.issued  # Authlib checked it on the way
        expect(sidebar(page).get_by_test_id("stSidebarNav")).to_be_visible()
        # the sites claim is the account's site scope: the overview counts only PHL and SEA
        infused = page.get_by_test_id("stMetric").filter(has_text="Patients infused")
        scoped = _patients_at(server, {"PHL", "SEA"})
        expect(infused.get_by_test_id("stMetricValue")).to_have_text(str(scoped))
        shot(page, "institution-signed-in", "physician")

        # a reload keeps the session (the ltfu cookie, not a second use of the id_token)
        page.reload()
        sign_out.wait_for()
        wait_idle(page)
        assert "Sites: PHL, SEA" in sidebar(page).inner_text()
        identity_cookies = [c for c in context.cookies() if c["name"].startswith("_streamlit_user")]
        assert identity_cookies, context.cookies()

        # sign out: back to the sign-in page through the provider's end-session endpoint
        sign_out.click()
        expect(page.get_by_role("button", name="Sign in with Test Hospital")).to_be_visible()
        wait_idle(page)
        expect(sidebar(page).get_by_role("button", name="Sign out")).to_have_count(0)
        assert not [c for c in context.cookies() if c["name"].startswith("_streamlit_user")]
        assert len(provider.logouts) == 1 and provider.logouts[0]["client_id"] == CLIENT_ID
        # the old identity cookie put back (a copy) does not sign in again
        context.add_cookies(identity_cookies)  # type: ignore[arg-type]
        page.goto(server.url + "/")
        expect(page.get_by_role("button", name="Sign in with Test Hospital")).to_be_visible()
        wait_idle(page)
        expect(page.get_by_role("button", name="Sign out")).to_have_count(0)

        log = _audit(server, PHYSICIAN.email)
        actions = [(e["action"], e["detail"].get("via")) for e in log]  # type: ignore[union-attr]
        assert actions == [("sign_in", "institution"), ("sign_out", "institution")], log
        sign_in_detail = log[0]["detail"]
        assert sign_in_detail["role"] == "physician" and sign_in_detail["sites"] == "PHL, SEA"  # type: ignore[index]
        assert all(e["client"] for e in log), log

        # a role claim the monitor does not know: one sentence, audited, no session
        context.clear_cookies()
        page.goto(server.url + "/")
        _choose_on_provider(page, provider, UNKNOWN_ROLE)
        page.wait_for_url(f"{server.url}/**")
        expect(page.get_by_text(institution.NO_ROLE)).to_be_visible()
        wait_idle(page)
        expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
        expect(page.get_by_test_id("stSidebarNav")).to_have_count(0)
        shot(page, "institution-refused", "signed_out")
        refused = _audit(server, UNKNOWN_ROLE.email)
        assert [(e["action"], e["detail"]["reason"]) for e in refused] == [  # type: ignore[index]
            ("sign_in_refused", "unknown role")
        ], refused
        assert refused[0]["client"], refused
        users = run_cli(server.db_url, "user", "list")
        assert UNKNOWN_ROLE.email not in users and PHYSICIAN.email in users, users
    except Exception:
        shot(page, "FAILED-institution", "")
        print(server.log_tail())
        raise
    finally:
        context.close()
