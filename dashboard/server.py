"""`ltfu serve`'s launcher: the dashboard with its safe settings and an origin guard.

Everything a safe dashboard needs comes from this package, never from a `.streamlit/config.toml`
in the working folder (installed as a wheel there is none, and a stray one must not turn error
details back on): `SETTINGS` is passed to Streamlit as command-line-level options, which win over
any config file.

`OriginGuard` (ASGI middleware, runs before Streamlit's own) closes a gap cookies leave open:
cookies ignore ports, so a page on another port of the same host is "same site" and its
requests carry the dashboard's cookies. Streamlit accepts a WebSocket whose Origin host is
`localhost`/`127.0.0.1` on any port. The guard therefore refuses
- a WebSocket (`/_stcore/stream`) whose Origin is missing or not exactly the dashboard's own
  `scheme://host:port` (the Host the browser connected to; behind a TLS proxy the scheme from
  X-Forwarded-Proto, which uvicorn trusts from 127.0.0.1),
- any request other than GET/HEAD/OPTIONS (file uploads) whose Origin is present and foreign,
- a file upload (`PUT /_stcore/upload_file/<session>/…`) for a session that has not signed in
  with a role that may upload (`dashboard/upload_gate.py`), before its body is read: Streamlit
  itself would hold the file in memory for any live session,
and adds security headers to every HTTP response (a Content-Security-Policy that only lets the
page talk to its own origin and forbids framing, nosniff, no referrer).

Before all that it refuses a request whose Host is a name the dashboard is not served under
(DNS rebinding: a page on the attacker's name, re-pointed at this machine, sends its own name as
Host and a matching Origin, which the origin check alone would let in). Served: IP addresses
(a browser sends one only when the page's own origin is that address), `localhost`, this
machine's name, the address `ltfu serve` listens on and the names in the `served_hosts` setting.

Run: `python -m dashboard.server --host 127.0.0.1 --port 8501` (what `ltfu serve` executes).
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import socket
import sys
import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from dashboard import upload_gate

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

APP = Path(__file__).with_name("app.py")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# 'self' matches the exact scheme, host and port (and ws:/wss: to it for connect-src).
# Streamlit's frontend needs inline styles and scripts (st.html, plotly) and blob: workers.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline' 'unsafe-eval' blob:",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "media-src 'self' data: blob:",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "frame-src 'self' blob: data:",
        "frame-ancestors 'none'",
        "form-action 'self'",
        "base-uri 'self'",
        "object-src 'none'",
    ]
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)

THEME: dict[str, object] = {
    "theme.base": "light",
    "theme.primaryColor": "#0072B2",  # Okabe–Ito blue: links, primary buttons
    "theme.backgroundColor": "#FFFFFF",
    "theme.secondaryBackgroundColor": "#F2F5F8",
    "theme.textColor": "#1F2A36",
    "theme.font": "sans serif",
    "theme.borderColor": "#D5DCE3",
    "theme.baseRadius": "small",
    "theme.showSidebarBorder": True,
    "theme.chartCategoricalColors": [
        "#0072B2",
        "#E69F00",
        "#009E73",
        "#CC79A7",
        "#56B4E9",
        "#D55E00",
        "#F0E442",
        "#000000",
    ],
}


def settings(max_upload_bytes: int) -> dict[str, object]:
    """The dashboard's server and client settings (issue 16 item 6)."""
    return {
        "server.headless": True,
        "server.enableCORS": True,
        "server.enableXsrfProtection": True,
        "server.xsrfCookieSameSite": "strict",
        "server.maxUploadSize": max(1, math.ceil(max_upload_bytes / (1024 * 1024))),
        "server.enableStaticServing": False,
        "server.enableAgentApi": False,
        "server.runOnSave": False,
        "server.fileWatcherType": "none",
        "server.showEmailPrompt": False,
        "browser.gatherUsageStats": False,
        "client.showErrorDetails": "none",
        "client.showErrorLinks": False,
        "client.toolbarMode": "minimal",
        **THEME,
    }


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def own_origin(scope: Scope) -> str | None:
    """`scheme://host[:port]` of the dashboard as the browser addressed it."""
    host = _header(scope, b"host")
    if not host:
        return None
    secure = scope.get("scheme") in ("https", "wss")
    return f"{'https' if secure else 'http'}://{host}".lower()


def served_names(listen: str, served_hosts: str) -> frozenset[str]:
    """The host names the dashboard answers besides IP addresses (see the module's docstring)."""
    names = {"localhost", socket.gethostname(), listen.strip("[]")}
    names |= {name.strip() for name in served_hosts.split(",")}
    return frozenset(name.lower() for name in names if name)


def host_served(scope: Scope, names: frozenset[str]) -> bool:
    host = _header(scope, b"host")
    if host is None:  # not a browser (every browser request names its host)
        return True
    name = host.strip().lower()
    if name.startswith("["):  # [::1]:8501
        name = name[1:].split("]", 1)[0]
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return name in names
    return True


def origin_allowed(scope: Scope, *, required: bool) -> bool:
    origin = _header(scope, b"origin")
    if origin is None:
        return not required
    expected = own_origin(scope)
    return expected is not None and origin.strip().lower() == expected


class OriginGuard:
    """Refuse WebSockets and state-changing requests from other origins; add security headers."""

    def __init__(self, app: ASGIApp, hosts: frozenset[str] | None = None) -> None:
        self.app = app
        self.hosts = hosts  # None: any Host (only for tests of the origin check)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.hosts is not None
            and scope["type"] in ("http", "websocket")
            and not host_served(scope, self.hosts)
        ):
            await _refuse_host(scope, send)
            return
        if scope["type"] == "websocket":
            if not origin_allowed(scope, required=True):
                # closing before accepting makes the server answer the handshake with 403
                await send({"type": "websocket.close", "code": 1008})
                return
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope.get("method", "GET") not in SAFE_METHODS and not origin_allowed(
            scope, required=False
        ):
            await _refuse(send)
            return
        if scope.get("method") == "PUT":
            session = upload_gate.upload_session(str(scope.get("path", "")))
            if session is not None and not upload_gate.may_upload(session):
                await _refuse(send, NOT_SIGNED_IN)
                return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {bytes(k).lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


FOREIGN_ORIGIN = b"Refused: this request did not come from the dashboard's own page.\n"
NOT_SIGNED_IN = b"Refused: upload files after signing in with a role that may upload data.\n"


async def _refuse(send: Send, body: bytes = FOREIGN_ORIGIN) -> None:
    headers = [(b"content-type", b"text/plain; charset=utf-8"), *SECURITY_HEADERS]
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": 403, "headers": headers})
    await send({"type": "http.response.body", "body": body})


FOREIGN_HOST = (
    b"Refused: the dashboard is not served under this host name "
    b"(an administrator adds it to served_hosts in ltfu.toml).\n"
)


async def _refuse_host(scope: Scope, send: Send) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})  # answered with 403
        return
    headers = [(b"content-type", b"text/plain; charset=utf-8"), *SECURITY_HEADERS]
    headers.append((b"content-length", str(len(FOREIGN_HOST)).encode()))
    await send({"type": "http.response.start", "status": 403, "headers": headers})
    await send({"type": "http.response.body", "body": FOREIGN_HOST})


def guarded(app: ASGIApp, listen: str, served_hosts: str) -> OriginGuard:
    """The guard `main` puts in front of Streamlit for `ltfu serve --host LISTEN`."""
    return OriginGuard(app, served_names(listen, served_hosts))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the ltfu dashboard (use `ltfu serve`).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8501)
    args = parser.parse_args(argv)

    import streamlit as st
    from starlette.middleware import Middleware

    from dashboard.institution_sign_in import streamlit_secrets_file
    from dashboard.warmup import start_warm_up
    from monitoring.config import get_config
    from monitoring.errors import ConfigError

    config = get_config()
    options = settings(config.max_upload_bytes)
    options |= {"server.address": args.host, "server.port": args.port}
    # the OpenID provider sends the browser back to the redirect URI's host: it is served too
    redirect_host = urllib.parse.urlsplit(config.institution_redirect_uri).hostname or ""
    hosts = served_names(args.host, f"{config.served_hosts},{redirect_host}")
    try:
        # institution sign-in: Streamlit reads [auth] from this owner-only file and no other
        with streamlit_secrets_file(config) as secrets_file:
            if secrets_file is not None:
                options["secrets.files"] = [str(secrets_file)]
            app = st.App(str(APP), middleware=[Middleware(OriginGuard, hosts=hosts)])
            # the first page after start-up and after each commit, computed before anyone asks
            # (and, once, out of each run's full garbage collection: warmup.freeze_long_lived)
            start_warm_up(config.dashboard_warm_up_seconds, freeze=True)
            app.run(config=options)
    except ConfigError as exc:
        print(f"ltfu serve: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
