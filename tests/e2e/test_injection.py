"""Text is text in a real browser (issue 16, item 4).

A store whose every free-text field holds a payload of one class (markdown image, link, bare
autolink, badge/directive, LaTeX, raw HTML), pointing at a trap server on another port of
127.0.0.1: site, product, visit comment, upload file name, flag note, ack note, the flagging and
acknowledging user names, and the `?patient=` parameter. An admin walks every page; after each:
no request left the dashboard's origin, the trap saw nothing, no image/link/formula/badge was
made from a payload, and the payload's text is on the page as text.
"""

from __future__ import annotations

import http.server
import subprocess
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass

import polars as pl
import pytest
from playwright.sync_api import Browser, Page

from tests.e2e.conftest import (
    TIMEOUT_MS,
    VIEWPORT,
    Server,
    _create_accounts,
    _free_port,
    _wait_healthy,
    ltfu_executable,
    main_area,
    run_cli,
    shot,
    sign_in,
    wait_idle,
)

pytestmark = pytest.mark.e2e


def payloads(trap: int) -> dict[str, str]:
    base = f"http://127.0.0.1:{trap}"
    return {
        "image": f"![pic]({base}/image.png) image-payload",
        "link": f"[click me]({base}/link) link-payload",
        "autolink": f"{base}/auto and www.example.org autolink-payload",
        "badge": ":red-badge[BADGE] :material/home: :smile: badge-payload",
        "latex": "$\\frac{1}{2}$ and $$x^2$$ latex-payload",
        "html": f'<img src="{base}/html.png"><a href="{base}/a">anchor</a> html-payload',
    }


class _Trap(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802
        _Trap.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@dataclass
class Hostile:
    server: Server
    trap_port: int
    payloads: dict[str, str]
    patients: dict[str, str]  # class -> patient id carrying it


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hostile]:
    from monitoring.synthetic import make_cohort, write_csv

    trap = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Trap)
    threading.Thread(target=trap.serve_forever, daemon=True).start()
    trap_port = trap.server_address[1]
    texts = payloads(trap_port)
    workdir = tmp_path_factory.mktemp("injection")
    db_url = f"sqlite:///{workdir / 'store.db'}"
    patients_csv, visits_csv = write_csv(make_cohort(18, seed=11), workdir / "csv")
    patients = pl.read_csv(patients_csv, infer_schema_length=0)
    ids = patients["patient_id"].to_list()
    carriers = dict(zip(texts, ids, strict=False))
    by_id = {pid: texts[kind] for kind, pid in carriers.items()}
    patients = patients.with_columns(
        site=pl.col("patient_id").replace_strict(by_id, default=pl.col("site")),
        product=pl.col("patient_id").replace_strict(by_id, default=pl.col("product")),
    )
    visits = pl.read_csv(visits_csv, infer_schema_length=0).with_columns(
        comment=pl.col("patient_id").replace_strict(by_id, default=pl.col("comment"))
    )
    # a file name with markdown, LaTeX and HTML in it (a slash cannot be in a file name)
    upload = workdir / "visits $x$ :red-badge[F] <b>bold<b> [l](x).csv"
    patients.write_csv(patients_csv)
    visits.write_csv(upload)
    run_cli(db_url, "ingest", str(patients_csv), str(upload))
    for kind, pid in carriers.items():
        run_cli(
            db_url, "flag", pid, "--user", texts[kind], "--severity", "high", "--note", texts[kind]
        )
    import json

    flags = [
        a
        for a in json.loads(run_cli(db_url, "alerts", "--status", "all", "--format", "json"))
        if a["rule"] == "physician_flag"
    ]
    for alert in flags:
        kind = next(k for k, pid in carriers.items() if pid == alert["patient_id"])
        run_cli(db_url, "ack", alert["alert_id"], "--user", texts[kind], "--note", texts[kind])

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = workdir / "serve.log"
    with log.open("wb") as handle:
        proc = subprocess.Popen(
            [ltfu_executable(), "--db", db_url, "serve", "--port", str(port)],
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
        try:
            server = Server(url=url, db_url=db_url, workdir=workdir, log=log)
            _create_accounts(db_url, workdir)
            _wait_healthy(proc, url, server)
            yield Hostile(server, trap_port, texts, carriers)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)
            trap.shutdown()
            trap.server_close()


@pytest.fixture
def watched(browser: Browser, hostile: Hostile) -> Iterator[tuple[Page, list[str]]]:
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    # a Content-Security-Policy violation would show as a console error: record it as a request
    page.on(
        "console",
        lambda m: (
            requests.append("CSP: " + m.text) if "Content Security Policy" in m.text else None
        ),
    )
    try:
        yield page, requests
    finally:
        context.close()


def assert_text_only(page: Page, requests: list[str], hostile: Hostile, where: str) -> None:
    origin = hostile.server.url
    left = [u for u in requests if not u.startswith((origin + "/", "data:", "blob:"))]
    assert left == [], f"{where}: requests left the page's origin: {left}"
    assert _Trap.hits == [], f"{where}: the trap server was reached: {_Trap.hits}"
    trap = f":{hostile.trap_port}"
    made = page.evaluate(
        """(trap) => {
            const all = [...document.querySelectorAll('*')];
            const frames = [...document.querySelectorAll('iframe')];
            return {
              images: all.filter(e => ['IMG', 'image'].includes(e.tagName)
                  && (e.getAttribute('src') || e.getAttribute('href') || '').includes(trap)).length,
              links: all.filter(e => (e.getAttribute('href') || '').includes(trap)
                  || (e.getAttribute('href') || '').includes('example.org')).length,
              katex: document.querySelectorAll('.katex, .katex-display, math').length,
              badges: all.filter(e => e.children.length === 0 && e.textContent === 'BADGE').length,
              bold: document.querySelectorAll('[data-testid=stMarkdownContainer] b').length,
              frames: frames.length,
            };
        }""",
        trap,
    )
    assert made == {**made, "images": 0, "links": 0, "katex": 0, "badges": 0, "bold": 0}, (
        f"{where}: {made}"
    )


@pytest.mark.parametrize("kind", ["image", "link", "autolink", "badge", "latex", "html"])
def test_patient_parameter_is_text(
    watched: tuple[Page, list[str]], hostile: Hostile, kind: str
) -> None:
    page, requests = watched
    sign_in(page, hostile.server, "viewer")
    value = hostile.payloads[kind]
    page.goto(f"{hostile.server.url}/patient?patient={urllib.parse.quote(value)}")
    main_area(page).get_by_text("No patient", exact=False).first.wait_for(timeout=2 * TIMEOUT_MS)
    wait_idle(page)
    shot(page, f"injection-patient-param-{kind}", "viewer")
    shown = main_area(page).inner_text().replace("\u2060", "")  # word joiners: invisible
    assert value in shown, shown[:500]
    assert_text_only(page, requests, hostile, f"?patient= {kind}")


def test_the_store_holds_the_payloads(hostile: Hostile) -> None:
    """The fixture really stored the payloads (so the page tests test something)."""
    out = run_cli(hostile.server.db_url, "alerts", "--status", "acknowledged", "--format", "json")
    assert sum(out.count(f"{kind}-payload") > 0 for kind in hostile.payloads) == 6
