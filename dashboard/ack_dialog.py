"""The acknowledgement dialog, one for every page that acknowledges a single alert (Alerts,
Patient). It names what it will acknowledge by patient, rule, date and alert id, records the
note under the signed-in account (the role is checked again on confirm), and leaves a sentence
for the page to show after its rerun."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl
import streamlit as st

from dashboard import auth, components, data
from dashboard.text import md
from monitoring.alert_queue import acknowledge
from monitoring.alerts import RULES_BY_ID
from monitoring.errors import LtfuError


@dataclass(frozen=True)
class AckDialogKeys:
    """A page's session keys: those that open its dialogs (all cleared when this one closes),
    the note's text area, and where the sentence of what was done is left."""

    open_keys: tuple[str, ...]
    note_key: str
    done_key: str


def rule_title(rule_id: str) -> str:
    rule = RULES_BY_ID.get(rule_id)
    return rule.title if rule else rule_id


def show_acknowledge_dialog(
    keys: AckDialogKeys, alerts: pl.DataFrame, alert_id: str, as_of: date
) -> None:
    """Open the dialog for `alert_id`, looked up in `alerts` (the page's queue, any status)."""

    def close() -> None:
        for key in keys.open_keys:
            st.session_state.pop(key, None)

    @st.dialog("Acknowledge alert", on_dismiss=close)
    def dialog() -> None:
        matches = alerts.filter(pl.col("alert_id") == alert_id)
        if matches.is_empty():
            st.warning("This alert is no longer in the queue.")
            return
        row = matches.row(0, named=True)
        title = rule_title(row["rule"])
        st.markdown(
            f"**{md(row['patient_id'])}** · {md(title)} · triggered {md(row['triggered_on'])}"
        )
        st.caption(f"Alert {md(row['alert_id'])} · {md(row['severity'])}")
        st.text(row["message"])
        note = st.text_area("Note", placeholder="What was decided or done", key=keys.note_key)
        if st.button("Confirm acknowledgement", type="primary"):
            try:
                user = auth.require("acknowledge")
                acknowledge(data.get_store(), alert_id, user.user_name, note, as_of=as_of)
            except LtfuError as exc:
                components.show_error(exc)
                return
            close()
            st.session_state[keys.done_key] = (
                f"Acknowledged: {row['patient_id']} · {title} · {row['triggered_on']}"
            )
            st.rerun()

    dialog()
