"""The dashboard's side of institution sign-in (OpenID Connect through `st.login`).

`ltfu serve` (dashboard/server.py) hands Streamlit its `[auth]` secrets in a private file built
by `streamlit_auth_toml` from ltfu.toml and the secrets (monitoring/institution.py); Streamlit
and Authlib then run the redirect to the provider, the code exchange and the id_token checks
(signature, issuer, audience, nonce) and put the claims in `st.user`. This module turns those
claims into an ltfu session once (`monitoring.institution.session_from_claims`), keeps the sites
of the identity beside it, and ends both at sign-out (`st.logout` also clears Streamlit's
identity cookie and visits the provider's end-session endpoint).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import streamlit as st

from dashboard.text import md
from monitoring import institution
from monitoring.config import Config, get_config
from monitoring.errors import ConfigError, SignInError
from monitoring.institution import Identity, InstitutionSecrets, InstitutionSettings
from monitoring.store import Store
from monitoring.store.private_files import write_private_text

PROVIDER = "institution"  # the [auth.institution] section Streamlit reads
_IDENTITY_KEY = "ltfu_institution_identity"


def streamlit_auth_toml(settings: InstitutionSettings, secrets: InstitutionSecrets) -> str:
    """Streamlit's `[auth]` secrets for the provider (written to an owner-only file)."""

    def value(text: str) -> str:
        return json.dumps(text)  # a JSON string is a valid TOML basic string

    return "\n".join(
        [
            "[auth]",
            f"redirect_uri = {value(settings.redirect_uri)}",
            f"cookie_secret = {value(secrets.cookie_secret)}",
            f"[auth.{PROVIDER}]",
            f"client_id = {value(settings.client_id)}",
            f"client_secret = {value(secrets.client_secret)}",
            f"server_metadata_url = {value(settings.metadata_url)}",
            "",
        ]
    )


@contextmanager
def streamlit_secrets_file(config: Config) -> Iterator[Path | None]:
    """An owner-only secrets file in a private temporary folder for as long as the server runs
    (None when institution sign-in is off); ConfigError when its settings or secrets are not
    complete, so `ltfu serve` stops with one sentence instead of serving a broken button."""
    found = institution.settings_from(config)
    if found is None:
        yield None
        return
    text = streamlit_auth_toml(found, institution.read_secrets(found))
    folder = Path(tempfile.mkdtemp(prefix="ltfu-auth-"))  # mode 0700
    try:
        yield write_private_text(folder / "secrets.toml", text)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def settings() -> InstitutionSettings | None:
    """The settings when institution sign-in is on and Streamlit has its [auth] secrets."""
    try:
        found = institution.settings_from(get_config())
        return found if found is not None and "auth" in st.secrets else None
    except (ConfigError, FileNotFoundError):
        return None
    except Exception:  # an unreadable secrets file: the local sign-in still works
        return None


def _claims() -> Mapping[str, object] | None:
    try:
        if not st.user.is_logged_in:
            return None
        return dict(st.user.to_dict())
    except Exception:  # no browser connection (AppTest, bare mode)
        return None


def identity() -> Identity | None:
    """The institution identity of this session's account (with its sites), if any."""
    value = st.session_state.get(_IDENTITY_KEY)
    return value if isinstance(value, Identity) else None


def new_session(store: Store) -> str | None:
    """A session token when the browser just came back from the provider with an id_token
    that has not been used yet; None otherwise. A refusal's sentence goes to `signin_error`."""
    found = settings()
    claims = _claims() if found is not None else None
    if found is None or claims is None:
        return None
    try:
        result = institution.session_from_claims(store, claims, found)
    except SignInError as refused:
        st.session_state["signin_error"] = str(refused)
        return None
    if result is None:
        return None
    person, token = result
    st.session_state[_IDENTITY_KEY] = person
    return token


def remember(user_name: str) -> None:
    """After a reload: the identity (and sites) again from Streamlit's identity cookie, when it
    belongs to the signed-in account; forgotten otherwise."""
    current = identity()
    if current is not None and current.user_name == user_name:
        return
    st.session_state.pop(_IDENTITY_KEY, None)
    found = settings()
    claims = _claims() if found is not None else None
    if found is None or claims is None:
        return
    try:
        person = institution.identity_from_claims(claims, found)
    except SignInError:
        return
    if person.user_name == user_name:
        st.session_state[_IDENTITY_KEY] = person


def sign_in_button() -> None:
    found = settings()
    if found is not None and st.button(f"Sign in with {md(found.name)}", icon=":material/badge:"):
        st.login(PROVIDER)


def sign_out(store: Store, token: str | None, user_name: str) -> bool:
    """End an institution session (True) or leave a local one alone (False)."""
    person = identity()
    if person is None or person.user_name != user_name:
        return False
    institution.sign_out(store, token, user_name)
    st.session_state.pop(_IDENTITY_KEY, None)
    if _claims() is not None:
        st.logout()
    return True
