"""The dashboard timed in headless Chromium: the first page after sign-in and a filter change.

A real `dashboard.server` on a free port over the given store, one admin account, Playwright
with the machine's Chromium. Timed from the press on "Sign in" (or on a filter's option: the
browser's `pointerdown`, not the start of Playwright's click, which first waits for the target to
be stable and scrolled into view) to
(a) the first tile of the Overview shown and (b) the page finished: the script run ended
(Streamlit marks its root `data-test-script-state="notRunning"`) and the page's last change,
read from the browser's own clock once nothing has changed for 1.5 s. Three sign-ins, each in a new browser context:
`cold` is the first sign-in on a freshly started server, right after it answers its health
check (the server process imports, and its warm-up, `dashboard/warmup.py`, may still be
deriving the cohort); `warm` a second sign-in afterwards, on the same data; `after_commit` a
sign-in after a delta upload (1 000 changed visits, `ltfu ingest` in its own process) once the
server says that data version is ready (`commit_ready_s`: from the end of the upload to that
line of the server's log, i.e. how long the warm-up of the new version took).
"""

from __future__ import annotations

import fcntl
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from monitoring.cohort_report.pdf import CHROMIUM_FLAGS

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = list(CHROMIUM_FLAGS)
ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_MS = 600_000
USER = "bench_admin"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_healthy(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the dashboard server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError("the dashboard server did not become healthy in 300 s")


# Installed in every document the page loads, on the browser's own clock (Date.now(), the same
# clock as the bench's time.time()): the first Overview tile shown, every end of a script run,
# and the last change to the page. Waiting in Python for "running" and then "notRunning" would
# add the poll's timeout whenever the run ended before the poll began.
_WATCH = """
(() => {
  window.__ltfuIdle = [];
  window.__ltfuChanged = 0;
  const seen = () => {
    window.__ltfuChanged = Date.now();
    const app = document.querySelector('[data-testid="stApp"]');
    const state = app && app.getAttribute('data-test-script-state');
    if (state !== window.__ltfuState) {
      window.__ltfuState = state;
      if (state === 'notRunning') window.__ltfuIdle.push(Date.now());
    }
    if (!window.__ltfuContent &&
        document.querySelector('[data-testid="stMain"] [data-testid="stMetric"]')) {
      window.__ltfuContent = Date.now();
    }
  };
  new MutationObserver(seen).observe(document, {
    subtree: true, childList: true, attributes: true, characterData: true,
  });
  // the person's press: Playwright's click first waits for the target to be visible, stable
  // (two animation frames) and scrolled into view, which is no part of the wait a person has
  document.addEventListener('pointerdown', () => { window.__ltfuPressed = Date.now(); }, true);
})();
"""


def _click(page: Any, target: Any) -> float:
    """Click `target`; the browser's time (epoch ms) of the press, on its own clock."""
    page.evaluate("window.__ltfuPressed = 0")
    target.click()
    pressed: float = page.evaluate("window.__ltfuPressed")
    if not pressed:
        raise RuntimeError("the click reached no element of the page")
    return pressed


_SETTLED_S = 1.5  # nothing changed on the page for this long: it is finished


def _settled(page: Any, since_ms: float) -> float:
    """Seconds from `since_ms` (epoch ms) to the last change of the page, once a script run has
    ended after `since_ms`, the script is not running and nothing changed for `_SETTLED_S`."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        state, ends, changed = page.evaluate(
            "[window.__ltfuState, window.__ltfuIdle, window.__ltfuChanged]"
        )
        ended = any(e >= since_ms for e in ends)
        quiet = time.time() * 1000 - changed > 1000 * _SETTLED_S
        if state == "notRunning" and ended and quiet:
            return round((max(changed, max(ends)) - since_ms) / 1000, 2)
        time.sleep(0.1)
    raise RuntimeError("the page did not settle")


def _sign_in(browser: Any, url: str, password: str) -> dict[str, float]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_init_script(_WATCH)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    # the sign-in page has loaded (a person takes longer than that to type): what the browser
    # fetches meanwhile is not part of the wait after the click
    page.get_by_label("Username", exact=True).wait_for()
    _settled(page, 0)
    page.wait_for_load_state("networkidle")
    page.get_by_label("Username", exact=True).fill(USER)
    page.get_by_label("Password", exact=True).fill(password)
    clicked = _click(page, page.get_by_role("button", name="Sign in"))
    page.get_by_test_id("stMain").get_by_test_id("stMetric").first.wait_for()
    content = (page.evaluate("window.__ltfuContent") - clicked) / 1000
    done = _settled(page, clicked)
    # a filter change: the first product in the sidebar's Product filter (Streamlit lists
    # "Select all" first, which keeps every patient: not a filter a person times)
    product = (
        page.get_by_test_id("stSidebar").get_by_test_id("stMultiSelect").filter(has_text="Product")
    )
    product.click()
    option = page.get_by_role("option").filter(has_not_text="Select all").first
    option.wait_for()
    clicked = _click(page, option)
    changed = _settled(page, clicked)
    context.close()
    return {"content_s": round(content, 2), "done_s": done, "filter_s": changed}


def dashboard_times(db: Path, patients: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    url_db = f"sqlite:///{db}"
    env = {**os.environ, "LTFU_DATABASE_URL": url_db}
    password = secrets.token_urlsafe(18)
    subprocess.run(
        [sys.executable, "-m", "monitoring.cli", "user", "add", USER, "--role", "admin"],
        input=password + "\n",
        text=True,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    # one Chromium or Streamlit server on the machine at a time (the helpers' shared lock)
    lock = open("/tmp/ltfu-e2e.lock", "a")  # noqa: SIM115 - closed below
    fcntl.flock(lock, fcntl.LOCK_EX)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = db.with_suffix(".server.log")
    log = open(log_path, "wb")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [sys.executable, "-m", "dashboard.server", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_healthy(url, server)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            try:
                cold = _sign_in(browser, url, password)
                warm = _sign_in(browser, url, password)
                ready_s = _commit(db, env, log_path, server)
                after_commit = _sign_in(browser, url, password)
            finally:
                browser.close()
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        lock.close()
    return {
        "patients": patients,
        "first_content_s": f"{cold['content_s']} cold / {warm['content_s']} warm",
        "first_done_s": f"{cold['done_s']} cold / {warm['done_s']} warm",
        "filter_done_s": f"{cold['filter_s']} / {warm['filter_s']}",
        "after_commit_s": f"{after_commit['content_s']} / {after_commit['done_s']} / "
        f"{after_commit['filter_s']}",
        "after_commit": after_commit,
        "commit_ready_s": ready_s,
        "cold": cold,
        "warm": warm,
    }


def _ready_versions(log_path: Path) -> set[int]:
    """The data versions the server's warm-up said were ready for every site."""
    text = log_path.read_text(encoding="utf-8", errors="replace")
    found = re.findall(r"data version (\d+) ready for every site", text)
    return {int(v) for v in found}


def _commit(db: Path, env: dict[str, str], log_path: Path, server: Any) -> float:
    """A delta upload through its own process, then the seconds until the server's warm-up says
    the new data version is ready (at most 600 s)."""
    from bench.processes import _delta_file

    visits_csv = db.parent / "visits.csv"
    delta = _delta_file(str(visits_csv), db.parent / "dashboard-delta.csv", seed=99)
    subprocess.run(
        [sys.executable, "-m", "monitoring.cli", "ingest", str(delta), "--user", "bench"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    from monitoring.store import Store

    store = Store.open(env["LTFU_DATABASE_URL"])
    version = store.data_version()
    store.close()
    committed = time.perf_counter()
    while version not in _ready_versions(log_path):
        if time.perf_counter() - committed > 600 or server.poll() is not None:
            raise RuntimeError(f"the server did not warm data version {version} in 600 s")
        time.sleep(0.1)
    return round(time.perf_counter() - committed, 2)
