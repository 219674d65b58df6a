"""DNS rebinding (issue 16): a page on a name the attacker controls, re-pointed at 127.0.0.1,
reaches the dashboard with its own name in `Host` and a matching `Origin`, so the origin check
alone lets its WebSocket in (and lets it post sign-in guesses and uploads from the viewer's
machine). The launcher's guard therefore answers only requests whose Host is an IP address,
`localhost`, the address it listens on, this machine's name or a name in `served_hosts`."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from dashboard import server as launcher


def _run(coroutine: Any) -> None:
    # a thread of its own: an e2e test earlier in this xdist worker leaves Playwright's loop
    # running in the main thread, where asyncio.run refuses to start
    worker = threading.Thread(target=asyncio.run, args=(coroutine,))
    worker.start()
    worker.join(30)


async def _app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.accept"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def _ask(kind: str, host: str, *, listen: str = "127.0.0.1", served: str = "") -> int:
    """What the launcher's middleware answers: the HTTP status (101 for an accepted WebSocket)."""
    guard = launcher.guarded(_app, listen, served)
    scheme = "ws" if kind == "websocket" else "http"
    scope = {
        "type": kind,
        "scheme": scheme,
        "method": "GET",
        "path": "/_stcore/stream" if kind == "websocket" else "/",
        "headers": [(b"host", host.encode()), (b"origin", f"http://{host}".encode())],
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    _run(guard(scope, receive, send))
    first = sent[0]
    if first["type"] == "websocket.accept":
        return 101
    if first["type"] == "websocket.close":
        return 403
    return int(first["status"])


@pytest.mark.parametrize("kind", ["websocket", "http"])
@pytest.mark.parametrize("host", ["rebound.example:8501", "attacker.test", "localhost.evil.test"])
def test_a_foreign_host_name_is_refused(kind: str, host: str) -> None:
    assert _ask(kind, host) == 403


@pytest.mark.parametrize("kind", ["websocket", "http"])
@pytest.mark.parametrize(
    "host", ["127.0.0.1:8501", "localhost:8501", "[::1]:8501", "10.1.2.3:8501", "LOCALHOST"]
)
def test_addresses_and_localhost_are_served(kind: str, host: str) -> None:
    assert _ask(kind, host) == (101 if kind == "websocket" else 200)


def test_the_listening_name_and_served_hosts_are_served() -> None:
    assert _ask("http", "ltfu.lab:8501", listen="ltfu.lab") == 200
    assert _ask("websocket", "ltfu.example.org", served="ltfu.example.org, other.org") == 101
    assert _ask("websocket", "other.org:443", served="ltfu.example.org, other.org") == 101
    assert _ask("websocket", "third.org", served="ltfu.example.org, other.org") == 403


def test_a_refusal_is_one_sentence_naming_the_setting() -> None:
    guard = launcher.guarded(_app, "127.0.0.1", "")
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    scope = {"type": "http", "method": "GET", "path": "/", "headers": [(b"host", b"evil.test")]}
    _run(guard(scope, receive, send))
    body = b"".join(m.get("body", b"") for m in sent).decode()
    assert "served_hosts" in body and body.strip().count(". ") == 0, body
