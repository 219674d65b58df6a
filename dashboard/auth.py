"""Sign-in, sign-out and the role check every page and action goes through.

The session token lives server-side (`monitoring.accounts`, only its hash is stored) and in a
browser cookie so that a page reload stays signed in. Streamlit cannot set cookies from the
server, so the browser sets it: a tiny script in `st.html` writes `document.cookie` once after
sign-in (and clears it on sign-out); `st.context.cookies` reads it back on the next connection.
Tests skip the browser by putting a token from `accounts.create_session` into
`st.session_state["ltfu_token"]`.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import streamlit
import streamlit as st

from dashboard import institution_sign_in, upload_gate
from dashboard.site_scope import ACCOUNT_KEY
from dashboard.text import md
from monitoring import accounts, audit
from monitoring.accounts import Account
from monitoring.config import get_config
from monitoring.errors import PermissionDeniedError
from monitoring.store import Store

COOKIE = "ltfu_session"
TOKEN_KEY = "ltfu_token"
_SET_COOKIE_KEY = "ltfu_set_cookie"
_CLEAR_COOKIE_KEY = "ltfu_clear_cookie"
_ACCOUNT_KEY = ACCOUNT_KEY  # the loaders read the account's site scope from it
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{20,100}$")


def _cookie_token() -> str | None:
    try:
        token = st.context.cookies.get(COOKIE)
    except Exception:  # no browser connection (AppTest, bare mode)
        return None
    return token if isinstance(token, str) and _TOKEN_SHAPE.match(token) else None


def current_account(store: Store) -> Account | None:
    """The signed-in account for this run (checked against the database on every run)."""
    if st.session_state.get(_CLEAR_COOKIE_KEY):
        token = st.session_state.get(TOKEN_KEY)
    else:
        token = st.session_state.get(TOKEN_KEY) or _cookie_token()
    account = accounts.resolve_session(store, token)
    if account is None and not st.session_state.get(_CLEAR_COOKIE_KEY):
        # back from the institution's provider with a fresh id_token: a new ltfu session
        token = institution_sign_in.new_session(store)
        account = accounts.resolve_session(store, token)
        if account is not None:
            st.session_state[_SET_COOKIE_KEY] = token
    if account is None:
        st.session_state.pop(TOKEN_KEY, None)
    else:
        st.session_state[TOKEN_KEY] = token
        institution_sign_in.remember(account.user_name)
    st.session_state[_ACCOUNT_KEY] = account
    _gate_uploads(account)
    return account


def _gate_uploads(account: Account | None) -> None:
    """Tell the server's upload guard whether this session may send files (dashboard/server.py
    refuses uploads for every other session before reading them)."""
    try:
        from streamlit.runtime import Runtime
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        context = get_script_run_ctx()
        if context is None:
            return
        live = Runtime.instance().is_active_session if Runtime.exists() else None
    except Exception:  # no runtime (bare mode)
        return
    allowed = account is not None and accounts.allowed(account.role, "upload")
    upload_gate.set_session(context.session_id, allowed, is_live=live)


def account() -> Account | None:
    """The account app.py resolved for this run."""
    value = st.session_state.get(_ACCOUNT_KEY)
    return value if isinstance(value, Account) else None


def allowed(action: str) -> bool:
    current = account()
    return current is not None and accounts.allowed(current.role, action)


def require(action: str) -> Account:
    """The account, or PermissionDeniedError (shown by app.py as one sentence); a refusal is
    written to the audit log."""
    current = account()
    if current is not None and not accounts.allowed(current.role, action):
        from dashboard.data import get_store

        get_store().record_audit(current.user_name, "refused", {"action": action})
    return accounts.require(current, action)


def _write_cookie(token: str | None) -> None:
    if token is not None and not _TOKEN_SHAPE.match(token):
        return
    # a browser-session cookie: the server decides expiry (8 h idle), the cookie only carries
    # the token until the browser closes
    value = f"{COOKIE}={token}" if token else f"{COOKIE}=; max-age=0"
    st.html(
        "<script>(function(){var c='" + value + "; path=/; SameSite=Strict'"
        " + (location.protocol === 'https:' ? '; Secure' : '');"
        " document.cookie = c; try { window.parent.document.cookie = c; } catch (e) {} })();"
        "</script>",
        unsafe_allow_javascript=True,
        width="content",
    )


def cookie_script() -> None:
    """Write or clear the cookie once, after sign-in or sign-out."""
    token = st.session_state.pop(_SET_COOKIE_KEY, None)
    if token:
        _write_cookie(token)
    if st.session_state.pop(_CLEAR_COOKIE_KEY, False):
        _write_cookie(None)


def _sign_in(store: Store) -> None:
    name = (st.session_state.get("signin_user") or "").strip()
    password = st.session_state.get("signin_password") or ""
    st.session_state["signin_password"] = ""
    try:
        # the browser's address (registered by dashboard/audit.py): the throttle counts per address
        signed_in = accounts.authenticate(store, name, password, address=audit.client_address())
    except accounts.SignInError as exc:
        st.session_state["signin_error"] = str(exc)
        return
    token = accounts.create_session(store, signed_in.user_name)
    st.session_state[TOKEN_KEY] = token
    st.session_state[_SET_COOKIE_KEY] = token
    st.session_state.pop(_CLEAR_COOKIE_KEY, None)
    st.session_state.pop("signin_error", None)


def sign_in_form(store: Store) -> None:
    """Only the sign-in form: Username, Password, Sign in (CONTRACT §6)."""
    cookie_script()
    _left, middle, _right = st.columns([1, 2, 1])
    with middle:
        st.title("LTFU monitor")
        st.caption("Long-term follow-up after CD19 CAR-T for paediatric B-ALL")
        with st.form("sign-in", border=True):
            st.text_input("Username", key="signin_user", autocomplete="username")
            st.text_input(
                "Password", type="password", key="signin_password", autocomplete="current-password"
            )
            st.form_submit_button("Sign in", type="primary", on_click=_sign_in, args=(store,))
        institution_sign_in.sign_in_button()
        error = st.session_state.pop("signin_error", None)
        if error:
            st.error(md(error))
    _preload_charts()
    _preload_elements()


_PRELOAD_KEY = "ltfu-chart-preload"
# the Overview's elements whose code the browser loads only when a page first shows one (code
# split by Streamlit's frontend): fetched and compiled after sign-in, 0.3-0.8 s before the
# first tile could show on this 2-core machine
_OVERVIEW_ELEMENTS = (
    "Metric",
    "Multiselect",
    "Selectbox",
    "NumberInput",
    "DateInput",
    "Button",
    "DownloadButton",
)
_CHUNK = re.compile(r"^[A-Za-z]+\.[A-Za-z0-9_-]+\.js$")


@functools.cache
def _element_chunks() -> tuple[str, ...]:
    """The file names of those elements' scripts in this Streamlit's frontend (one per element;
    an element whose file is not found once is left out, and then loads on demand as before)."""
    folder = Path(streamlit.__file__).parent / "static" / "static" / "js"
    names: list[str] = []
    for element in _OVERVIEW_ELEMENTS:
        found = [f.name for f in folder.glob(f"{element}.*.js") if _CHUNK.match(f.name)]
        if len(found) == 1:
            names.extend(found)
    return tuple(names)


def _preload_elements() -> None:
    """The browser imports the Overview's element scripts while the person types (the same
    files, at the same addresses, that the page would import after sign-in: the page then finds
    them loaded). Names come from the server's own static folder; nothing is shown."""
    names = _element_chunks()
    if not names:
        return
    st.html(
        "<script>(function(){"
        "var main = document.querySelector('script[type=module][src*=\"static/js/index.\"]');"
        "if (!main) return;"
        f"var names = {json.dumps(list(names))};"
        "var load = function(){ names.forEach(function(n){"
        " import(new URL(n, main.src).href).catch(function(){}); }); };"
        "(window.requestIdleCallback || window.setTimeout)(load);"
        "})();</script>",
        unsafe_allow_javascript=True,
        width="content",
    )


def _preload_charts() -> None:
    """An empty chart in a hidden container: the browser fetches and compiles the chart library
    (a 4.7 MB script, 2-4 s of Chromium's main thread on a busy 2-core machine) while the person
    types, not after Sign in. Nothing more is shown: the page still shows only its form."""
    import plotly.graph_objects as go

    st.html(f"<style>.st-key-{_PRELOAD_KEY} {{ display: none; }}</style>")
    with st.container(key=_PRELOAD_KEY, height=1, border=False):
        st.plotly_chart(go.Figure(), config={"staticPlot": True}, key="ltfu-preload-chart")


def _sign_out(store: Store) -> None:
    current = account()
    token = st.session_state.pop(TOKEN_KEY, None)
    st.session_state[_CLEAR_COOKIE_KEY] = True
    st.session_state[_ACCOUNT_KEY] = None
    _gate_uploads(None)
    if current is not None and institution_sign_in.sign_out(store, token, current.user_name):
        return
    accounts.end_session(store, token, user=current.user_name if current else None)


def sidebar_identity(store: Store, signed_in: Account) -> None:
    with st.sidebar:
        st.markdown(f"**{md(signed_in.user_name)}** · {md(signed_in.role.replace('_', ' '))}")
        if not signed_in.sites.is_every_site:
            st.caption(f"Sites: {md(signed_in.sites.describe())} (this account sees only these)")
        person = institution_sign_in.identity()
        if person is not None and person.user_name == signed_in.user_name:
            st.caption(f"Signed in with {md(get_config().institution_name)}")
        st.button("Sign out", on_click=_sign_out, args=(store,), icon=":material/logout:")


__all__ = ["PermissionDeniedError", "account", "allowed", "current_account", "require"]
