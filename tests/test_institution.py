"""Institution sign-in (OpenID Connect) without a browser: settings and secrets, claims → role
and sites, one session per id_token, refusals audited (issue 16 item 9). The journey through a
real provider in Chromium is tests/e2e/test_institution_sign_in.py."""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitoring import accounts, institution
from monitoring.config import Config, load_config
from monitoring.errors import ConfigError, SignInError
from monitoring.store import Store
from monitoring.store.site_scope import SiteScope

SITE_FILE = """
[thresholds]
institution_name = "Test Hospital"
institution_metadata_url = "http://127.0.0.1:9/.well-known/openid-configuration"
institution_client_id = "ltfu-dashboard"
institution_redirect_uri = "http://127.0.0.1:8501/oauth2callback"
institution_sites_claim = "ltfu_sites"
institution_roles = { "ltfu-admins" = "admin", "ltfu-physicians" = "physician", "staff" = "viewer" }
"""


@pytest.fixture
def settings(tmp_path: Path) -> institution.InstitutionSettings:
    path = tmp_path / "ltfu.toml"
    path.write_text(SITE_FILE, encoding="utf-8")
    found = institution.settings_from(load_config(path))
    assert found is not None
    return found


def _claims(**extra: object) -> dict[str, object]:
    base: dict[str, object] = {
        "iss": "http://127.0.0.1:9",
        "sub": "u-1",
        "iat": int(time.time()),
        "nonce": os.urandom(8).hex(),
        "email": "ann@hospital.test",
        "groups": ["staff", "ltfu-physicians"],
        "ltfu_sites": ["SEA", "PHL"],
    }
    return {**base, **extra}


def _log(store: Store) -> list[tuple[str, str, dict[str, object]]]:
    frame = store.audit_entries()
    return [
        (r["user_name"], r["action"], json.loads(r["detail"])) for r in frame.iter_rows(named=True)
    ]


def test_settings_are_read_in_order_and_off_by_default(
    settings: institution.InstitutionSettings,
) -> None:
    assert institution.settings_from(Config()) is None
    assert settings.roles == (
        ("ltfu-admins", "admin"),
        ("ltfu-physicians", "physician"),
        ("staff", "viewer"),
    )


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('institution_roles = { "x" = "superuser" }', ["'institution_roles'", "'superuser'"]),
        ('institution_roles = ["admin"]', ["'institution_roles'", "table"]),
    ],
)
def test_a_bad_role_table_is_one_config_error(tmp_path: Path, text: str, words: list[str]) -> None:
    path = tmp_path / "ltfu.toml"
    path.write_text(f"[thresholds]\n{text}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert all(w in str(caught.value) for w in words), caught.value


def test_incomplete_settings_name_what_is_missing() -> None:
    with pytest.raises(ConfigError, match="institution_metadata_url"):
        institution.settings_from(Config(institution_name="Test Hospital"))


def test_secrets_come_from_the_environment_or_an_owner_only_file(
    settings: institution.InstitutionSettings, tmp_path: Path
) -> None:
    cookie = "c" * 40
    env = {institution.CLIENT_SECRET_ENV: "s3cret", institution.COOKIE_SECRET_ENV: cookie}
    assert institution.read_secrets(settings, env) == institution.InstitutionSecrets(
        "s3cret", cookie
    )
    with pytest.raises(ConfigError, match=institution.CLIENT_SECRET_ENV):
        institution.read_secrets(settings, {})
    path = tmp_path / "oidc-secrets.toml"
    path.write_text(f'client_secret = "from-file"\ncookie_secret = "{cookie}"\n', "utf-8")
    path.chmod(0o644)
    with_file = replace(settings, secrets_file=str(path))
    with pytest.raises(ConfigError, match="chmod 600"):
        institution.read_secrets(with_file, {})
    path.chmod(0o600)
    assert institution.read_secrets(with_file, {}).client_secret == "from-file"


def test_claims_map_to_role_and_sites(settings: institution.InstitutionSettings) -> None:
    person = institution.identity_from_claims(_claims(), settings)
    # ltfu-physicians is listed before staff: the first listed value the person holds decides
    assert (person.user_name, person.role, person.sites) == (
        "ann@hospital.test",
        "physician",
        SiteScope.of(["PHL", "SEA"]),
    )
    everywhere = institution.identity_from_claims(_claims(ltfu_sites="*"), settings)
    assert everywhere.sites.is_every_site
    # an administrator is never limited to sites (as with `ltfu user add`)
    admin = institution.identity_from_claims(_claims(groups=["ltfu-admins"]), settings)
    assert admin.role == "admin" and admin.sites.is_every_site
    assert institution.identity_from_claims(_claims(groups="staff"), settings).role == "viewer"


@pytest.mark.parametrize(
    ("claims", "sentence"),
    [
        ({"groups": ["visitors"]}, institution.NO_ROLE),
        ({"groups": None}, institution.NO_ROLE),
        ({"ltfu_sites": []}, institution.NO_SITES),
        ({"email": ""}, institution.NO_NAME),
    ],
)
def test_refusals_are_one_sentence(
    settings: institution.InstitutionSettings, claims: dict[str, object], sentence: str
) -> None:
    with pytest.raises(SignInError) as caught:
        institution.identity_from_claims(_claims(**claims), settings)
    assert str(caught.value) == sentence


def test_one_session_per_id_token_and_sign_out_is_audited(
    settings: institution.InstitutionSettings, store: Store
) -> None:
    claims = _claims()
    result = institution.session_from_claims(store, claims, settings)
    assert result is not None
    person, token = result
    signed_in = accounts.resolve_session(store, token)
    assert signed_in is not None and (signed_in.user_name, signed_in.role, signed_in.sites) == (
        "ann@hospital.test",
        "physician",
        SiteScope.of(["PHL", "SEA"]),
    )
    # the same id_token again (a reload without the ltfu cookie, or a copied identity cookie)
    assert institution.session_from_claims(store, claims, settings) is None
    institution.sign_out(store, token, person.user_name)
    assert accounts.resolve_session(store, token) is None
    assert institution.session_from_claims(store, claims, settings) is None
    # a password never signs in to an institution account
    with pytest.raises(SignInError):
        accounts.authenticate(store, "ann@hospital.test", "institution-sign-in")
    log = _log(store)
    sign_ins = [d for u, a, d in log if a == "sign_in" and u == "ann@hospital.test"]
    sign_outs = [d for u, a, d in log if a == "sign_out" and u == "ann@hospital.test"]
    assert len(sign_ins) == 1 and len(sign_outs) == 1
    assert sign_ins[0]["via"] == "institution" and sign_ins[0]["sites"] == "PHL, SEA"
    assert sign_ins[0]["role"] == "physician" and sign_ins[0]["client"] == "cli"
    assert sign_outs[0]["via"] == "institution"


def test_role_and_sites_follow_the_claims_at_each_sign_in(
    settings: institution.InstitutionSettings, store: Store
) -> None:
    first = institution.session_from_claims(store, _claims(), settings)
    assert first is not None
    assert accounts.get_user(store, "ann@hospital.test").sites == SiteScope.of(["PHL", "SEA"])  # type: ignore[union-attr]
    third = institution.session_from_claims(store, _claims(ltfu_sites=["CIN"]), settings)
    assert third is not None
    assert accounts.resolve_session(store, third[1]).sites == SiteScope.of(["CIN"])  # type: ignore[union-attr]
    second = institution.session_from_claims(store, _claims(groups=["ltfu-admins"]), settings)
    assert second is not None
    promoted = accounts.get_user(store, "ann@hospital.test")
    assert promoted is not None and promoted.role == "admin" and promoted.sites.is_every_site


def test_unknown_role_is_refused_audited_once_and_gets_no_session(
    settings: institution.InstitutionSettings, store: Store
) -> None:
    claims = _claims(groups=["visitors"])
    for _ in range(2):  # a reload shows the refusal again but audits it once
        with pytest.raises(SignInError, match="no role"):
            institution.session_from_claims(store, claims, settings)
    refused = [(u, d) for u, a, d in _log(store) if a == "sign_in_refused"]
    assert len(refused) == 1
    assert refused[0][0] == "ann@hospital.test"
    assert refused[0][1]["reason"] == "unknown role" and refused[0][1]["role_claim"] == ["visitors"]
    assert accounts.get_user(store, "ann@hospital.test") is None
    assert accounts.list_users(store).height == 0


def test_local_accounts_and_disabled_institution_accounts_are_not_taken_over(
    settings: institution.InstitutionSettings, store: Store
) -> None:
    accounts.add_user(store, "ann@hospital.test", "viewer", "a long local password 7")
    with pytest.raises(SignInError, match="local LTFU account"):
        institution.session_from_claims(store, _claims(), settings)
    assert accounts.get_user(store, "ann@hospital.test").role == "viewer"  # type: ignore[union-attr]
    other = _claims(email="bob@hospital.test", sub="u-2")
    assert institution.session_from_claims(store, other, settings) is not None
    accounts.disable_user(store, "bob@hospital.test")
    with pytest.raises(SignInError, match="disabled"):
        institution.session_from_claims(store, _claims(email="bob@hospital.test"), settings)


def test_an_old_id_token_is_not_accepted(
    settings: institution.InstitutionSettings, store: Store
) -> None:
    old = datetime.now(UTC) - accounts.SESSION_LIFETIME - timedelta(minutes=1)
    claims = _claims(iat=int(old.timestamp()))
    assert institution.session_from_claims(store, claims, settings) is None
    assert store.audit_entries().height == 0


def test_the_launcher_hands_streamlit_a_private_secrets_file_and_removes_it(
    settings: institution.InstitutionSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dashboard.institution_sign_in import streamlit_secrets_file

    config = load_config(tmp_path / "ltfu.toml")
    monkeypatch.setenv(institution.CLIENT_SECRET_ENV, "client-secret-value")
    monkeypatch.setenv(institution.COOKIE_SECRET_ENV, "k" * 40)
    with streamlit_secrets_file(config) as path:
        assert path is not None
        assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
        text = path.read_text("utf-8")
    assert not path.exists() and not path.parent.exists()
    assert "[auth]" in text and "[auth.institution]" in text
    assert 'client_secret = "client-secret-value"' in text
    assert 'redirect_uri = "http://127.0.0.1:8501/oauth2callback"' in text
    with streamlit_secrets_file(Config()) as off:
        assert off is None


def test_serve_stops_with_one_sentence_when_the_secrets_are_missing(tmp_path: Path) -> None:
    import subprocess
    import sys

    site = tmp_path / "ltfu.toml"
    site.write_text(SITE_FILE, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LTFU_OIDC_")}
    env["LTFU_CONFIG"] = str(site)
    done = subprocess.run(
        [sys.executable, "-m", "dashboard.server", "--port", "9"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert institution.CLIENT_SECRET_ENV in done.stderr and "Traceback" not in done.stderr
