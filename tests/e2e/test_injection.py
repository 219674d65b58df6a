"""Text is text in a real browser (issue 16, item 4).

A store whose every free-text field holds a payload of each class (markdown image, link, bare
autolink, badge/directive/emoji, LaTeX, raw HTML), pointing at a trap server on another port of
127.0.0.1: site, product, visit comment, upload file name and uploader, flag note, ack note, the
flagging and acknowledging user names, mapping profile names and their saver, an account's name
and its site names, and the `?patient=` parameter. Two journeys:
- an admin walks every page that shows one of them (Overview and its cohort report download,
  Durability by site and by product, each carrier's Patient page, Alerts with each flag picked
  and the upload picked in "First seen since", Worklist, Data with the upload history, each
  mapping profile, a rejected upload's report and an accepted upload's preview, Accounts, Audit);
- a viewer whose name is an autolink and whose account is limited to the payload sites signs in,
  filters by a payload site, downloads the cohort report and opens `?patient=` with every payload.
After each step: no request left the dashboard's origin, the trap saw nothing, no
image/link/formula/badge/icon/emoji was made from a payload, and the payload's text is shown as text.
The downloaded HTML report is opened too: it loads nothing and shows the payloads as text.
"""

from __future__ import annotations

import html
import http.server
import io
import json
import re
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
from playwright.sync_api import Browser, Page, expect

from monitoring.store import Store
from monitoring.store.profiles import save_profile
from tests.e2e.conftest import (
    TIMEOUT_MS,
    VIEWPORT,
    Server,
    _create_accounts,
    _free_port,
    _wait_healthy,
    choose,
    download_text,
    ltfu_executable,
    main_area,
    open_page,
    run_cli,
    shot,
    sidebar,
    sign_in,
    wait_idle,
)
from tests.processes import stop

pytestmark = pytest.mark.e2e

KINDS = ("image", "link", "autolink", "badge", "latex", "html")
# an account name may only hold letters, digits and . _ @ -: the markdown it can still carry is
# emphasis and the two GFM autolinks (www. and e-mail)
VIEWER = "_www.example.org_@example.org"
VIEWER_PASSWORD = "viewer-of-payload-sites-2026"
# a file name with markdown, LaTeX and HTML in it (a slash cannot be in a file name)
FILE_NAME = "visits $x$ :red-badge[F] <b>bold<b> [l](x).csv"


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
    workdir: Path


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
    upload = workdir / FILE_NAME
    patients.write_csv(patients_csv)
    visits.write_csv(upload)
    run_cli(db_url, "ingest", str(patients_csv), str(upload), "--user", texts["html"])
    for kind, pid in carriers.items():
        run_cli(
            db_url, "flag", pid, "--user", texts[kind], "--severity", "high", "--note", texts[kind]
        )
    flags = [
        a
        for a in json.loads(run_cli(db_url, "alerts", "--status", "all", "--format", "json"))
        if a["rule"] == "physician_flag"
    ]
    for alert in flags:
        kind = next(k for k, pid in carriers.items() if pid == alert["patient_id"])
        run_cli(db_url, "ack", alert["alert_id"], "--user", texts[kind], "--note", texts[kind])
    profile = (Path(__file__).parents[2] / "sample_data/lab/lab.profile.toml").read_text()
    with closing(Store.open(db_url)) as store:
        for kind in KINDS:
            save_profile(store, texts[kind], profile, user=texts[kind])
    # an account limited to the payload sites, named like an autolink (password on stdin)
    stdin, sys.stdin = sys.stdin, io.StringIO(VIEWER_PASSWORD + "\n")
    try:
        run_cli(
            db_url, "user", "add", VIEWER, "--role", "viewer", "--sites", ",".join(texts.values())
        )
    finally:
        sys.stdin = stdin

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
            yield Hostile(server, trap_port, texts, carriers, workdir)
        finally:
            stop(proc)
            trap.shutdown()
            trap.server_close()


def _watch(page: Page, requests: list[str]) -> None:
    page.on("request", lambda r: requests.append(r.url))
    # a Content-Security-Policy violation would show as a console error: record it as a request
    page.on(
        "console",
        lambda m: (
            requests.append("CSP: " + m.text) if "Content Security Policy" in m.text else None
        ),
    )


@pytest.fixture
def watched(browser: Browser, hostile: Hostile) -> Iterator[tuple[Page, list[str]]]:
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    requests: list[str] = []
    _watch(page, requests)
    try:
        yield page, requests
    finally:
        context.close()


MADE_FROM_PAYLOADS = r"""(trap) => {
    const all = [...document.querySelectorAll('*')];
    const href = e => e.getAttribute('src') || e.getAttribute('href')
        || e.getAttribute('xlink:href') || '';
    return {
      images: all.filter(e => ['IMG', 'image', 'IMAGE'].includes(e.tagName)
          && href(e).includes(trap)).length,
      links: all.filter(e => href(e).includes(trap) || href(e).includes('example.org')).length,
      katex: document.querySelectorAll('.katex, .katex-display, math').length,
      badges: all.filter(e => e.children.length === 0 && ['BADGE', 'F'].includes(e.textContent)
          && e.closest('[data-testid=stMarkdownContainer]')).length,
      icons: [...document.querySelectorAll('[data-testid=stIconMaterial]')]
          .filter(e => e.textContent === 'home').length,
      emoji: document.body.innerText.includes('\u{1F604}') ? 1 : 0,
      bold: [...document.querySelectorAll('[data-testid=stMarkdownContainer] b, '
          + '[data-testid=stMarkdownContainer] strong, [data-testid=stMarkdownContainer] em')]
          .filter(e => /^(bold|www\.example\.org)/.test(e.textContent)).length,
      anchors: all.filter(e => e.tagName === 'A' && e.textContent === 'anchor').length,
    };
}"""
NOTHING = {
    k: 0 for k in ("images", "links", "katex", "badges", "icons", "emoji", "bold", "anchors")
}


def assert_text_only(page: Page, requests: list[str], hostile: Hostile, where: str) -> None:
    origin = hostile.server.url
    left = [u for u in requests if not u.startswith((origin + "/", "data:", "blob:"))]
    assert left == [], f"{where}: requests left the page's origin: {left}"
    assert _Trap.hits == [], f"{where}: the trap server was reached: {_Trap.hits}"
    made = page.evaluate(MADE_FROM_PAYLOADS, f":{hostile.trap_port}")
    assert made == NOTHING, f"{where}: elements made from payloads: {made}"


def visible(page: Page) -> str:
    """The page's text as a reader sees it (word joiners from `md` are invisible)."""
    return page.locator("body").inner_text().replace("\u2060", "")


def _missing(page: Page, texts: list[str], seconds: float) -> list[str]:
    """The texts not on the page after waiting up to `seconds` for them."""
    for _ in range(max(1, int(seconds * 2))):
        shown = visible(page)
        missing = [t for t in texts if t not in shown]
        if not missing:
            return []
        page.wait_for_timeout(500)
    return missing


def assert_shown(page: Page, texts: list[str], where: str) -> None:
    """The texts are on the page (waiting up to 30 s for a rerun a choice started)."""
    missing = _missing(page, texts, 30)
    assert not missing, f"{where}: not shown as text: {missing}"


def check_report(browser: Browser, hostile: Hostile, html: str, where: str) -> None:
    """The downloaded cohort report, opened as a file: it loads nothing, the payloads are text."""
    path = hostile.workdir / f"report-{where}.html"
    path.write_text(html, encoding="utf-8")
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        requests: list[str] = []
        _watch(page, requests)
        page.goto(path.as_uri())
        page.wait_for_load_state("load")
        left = [u for u in requests if not u.startswith(("file://", "data:"))]
        assert left == [], f"report ({where}): requests left the file: {left}"
        assert _Trap.hits == [], f"report ({where}): the trap server was reached: {_Trap.hits}"
        made = page.evaluate(
            """() => ({
                images: document.querySelectorAll('img, image, iframe, object, embed').length,
                links: [...document.querySelectorAll('a')]
                    .filter(a => !(a.getAttribute('href') || '').startsWith('#')).length,
                katex: document.querySelectorAll('.katex, math').length,
                scripts: document.querySelectorAll('script[src], link[href]').length,
            })"""
        )
        assert made == {"images": 0, "links": 0, "katex": 0, "scripts": 0}, (where, made)
        shown = page.locator("body").inner_text()
        present = [kind for kind, text in hostile.payloads.items() if text in shown]
        assert present, f"report ({where}): no payload shown as text"
    finally:
        context.close()


def pick(page: Page, label: str, typed: str) -> None:
    """Choose in the selectbox `label` the first option whose text contains `typed` (typed into
    its search, then Enter)."""
    box = (
        main_area(page)
        .get_by_test_id("stSelectbox")
        .filter(has=page.get_by_text(label, exact=True))
        .first
    )
    box.get_by_role("combobox").click()
    page.keyboard.type(typed)
    page.keyboard.press("Enter")
    wait_idle(page)


def test_admin_sees_every_stored_payload_as_text(
    watched: tuple[Page, list[str]], hostile: Hostile, browser: Browser
) -> None:
    page, requests = watched
    texts = list(hostile.payloads.values())
    sign_in(page, hostile.server, "admin")
    # Overview, with the sidebar's site and product filters listing every payload
    sidebar(page).get_by_text("Site", exact=True).first.wait_for()
    for label in ("Site", "Product"):
        sidebar(page).get_by_test_id("stMultiSelect").filter(
            has=page.get_by_text(label, exact=True)
        ).click()
        page.keyboard.type("-payload")  # the list is virtual: only the payloads, all shown
        options = "\n".join(page.get_by_role("option").all_inner_texts()).replace("\u2060", "")
        missing = [t for t in texts if t not in options]
        assert not missing, (label, missing, options)
        assert_text_only(page, requests, hostile, f"overview: {label} filter options")
        page.keyboard.press("Escape")
        main_area(page).locator("h1").first.click()  # the open list hides the page from a11y
        expect(page.get_by_role("listbox")).to_have_count(0)
    shot(page, "injection-overview", "admin")
    report = download_text(page, main_area(page).get_by_role("button", name="Cohort report (HTML)"))
    assert_text_only(page, requests, hostile, "overview")
    check_report(browser, hostile, report, "admin")

    open_page(page, "Durability")
    for grouping in ("Site", "Product"):
        choose(page, "Group by", grouping)
        expect(page.locator(".legend", has_text="html-payload").first).to_be_attached()
        legend = " ".join(page.locator(".legend").all_text_contents())
        missing = [t for t in texts if t.split(" ")[0] not in legend]
        assert not missing, (grouping, missing, legend[:500])
        assert_text_only(page, requests, hostile, f"durability by {grouping}")
    shot(page, "injection-durability", "admin")

    for kind, pid in hostile.patients.items():
        page.goto(f"{hostile.server.url}/patient?patient={pid}")
        main_area(page).get_by_text("Infused").first.wait_for()
        wait_idle(page)
        # site and product in the status line, the comment in the visits, flag and ack notes
        assert visible(page).count(hostile.payloads[kind]) >= 2, kind
        assert_text_only(page, requests, hostile, f"patient {kind}")
        if kind == "html":
            shot(page, "injection-patient", "admin")

    open_page(page, "Alerts")
    counts = main_area(page).get_by_text(re.compile(r"alert\(s\) for \d+ patient\(s\)"))
    before = counts.first.inner_text()
    choose(page, "Status", "acknowledged")
    # the rerun for the new status has drawn its count (the open queue's is gone) and ended, so
    # the Alert choices are the acknowledged alerts: picked from the open queue's choices, a
    # patient's open alert was replaced by the first acknowledged one when the rerun landed
    expect(main_area(page).get_by_text(before, exact=True)).to_have_count(0)
    wait_idle(page)
    for kind, pid in hostile.patients.items():
        # "Acknowledged by <user> (...): “<note>”"
        wanted = [f"Acknowledged by {hostile.payloads[kind]}"]
        # under load a pick could still land on the open queue's choices (a whole-suite run
        # failed so once, after the count had changed): then the patient is picked again
        for _ in range(3):
            pick(page, "Alert", pid)
            if not _missing(page, wanted, 10):
                break
        assert_shown(page, wanted, f"alert of {kind}")
        assert_text_only(page, requests, hostile, f"alert {kind}")
    shot(page, "injection-alerts", "admin")
    pick(page, "First seen since", "visits $x$")
    assert_text_only(page, requests, hostile, "alerts: first seen since the upload")

    open_page(page, "Worklist")
    assert_text_only(page, requests, hostile, "worklist")

    open_page(page, "Data")
    for kind in KINDS:
        pick(page, "Mapping profile", kind + "-payload")
        # "Profile '<name>' version 1, saved by <user>."
        assert_shown(page, [f"Profile '{hostile.payloads[kind]}' version 1"], f"profile {kind}")
        assert_text_only(page, requests, hostile, f"data: profile {kind}")
    pick(page, "Mapping profile", "None: the canonical")
    # a rejected upload: its report quotes the payloads (a code column) and the file name
    bad = hostile.workdir / "upload" / "bad ![x](y) $y$ <b>b<b>.csv"
    bad.parent.mkdir(exist_ok=True)
    rows = [{"patient_id": "INJ-9001", "infusion_date": "2024-01-05", "sex": t} for t in texts]
    pl.DataFrame(rows).with_row_index().with_columns(
        patient_id=pl.format("INJ-90{}", pl.col("index") + 10)
    ).drop("index").write_csv(bad)
    page.locator('input[type="file"]').set_input_files(str(bad))
    expect(main_area(page).get_by_text("Validation report", exact=True)).to_be_visible()
    wait_idle(page)
    assert_text_only(page, requests, hostile, "data: rejected upload's report")
    shot(page, "injection-data-rejected", "admin")
    main_area(page).get_by_role("button", name="Clear files").click()
    # settled: the rerun that replaces the uploader (a new key) has drawn it empty. A file set
    # before then went to the old uploader and was dropped: no report came (1 run in 6)
    expect(main_area(page).get_by_test_id("stFileChip")).to_have_count(0)
    expect(main_area(page).get_by_text("Validation report", exact=True)).to_have_count(0)
    wait_idle(page)
    # a second upload: a new patient with payload site and product (its report or preview)
    good = hostile.workdir / "upload" / "new <img src=x> [l](y).csv"
    pl.DataFrame(
        [
            {
                "patient_id": "INJ-9100",
                "infusion_date": "2024-01-05",
                "site": texts[5],
                "product": texts[4],
            }
        ]
    ).write_csv(good)
    page.locator('input[type="file"]').set_input_files(str(good))
    expect(main_area(page).get_by_text("Validation report", exact=True)).to_be_visible()
    wait_idle(page)
    assert_text_only(page, requests, hostile, "data: second upload's report")
    shot(page, "injection-data", "admin")

    open_page(page, "Accounts")
    pick(page, "User", VIEWER)
    assert_text_only(page, requests, hostile, "accounts")
    shot(page, "injection-accounts", "admin")
    page.goto(hostile.server.url + "/audit")
    main_area(page).get_by_role("heading", name="Audit log").wait_for()
    wait_idle(page)
    assert_text_only(page, requests, hostile, "audit")


def test_site_limited_viewer_and_patient_parameter(
    watched: tuple[Page, list[str]], hostile: Hostile, browser: Browser
) -> None:
    page, requests = watched
    texts = list(hostile.payloads.values())
    page.goto(hostile.server.url + "/")
    page.get_by_label("Username", exact=True).fill(VIEWER)
    page.get_by_label("Password", exact=True).fill(VIEWER_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    sidebar(page).get_by_role("button", name="Sign out").wait_for()
    wait_idle(page)
    # the account's name and its sites in the sidebar, as text
    assert_shown(page, [VIEWER, *texts], "sidebar identity")
    assert_text_only(page, requests, hostile, "viewer overview")
    shot(page, "injection-overview-site-limited", "viewer")
    report = download_text(page, main_area(page).get_by_role("button", name="Cohort report (HTML)"))
    check_report(browser, hostile, report, "viewer")
    assert "html-payload" in report and "account's sites" in html.unescape(report)

    for kind, value in hostile.payloads.items():
        page.goto(f"{hostile.server.url}/patient?patient={urllib.parse.quote(value)}")
        main_area(page).get_by_text("No patient", exact=False).first.wait_for()
        wait_idle(page)
        assert value in main_area(page).inner_text().replace("\u2060", ""), kind
        assert_text_only(page, requests, hostile, f"?patient= {kind}")
    shot(page, "injection-patient-param", "viewer")


def test_the_store_holds_the_payloads(hostile: Hostile) -> None:
    """The fixture really stored the payloads (so the page tests test something)."""
    out = run_cli(hostile.server.db_url, "alerts", "--status", "acknowledged", "--format", "json")
    assert sum(out.count(f"{kind}-payload") > 0 for kind in hostile.payloads) == 6
    users = run_cli(hostile.server.db_url, "user", "list")
    assert VIEWER in users and "html-payload" in users
