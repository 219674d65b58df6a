"""End-to-end fixtures: a throwaway store with the demo cohort and one account per role, the
real `ltfu serve` in a subprocess, and a headless Chromium driven by Playwright's sync API.

Everything heavy is session-scoped, so under `pytest -n 2` each xdist worker that receives an
e2e test builds its own store and server (on a free port) once; each test gets a fresh browser
context (no cookies) at 1280×800.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import (  # noqa: E402
    Browser,
    Locator,
    Page,
    Playwright,
    expect,
    sync_playwright,
)

from dashboard import page_registry  # noqa: E402
from monitoring.cohort_report.pdf import CHROMIUM_FLAGS  # noqa: E402
from tests.processes import stop

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = list(CHROMIUM_FLAGS)
VIEWPORT = {"width": 1280, "height": 800}
TIMEOUT_MS = 60_000  # a shared 2-core machine: Streamlit's first renders can be slow
SERVER_START_S = 150.0
expect.set_options(timeout=TIMEOUT_MS)
SESSION_START = time.time()

# one account per role, created through `ltfu user add NAME --role ROLE` with the password on stdin
ACCOUNTS: dict[str, tuple[str, str]] = {
    "viewer": ("e2e_viewer", "viewer-pass-2026"),
    "physician": ("e2e_physician", "physician-pass-2026"),
    "data_manager": ("e2e_data_manager", "data-manager-pass-2026"),
    "admin": ("e2e_admin", "admin-pass-2026"),
}
PAGES = [page.title for page in page_registry.PAGES if page.in_contract]
PATHS = ["/", *(f"/{page.url_path}" for page in page_registry.PAGES if page.in_contract)]


def ltfu_executable() -> str:
    here = Path(sys.executable).parent / "ltfu"
    return str(here) if here.exists() else (shutil.which("ltfu") or "ltfu")


def run_cli(db_url: str, *args: str) -> str:
    """`ltfu --db URL ARGS…` in this process (the same `main` as the console script); stdout."""
    from monitoring.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--db", db_url, *args])
    assert code == 0, f"ltfu {' '.join(args)} exited {code}: {err.getvalue()}"
    return out.getvalue()


def status(db_url: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(run_cli(db_url, "status", "--format", "json"))
    return result


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    url: str
    db_url: str
    workdir: Path
    log: Path
    # what a fresh server's very first request (a deep link, signed out) showed
    cold_deep_link: dict[str, Any] = field(default_factory=dict)

    def last_error(self) -> str:
        """The server log's last traceback (what a redacted error box in the page hides)."""
        text = self.log_tail(200_000)
        start = text.rfind("Traceback (most recent call last)")
        if start < 0:
            return "(no traceback in the server log)"
        lines = text[start:].splitlines()
        end = next((i for i, line in enumerate(lines[1:], 1) if not line.startswith(" ")), 0)
        return "\n".join(lines[max(0, end - 6) : end + 1])

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"


def _create_accounts(db_url: str, workdir: Path) -> None:
    """The real console script, password on standard input (not a terminal), all at once."""
    procs = []
    for role, (name, password) in ACCOUNTS.items():
        proc = subprocess.Popen(
            [ltfu_executable(), "--db", db_url, "user", "add", name, "--role", role],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=workdir,
        )
        procs.append((proc, role, name, password))
    failures = []
    for proc, role, name, password in procs:
        out, err = proc.communicate(password + "\n", timeout=180)
        if proc.returncode != 0 or f"added user {name} with role {role}" not in out:
            failures.append(f"{name}: exit {proc.returncode}: {out} {err}")
    assert not failures, "ltfu user add failed: " + "; ".join(failures)


def _wait_healthy(proc: subprocess.Popen[bytes], url: str, server: Server) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"ltfu serve exited with {proc.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=5) as response:
                if response.status == 200 and response.read().strip() == b"ok":
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    pytest.fail(
        f"ltfu serve did not become healthy in {SERVER_START_S:.0f} s:\n{server.log_tail()}"
    )


@pytest.fixture(scope="session")
def e2e_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """A throwaway SQLite store with the demo cohort (the accounts are added by `server`)."""
    workdir = tmp_path_factory.mktemp("e2e")
    if os.environ.get("LTFU_E2E_URL"):  # development: the running dashboard's store, as is
        return os.environ["LTFU_E2E_DB"], workdir
    db_url = f"sqlite:///{workdir / 'e2e.db'}"
    run_cli(db_url, "demo")
    return db_url, workdir


@pytest.fixture(scope="session")
def pw() -> Iterator[Playwright]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `bash scripts/system-deps.sh`")
    manager = sync_playwright()
    playwright = manager.start()
    try:
        yield playwright
    finally:
        playwright.stop()


@pytest.fixture(scope="session")
def browser(pw: Playwright) -> Iterator[Browser]:
    chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture(scope="session")
def server(e2e_store: tuple[str, Path], browser: Browser) -> Iterator[Server]:
    """`ltfu serve` on a free port with LTFU_DATABASE_URL set; terminated, then killed.

    The accounts are created (`ltfu user add`, one process per role) while the server boots."""
    db_url, workdir = e2e_store
    _forget_old_screenshots()
    if os.environ.get("LTFU_E2E_URL"):  # development: a dashboard that is already running
        yield Server(
            url=os.environ["LTFU_E2E_URL"].rstrip("/"),
            db_url=db_url,
            workdir=workdir,
            log=workdir / "serve.log",
            cold_deep_link={"sign_in_form": True, "text": ""},
        )
        return
    with serving(db_url, workdir) as server_obj:
        server_obj.cold_deep_link = _cold_deep_link(browser, server_obj.url)
        yield server_obj


@contextlib.contextmanager
def serving(
    db_url: str,
    workdir: Path,
    *,
    port: int | None = None,
    env: dict[str, str] | None = None,
    create_accounts: bool = True,
) -> Iterator[Server]:
    """The real `ltfu serve` on 127.0.0.1 (a free port unless `port` is given) over `db_url`,
    with `env` added to the environment; the e2e accounts are created while it boots. Healthy
    when entered; terminated, then killed, when left."""
    port = port or _free_port()
    url = f"http://127.0.0.1:{port}"
    log = workdir / "serve.log"
    full_env = {
        **os.environ,
        "LTFU_DATABASE_URL": db_url,
        # no file watcher: other people edit the tree while the suite runs
        "STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none",
        "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
        **(env or {}),
    }
    with log.open("wb") as handle:
        proc = subprocess.Popen(
            [ltfu_executable(), "serve", "--host", "127.0.0.1", "--port", str(port)],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=workdir,
        )
        try:
            server = Server(url=url, db_url=db_url, workdir=workdir, log=log)
            if create_accounts:
                _create_accounts(db_url, workdir)
            _wait_healthy(proc, url, server)
            yield server
        finally:
            stop(proc)


def _forget_old_screenshots() -> None:
    """Pictures of earlier runs go (not the other xdist worker's, which are newer)."""
    for old in SCREENSHOTS.glob("*.png"):
        with contextlib.suppress(OSError):
            if old.stat().st_mtime < SESSION_START:
                old.unlink()


def _cold_deep_link(browser: Browser, url: str) -> dict[str, Any]:
    """The first request a fresh server gets is a deep link while signed out (a bookmark).

    Recorded here, because only the first request of a server can show it, and asserted in
    test_auth (Streamlit's v1 `pages/` mode once ran page scripts without app.py's sign-in)."""
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(url + "/durability")
        result: dict[str, Any] = {"sign_in_form": True, "text": ""}
        try:
            page.get_by_label("Username", exact=True).wait_for()
        except Exception:
            result["sign_in_form"] = False
        wait_idle(page)
        result["text"] = page.locator("body").inner_text()
        shot(page, "cold-deep-link", "signed_out")
        return result
    finally:
        context.close()


@pytest.fixture
def page(browser: Browser, server: Server, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh context (no cookie) and page; a screenshot is kept when the test fails."""
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    try:
        yield tab
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            with contextlib.suppress(Exception):
                shot(tab, "FAILED-" + request.node.name.replace("/", "_"), "")
        context.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
    return report


# ---------------------------------------------------------------- helpers used by the tests


def wait_idle(page: Page) -> None:
    """Until the script run has finished (Streamlit marks its root with the run state)."""
    page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for(
        state="attached"
    )
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden")


def sidebar(page: Page) -> Locator:
    return page.get_by_test_id("stSidebar")


def main_area(page: Page) -> Locator:
    return page.get_by_test_id("stMain")


def sign_in(page: Page, server: Server, role: str, path: str = "/") -> None:
    name, password = ACCOUNTS[role]
    page.goto(server.url + path)
    page.get_by_label("Username", exact=True).fill(name)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    sidebar(page).get_by_role("button", name="Sign out").wait_for()
    wait_idle(page)


def open_page(page: Page, name: str) -> None:
    """Navigate with the sidebar link (no reload)."""
    link = sidebar(page).get_by_test_id("stSidebarNav").get_by_role("link", name=name, exact=True)
    href = link.get_attribute("href") or f"**/{name.lower()}"
    link.click()
    page.wait_for_url(f"{href}*")
    wait_idle(page)


def download_text(page: Page, button: Locator) -> str:
    """Click a download button and return the file's text.

    The dashboard's downloads are deferred (the CSV is built on the server when clicked). Under
    load a first click once left the button spinning with no download; a second click is made
    after 20 s so that one lost request does not fail the test (see README)."""
    for attempt, timeout in enumerate((20_000, TIMEOUT_MS)):
        try:
            with page.expect_download(timeout=timeout) as info:
                button.click()
        except Exception:
            if attempt:
                raise
            continue
        path = info.value.path()
        text = Path(path).read_text(encoding="utf-8")
        info.value.delete()
        return text
    raise AssertionError("unreachable")


def selectbox_value(page: Page, label: str) -> str:
    """The value a selectbox displays (its combobox's accessible value)."""
    box = (
        main_area(page)
        .get_by_test_id("stSelectbox")
        .filter(has=page.get_by_text(label, exact=True))
    )
    snapshot = box.get_by_role("combobox").aria_snapshot()
    match = re.search(rf'combobox "{re.escape(label)}": (.*)', snapshot)
    return match.group(1).strip().strip('"') if match else ""


def open_dropdown(page: Page, box: Locator) -> None:
    """Open a selectbox's list. Scrolled into view first and let settle: a click that makes
    Playwright scroll the page opens the list on mousedown, and the scroll event that lands
    just after closes it again (the list never shows; seen in Chromium, 4 of 4 tries)."""
    box.scroll_into_view_if_needed()
    page.wait_for_timeout(400)
    box.click()
    expect(page.get_by_role("listbox")).to_be_visible()


def choose(page: Page, label: str, option: str) -> None:
    """Pick `option` in the selectbox (or segmented control) labelled `label`."""
    widget = (
        main_area(page)
        .locator('[data-testid="stSelectbox"], [data-testid="stButtonGroup"]')
        .filter(has=page.get_by_text(label, exact=True))
        .first
    )
    widget.wait_for()
    if widget.get_attribute("data-testid") == "stSelectbox":
        open_dropdown(page, widget)
        page.get_by_role("option", name=option, exact=True).click()
    else:
        widget.get_by_role("radio", name=option, exact=True).click()
    wait_idle(page)


def shot(page: Page, name: str, role: str) -> Path:
    """A full-page PNG: Streamlit scrolls inside its main section, not the document, so the
    viewport is stretched to the content's height for the picture."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / (f"{name}-{role}.png" if role else f"{name}.png")
    height = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll("
        '\'[data-testid="stMain"], [data-testid="stAppViewContainer"], '
        '[data-testid="stSidebarContent"]\')].map(e => e.scrollHeight), 0)'
    )
    tall = max(VIEWPORT["height"], min(int(height) + 40, 8000))
    if tall > VIEWPORT["height"]:
        page.set_viewport_size({"width": VIEWPORT["width"], "height": tall})
        page.wait_for_timeout(600)  # let charts re-layout to the new size
    try:
        page.screenshot(path=str(path), full_page=True)
    finally:
        if tall > VIEWPORT["height"]:
            page.set_viewport_size(VIEWPORT)
    return path
