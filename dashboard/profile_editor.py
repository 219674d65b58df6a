"""Save a mapping profile (data managers and admins): checked before it is stored; every save
is a new version in the store and an audit entry."""

from __future__ import annotations

import streamlit as st

from dashboard import auth, data
from dashboard.text import md
from monitoring.errors import LtfuError, UsageError
from monitoring.store.profiles import StoredProfile, profile_versions, save_profile


def show(profiles: dict[str, StoredProfile], selected: str | None) -> None:
    if not auth.allowed("upload"):
        return
    just_saved = "profile_saved" in st.session_state
    with st.expander("Mapping profiles: add or edit", expanded=just_saved):
        st.caption(
            "A profile says how one site's export becomes the canonical tables: source column per "
            "canonical column, code lists, units, 'not detected' words, date format "
            "(docs/profiles.md). `ltfu profile draft` writes a starting point."
        )
        saved_message = st.session_state.pop("profile_saved", None)
        if saved_message:
            st.success(md(saved_message), icon=":material/check_circle:")
        current = profiles.get(selected or "")
        name = st.text_input(
            "Profile name", value=current.name if current else "", key="profile_name"
        )
        text = st.text_area(
            "Profile (TOML)",
            value=current.text if current else "",
            height=320,
            key=f"profile_text_{selected}",
        )
        if st.button("Save profile", icon=":material/save:"):
            account = auth.require("upload")
            from monitoring.ingest.profile import load_profile

            try:
                if not name.strip() or not text.strip():
                    raise UsageError("a profile needs a name and its TOML text.")
                load_profile(text, name=name.strip())
            except LtfuError as exc:
                st.error(f"Not saved: {md(exc)}", icon=":material/error:")
            else:
                saved = save_profile(data.get_store(), name.strip(), text, user=account.user_name)
                st.session_state["profile_saved"] = (
                    f"Saved profile '{saved.name}' version {saved.version}: choose it above."
                )
                st.rerun()  # the profile list above is read before this button
        if current is not None:
            versions = profile_versions(data.get_store(), current.name)
            st.caption(
                "Versions: "
                + ", ".join(
                    f"{md(v.version)} ({md(v.saved_by)}, {md(v.saved_at)})" for v in versions
                )
            )
