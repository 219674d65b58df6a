"""The signed-in account's site scope, for the loaders (`dashboard.data`, `dashboard.day_data`).

app.py resolves the account on every run (`auth.current_account`, which reads the account and its
sites from the database) and keeps it under `ACCOUNT_KEY`; everything the loaders compute is read
through `Store.scoped(current_scope())`, and the scope is part of every cache key. Before sign-in
the scope is no site at all: nothing is readable by accident.
"""

from __future__ import annotations

import streamlit as st

from monitoring.accounts import Account
from monitoring.store.site_scope import SiteScope

ACCOUNT_KEY = "ltfu_account"


def signed_in() -> Account | None:
    value = st.session_state.get(ACCOUNT_KEY)
    return value if isinstance(value, Account) else None


def current_scope() -> SiteScope:
    account = signed_in()
    return SiteScope.nothing() if account is None else account.sites
