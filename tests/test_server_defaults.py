"""Safe defaults wherever ltfu is installed (issue 16, items 4 and 6).

`ltfu serve` is started from an empty temporary folder that holds a hostile
`.streamlit/config.toml` (error details on, developer toolbar, XSRF and CORS off, telemetry on).
The package's settings must win, every response must carry the security headers, and a
WebSocket from another origin (another port of the same host included) must be refused while the
dashboard's own origin is accepted.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from dashboard import server as launcher
from tests.processes import stop

HOSTILE_CONFIG = """
[server]
enableXsrfProtection = false
enableCORS = false
maxUploadSize = 5000
enableStaticServing = true
[browser]
gatherUsageStats = true
[client]
showErrorDetails = "full"
toolbarMode = "developer"
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    cwd = tmp_path_factory.mktemp("empty-cwd")
    (cwd / ".streamlit").mkdir()
    (cwd / ".streamlit" / "config.toml").write_text(HOSTILE_CONFIG)
    port = _free_port()
    env = {**os.environ, "LTFU_DATABASE_URL": f"sqlite:///{cwd / 'store.db'}"}
    env = {k: v for k, v in env.items() if not k.startswith("STREAMLIT_")}
    log = (cwd / "serve.log").open("wb")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "ltfu"), "serve", "--port", str(port)],
        cwd=cwd,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 150
        while True:
            assert proc.poll() is None, (cwd / "serve.log").read_text()
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=5) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            assert time.monotonic() < deadline, "ltfu serve did not start"
            time.sleep(0.3)
        yield url
    finally:
        stop(proc)
        log.close()


def handshake(url: str, origin: str | None, host: str | None = None) -> str:
    """The status line of a WebSocket upgrade request to Streamlit's stream."""
    port = int(url.rsplit(":", 1)[1])
    lines = [
        "GET /_stcore/stream HTTP/1.1",
        f"Host: {host or f'127.0.0.1:{port}'}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}",
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Protocol: streamlit",
    ]
    if origin is not None:
        lines.append(f"Origin: {origin}")
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        return sock.recv(200).decode("latin-1").split("\r\n")[0]


def test_websocket_from_own_origin_is_accepted(served: str) -> None:
    assert " 101 " in handshake(served, served)


@pytest.mark.parametrize(
    "origin",
    [
        "http://127.0.0.1:{other}",  # another port of the same host: cookies are shared
        "http://localhost:{port}",  # same port, other host name
        "https://127.0.0.1:{port}",  # other scheme
        "http://evil.example:{port}",
        "null",  # sandboxed iframe, file://
        None,  # no Origin at all
    ],
)
def test_websocket_from_another_origin_is_refused(served: str, origin: str | None) -> None:
    port = int(served.rsplit(":", 1)[1])
    value = None if origin is None else origin.format(port=port, other=port + 1)
    assert " 403 " in handshake(served, value)


def test_upload_from_another_port_is_refused(served: str) -> None:
    port = int(served.rsplit(":", 1)[1])
    request = urllib.request.Request(
        served + "/_stcore/upload_file/session/file",
        data=b"patient_id\nX\n",
        method="PUT",
        headers={"Origin": f"http://127.0.0.1:{port + 1}"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 403
    assert b"did not come from the dashboard" in refused.value.read()


def _live_session(url: str) -> Iterator[str]:
    """A live Streamlit session that has not signed in: its WebSocket stays open while the
    caller uses the session id (what a visitor's browser has before signing in)."""
    import asyncio
    import queue
    import threading

    import websockets
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    found: queue.Queue[str] = queue.Queue()
    done = threading.Event()

    async def hold() -> None:
        ws_url = url.replace("http://", "ws://") + "/_stcore/stream"
        async with websockets.connect(ws_url, origin=url, subprotocols=["streamlit"]) as ws:
            back = BackMsg()
            back.rerun_script.query_string = ""
            await ws.send(back.SerializeToString())
            while True:
                msg = ForwardMsg()
                msg.ParseFromString(await asyncio.wait_for(ws.recv(), 60))
                if msg.WhichOneof("type") == "new_session":
                    found.put(msg.new_session.initialize.session_id)
                    break
            while not done.is_set():
                await asyncio.sleep(0.1)

    thread = threading.Thread(target=lambda: asyncio.run(hold()), daemon=True)
    thread.start()
    try:
        yield found.get(timeout=90)
    finally:
        done.set()
        thread.join(30)


def test_upload_from_a_session_that_has_not_signed_in_is_refused_unread(served: str) -> None:
    """Streamlit itself stores a file for any live session (its XSRF check is a double-submit
    cookie any client can satisfy); the guard refuses it before the body is read."""
    from streamlit.web.server.starlette.starlette_app_utils import generate_xsrf_token_string

    token = generate_xsrf_token_string()
    body = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="p.csv"\r\n'
        b"Content-Type: text/csv\r\n\r\n" + b"patient_id\nX\n" * 1000 + b"\r\n--b--\r\n"
    )
    for session in _live_session(served):
        request = urllib.request.Request(
            f"{served}/_stcore/upload_file/{session}/file-1",
            data=body,
            method="PUT",
            headers={
                "Origin": served,
                "Content-Type": "multipart/form-data; boundary=b",
                "X-Xsrftoken": token,
                "Cookie": f"_streamlit_xsrf={token}",
            },
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code == 403
        assert refused.value.read() == launcher.NOT_SIGNED_IN


def test_every_response_carries_the_security_headers(served: str) -> None:
    for path in ("/", "/overview", "/_stcore/health", "/static/nonexistent.js"):
        try:
            response = urllib.request.urlopen(served + path, timeout=30)
        except urllib.error.HTTPError as exc:
            response = exc
        headers = response.headers
        csp = headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp, path
        assert "img-src 'self' data: blob:" in csp
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"


def test_package_settings_win_over_a_config_file_in_the_working_folder(tmp_path: Path) -> None:
    """Streamlit's resolved options, loaded as the launcher loads them, from a hostile cwd."""
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "config.toml").write_text(HOSTILE_CONFIG)
    code = (
        "import json\n"
        "from streamlit import config\n"
        "from streamlit.web import bootstrap\n"
        "from dashboard.server import settings\n"
        "bootstrap.load_config_options(settings(200 * 1024 * 1024))\n"
        "names = ['client.showErrorDetails', 'client.toolbarMode', 'server.enableXsrfProtection',"
        " 'server.enableCORS', 'server.maxUploadSize', 'browser.gatherUsageStats',"
        " 'server.enableStaticServing', 'theme.primaryColor']\n"
        "print(json.dumps({n: config.get_option(n) for n in names}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLIT_")}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    options = json.loads(out.stdout.strip().splitlines()[-1])
    assert options == {
        "client.showErrorDetails": "none",
        "client.toolbarMode": "minimal",
        "server.enableXsrfProtection": True,
        "server.enableCORS": True,
        "server.maxUploadSize": 200,
        "browser.gatherUsageStats": False,
        "server.enableStaticServing": False,
        "theme.primaryColor": "#0072B2",
    }


def test_upload_limit_follows_ltfu_config() -> None:
    assert launcher.settings(10 * 1024 * 1024)["server.maxUploadSize"] == 10
    assert launcher.settings(1)["server.maxUploadSize"] == 1


def test_serve_runs_the_package_launcher() -> None:
    from monitoring.cli.serve import serve_command

    command = serve_command("127.0.0.1", 8600)
    assert command[1:] == ["-m", "dashboard.server", "--host", "127.0.0.1", "--port", "8600"]


def test_websocket_under_a_rebound_host_name_is_refused(served: str) -> None:
    """DNS rebinding: the attacker's name as Host, with a matching Origin (tests/test_foreign_host.py)."""
    port = int(served.rsplit(":", 1)[1])
    rebound = f"rebound.example:{port}"
    assert " 403 " in handshake(served, f"http://{rebound}", host=rebound)
    assert " 101 " in handshake(served, f"http://localhost:{port}", host=f"localhost:{port}")
