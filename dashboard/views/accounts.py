"""Accounts (admin): list, add, disable / enable, reset a password; the audit log."""

import polars as pl
import streamlit as st

from dashboard import auth, components, data, page_registry
from dashboard.text import md
from monitoring import accounts
from monitoring.audit import AuditQuery, read_log, readable_log

admin = auth.require("accounts")
store = data.get_store()
st.title("Accounts")
done = st.session_state.pop("accounts_done", None)
if done:
    st.success(md(done), icon=":material/check_circle:")

users = accounts.list_users(store)
st.dataframe(
    users.select(
        pl.col("user_name").alias("User"),
        pl.col("role").alias("Role"),
        pl.col("sites").alias("Sites"),
        pl.col("disabled").alias("Disabled"),
        pl.col("created_at").alias("Created (UTC)"),
    ),
    hide_index=True,
    width="stretch",
)


def _done(sentence: str) -> None:
    st.session_state["accounts_done"] = sentence
    st.rerun()


add, change = st.columns(2)
with add, st.form("add-user", clear_on_submit=True):
    st.markdown("**Add an account**")
    name = st.text_input("New user name")
    role = st.selectbox("Role", list(accounts.ROLES))
    first = st.text_input("Initial password", type="password")
    second = st.text_input("Repeat the password", type="password")
    if st.form_submit_button("Add account"):
        auth.require("accounts")
        if first != second:
            components.refuse("The two passwords differ; nothing was changed.")
        else:
            accounts.add_user(store, name.strip(), role, first, by=admin.user_name)
            _done(f"Added {name.strip()} ({role}).")
with change, st.container(border=True):
    st.markdown("**Change an account**")
    names = users["user_name"].to_list()
    who = st.selectbox("User", names, key="acct_user")
    new_password = st.text_input("New password", type="password", key="acct_pw")
    buttons = st.container(horizontal=True)
    if buttons.button("Reset password", disabled=not new_password):
        auth.require("accounts")
        accounts.reset_password(store, who, new_password, by=admin.user_name)
        _done(f"New password set for {who}; sign-in delays cleared.")
    if buttons.button("Disable", disabled=who == admin.user_name):
        auth.require("accounts")
        accounts.disable_user(store, who, by=admin.user_name)
        _done(f"Disabled {who}; their sessions have ended.")
    if buttons.button("Enable"):
        auth.require("accounts")
        accounts.enable_user(store, who, by=admin.user_name)
        _done(f"Enabled {who}.")
    sites = st.text_input(
        "Sites",
        key="acct_sites",
        placeholder="A, B (empty: every site)",
        help="Limit the account to these treating sites: everything it sees is of their patients.",
    )
    if st.button("Set sites"):
        auth.require("accounts")
        scope = accounts.site_scope(sites if sites.strip() else None)
        accounts.set_sites(store, who, scope, by=admin.user_name)
        _done(f"{who} now sees {scope.describe()}.")

st.subheader("Audit log")
st.caption("Sign-ins, refusals, uploads, acknowledgements, flags and account changes (latest 20).")
latest = read_log(store, AuditQuery()).head(20)
st.dataframe(
    readable_log(latest),
    hide_index=True,
    width="stretch",
    height=min(600, 38 + 35 * latest.height),
    column_config={"Details": st.column_config.TextColumn(width="large")},
)
st.page_link(
    page=page_registry.PAGE_BY_PATH["audit"].app_relative,
    label="The whole log, filtered by user, patient and date",
    icon=":material/policy:",
)
