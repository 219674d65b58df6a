"""No upload handled for a session that has not signed in (issue 16, item 1): the server's guard
refuses a file for any session the dashboard has not marked as signed in with the upload role,
before reading the body; the dashboard marks and unmarks sessions as accounts sign in and out.
(The same refusal against a real `ltfu serve`: tests/test_server_defaults.py.)"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboard import upload_gate
from dashboard.server import NOT_SIGNED_IN, OriginGuard
from monitoring import accounts
from monitoring.store import Store

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")
PASSWORD = "a long test password"


class _Inner:
    """The app behind the guard (Streamlit's routes): records whether it was reached."""

    def __init__(self) -> None:
        self.reached = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.reached = True
        await receive()
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def _request(method: str, path: str) -> tuple[_Inner, list[dict[str, Any]], list[int]]:
    inner = _Inner()
    sent: list[dict[str, Any]] = []
    reads: list[int] = []

    async def receive() -> dict[str, Any]:
        reads.append(1)
        return {"type": "http.request", "body": b"patient_id\nX\n", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "scheme": "http",
        "headers": [(b"host", b"127.0.0.1:8501"), (b"origin", b"http://127.0.0.1:8501")],
    }
    # a thread of its own: an e2e test earlier in this worker leaves Playwright's loop running
    # in the main thread, where asyncio.run refuses to start
    worker = threading.Thread(target=asyncio.run, args=(OriginGuard(inner)(scope, receive, send),))
    worker.start()
    worker.join(30)
    return inner, sent, reads


def test_an_upload_for_a_session_not_signed_in_is_refused_before_its_body_is_read() -> None:
    inner, sent, reads = _request("PUT", "/_stcore/upload_file/never-signed-in/file-1")
    assert sent[0]["status"] == 403 and sent[1]["body"] == NOT_SIGNED_IN
    assert not inner.reached and not reads


def test_an_upload_for_a_session_marked_may_upload_reaches_streamlit() -> None:
    upload_gate.set_session("signed-in-dm", True)
    try:
        inner, sent, reads = _request("PUT", "/_stcore/upload_file/signed-in-dm/file-1")
        assert inner.reached and reads and sent[0]["status"] == 204
    finally:
        upload_gate.set_session("signed-in-dm", False)
    inner, sent, _reads = _request("PUT", "/_stcore/upload_file/signed-in-dm/file-1")
    assert not inner.reached and sent[0]["status"] == 403


def test_removing_a_file_and_other_requests_are_not_gated() -> None:
    for method, path in (
        ("DELETE", "/_stcore/upload_file/never-signed-in/file-1"),
        ("OPTIONS", "/_stcore/upload_file/never-signed-in/file-1"),
        ("GET", "/_stcore/health"),
    ):
        inner, _sent, _reads = _request(method, path)
        assert inner.reached, (method, path)


def test_stale_sessions_are_forgotten_when_many_are_kept() -> None:
    live = {f"live-{i}" for i in range(3)}
    try:
        for i in range(upload_gate._PRUNE_ABOVE + 5):
            upload_gate.set_session(f"gone-{i}", True)
        for session in live:
            upload_gate.set_session(session, True, is_live=lambda s: s in live)
        assert all(upload_gate.may_upload(s) for s in live)
        assert not upload_gate.may_upload("gone-0")
    finally:
        for session in live:
            upload_gate.set_session(session, False)


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("LTFU_DATABASE_URL", url)
    st.cache_data.clear()
    store = Store.open(url)
    for role in ("viewer", "data_manager"):
        accounts.add_user(store, role, role, PASSWORD)
    yield store
    store.close()
    st.cache_data.clear()


def test_the_dashboard_marks_only_signed_in_upload_roles(
    db: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    marks: list[bool] = []
    real = upload_gate.set_session

    def recording(session_id: str, allowed: bool, **kwargs: Any) -> None:
        marks.append(allowed)
        real(session_id, allowed, **kwargs)

    monkeypatch.setattr(upload_gate, "set_session", recording)
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert marks[-1] is False  # the sign-in form: not signed in
    at.session_state["ltfu_token"] = accounts.create_session(db, "viewer")
    at.run()
    assert marks[-1] is False  # signed in, but a viewer may not upload
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["ltfu_token"] = accounts.create_session(db, "data_manager")
    at.run()
    assert marks[-1] is True
    sign_out = next(b for b in at.sidebar.button if b.label == "Sign out")
    sign_out.click().run()
    assert marks[-1] is False
