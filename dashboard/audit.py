"""The dashboard's side of "who saw what": patient views, downloads, exports and rejected
uploads go to the audit log with the signed-in user and the browser's address
(`monitoring.audit`). Only ids, file names, filters and counts are recorded, never values."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from dashboard import auth
from dashboard.data import get_store
from monitoring import audit

_VIEWED_KEY = "ltfu_audited_patient"


def _client() -> str | None:
    try:
        address = st.context.ip_address
        if isinstance(address, str) and address:
            return address
        # Streamlit hides loopback addresses; a browser connection without one is local
        host = st.context.headers.get("Host")
        return "localhost" if isinstance(host, str) and host else None
    except Exception:  # no browser connection (AppTest, bare mode)
        return None


def register_client_source() -> None:
    """Audit entries written while a page runs carry the browser's address (app.py calls this on
    every run, so that a process that also runs command-line code, such as the tests, gets it
    back after a reset)."""
    audit.set_client_source(_client)


register_client_source()


def _who() -> tuple[str, str]:
    account = auth.account()
    return (account.user_name if account else "?"), audit.client_address()


def record(action: str, detail: dict[str, object]) -> None:
    user, client = _who()
    get_store().record_audit(user, action, {**detail, "client": client})


def patient_viewed(patient_id: str) -> None:
    """Once each time a session opens a patient's record (not on every rerun)."""
    if st.session_state.get(_VIEWED_KEY) == patient_id:
        return
    record("view_patient", {"patient_id": patient_id})
    st.session_state[_VIEWED_KEY] = patient_id


def on_download(
    what: str, file_name: str, filters: str, rows: int | None, patient_id: str | None = None
) -> Callable[[], None]:
    """What to call when a deferred download is built. Streamlit builds it in another thread,
    so the user and address are taken now, while the page is drawn."""
    user, client = _who()
    store = get_store()
    detail: dict[str, object] = {"what": what, "file": file_name, "filters": filters}
    if rows is not None:
        detail["rows"] = rows
    if patient_id is not None:
        detail["patient_id"] = patient_id
    detail["client"] = client
    return lambda: store.record_audit(user, "download", detail)


def upload_rejected(
    files: list[tuple[str, int]], errors: int, warnings: int, report_rows: int
) -> None:
    record(
        "upload_rejected",
        {
            "files": [name for name, _ in files],
            "bytes": [size for _, size in files],
            "errors": errors,
            "warnings": warnings,
            "report_rows": report_rows,
        },
    )
