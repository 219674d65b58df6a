"""Durability page: the EFS curve and its number-at-risk table, checked against
`ltfu durability --endpoint efs --format csv` computed from the same store."""

from __future__ import annotations

import csv
import html
import io
import re
import shutil
import subprocess
from pathlib import Path

import polars as pl
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import (
    Server,
    choose,
    download_text,
    main_area,
    open_page,
    run_cli,
    shot,
    sign_in,
    wait_idle,
)

pytestmark = pytest.mark.e2e
SHOTS = Path("/tmp/shots")

DAYS_PER_MONTH = 30.4375  # CONTRACT: a month is 30.4375 days


def _cli_curve(db_url: str) -> list[dict[str, float]]:
    text = run_cli(db_url, "durability", "--endpoint", "efs", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows and {r["group"] for r in rows} == {"all"}, text[:500]
    return [{k: float(v) for k, v in r.items() if k != "group"} for r in rows]


def _read_risk_table(page: Page) -> dict[str, dict[int, int]]:
    """{row label: {month: count}} of the table headed "Number at risk"."""
    table = main_area(page).get_by_test_id("stTable").filter(has_text="Number at risk")
    expect(table).to_have_count(1)
    headers = [h.strip() for h in table.locator("thead th").all_inner_texts()]
    assert headers[0] == "Number at risk", headers
    months = [int(h) for h in headers[1:]]
    result: dict[str, dict[int, int]] = {}
    for row in table.locator("tbody tr").all():
        label = row.locator("th").inner_text().strip()
        cells = [int(c.strip()) for c in row.locator("td").all_inner_texts()]
        assert len(cells) == len(months), (label, cells, months)
        result[label] = dict(zip(months, cells, strict=True))
    return result


def test_efs_curve_and_numbers_at_risk_match_the_cli(page: Page, server: Server) -> None:
    sign_in(page, server, "viewer")
    open_page(page, "Durability")
    main = main_area(page)
    # choose another endpoint first, so that choosing EFS is a real change of the page
    choose(page, "Endpoint", "Overall survival")
    expect(main.get_by_role("heading", name="Overall survival")).to_be_visible()
    choose(page, "Endpoint", "Event-free survival")
    expect(main.get_by_role("heading", name="Event-free survival")).to_be_visible()
    expect(main.get_by_role("heading", name="Overall survival")).to_have_count(0)
    expect(main_area(page).get_by_test_id("stPlotlyChart")).to_have_count(1)
    wait_idle(page)

    shown = _read_risk_table(page)
    curve = page.evaluate(
        "() => { const d = document.querySelector('[data-testid=\"stPlotlyChart\"] .js-plotly-plot');"
        " return d.data.map(t => ({name: t.name ?? null, mode: t.mode ?? null,"
        " width: (t.line && t.line.width) ?? null, x: Array.from(t.x || []),"
        " y: Array.from(t.y || [])})); }"
    )
    cli = _cli_curve(server.db_url)  # after reading the page: same store, same data version

    # number at risk at month m = everyone whose time is >= m months (events + censored there)
    at_risk = shown["All patients: at risk"]
    assert at_risk, shown
    last_day = max(r["time_days"] for r in cli)
    assert max(at_risk) * DAYS_PER_MONTH >= last_day, "the table stops before the last time"
    for month, count in at_risk.items():
        day = month * DAYS_PER_MONTH
        expected = int(sum(r["events"] + r["censored"] for r in cli if r["time_days"] >= day))
        assert count == expected, f"month {month}: page says {count} at risk, CLI gives {expected}"
    assert at_risk[0] == int(cli[0]["at_risk"]), "everyone is at risk at day 0"
    if "All patients: events" in shown:
        for month, count in shown["All patients: events"].items():
            day = month * DAYS_PER_MONTH
            expected = int(sum(r["events"] for r in cli if r["time_days"] <= day))
            assert count == expected, f"month {month}: {count} events shown, CLI gives {expected}"

    # the drawn EFS curve is the CLI's estimate at each observed time (x in months)
    lines = [
        t
        for t in curve
        if (t["name"] or "").startswith("All patients (n ") and t["mode"] == "lines"
    ]
    assert len(lines) == 1, [(t["name"], t["mode"]) for t in curve]
    drawn = {(round(x, 6), round(y, 9)) for x, y in zip(lines[0]["x"], lines[0]["y"], strict=True)}
    expected_points = {
        (round(r["time_days"] / DAYS_PER_MONTH, 6), round(r["estimate"], 9)) for r in cli
    }
    missing = expected_points - drawn
    assert not missing, f"{len(missing)} CLI points not on the curve, e.g. {sorted(missing)[:3]}"
    extra = {p for p in drawn - expected_points if p[1] != 1.0}  # the start at S(0-) = 1
    assert not extra, f"curve points the CLI does not have: {sorted(extra)[:3]}"

    shot(page, "durability-efs", "viewer")


def _curve_names(page: Page) -> list[str]:
    names: list[str] = page.evaluate(
        '() => Array.from(document.querySelector(\'[data-testid="stPlotlyChart"] '
        ".js-plotly-plot').data).filter(t => t.mode === 'lines' && t.showlegend !== false)"
        ".map(t => t.name)"
    )
    # names are plotly text with `<`, `>`, `&` as entities (dashboard.text.plot); plotly draws
    # them as the characters
    return [html.unescape(n) for n in names]


def _figure_texts(page: Page) -> dict[str, str]:
    """Title, subtitle and annotations of the drawn figure (what a saved image shows)."""
    texts: dict[str, str] = page.evaluate(
        '() => { const l = document.querySelector(\'[data-testid="stPlotlyChart"] '
        ".js-plotly-plot').layout; return {title: l.title.text, subtitle: "
        "(l.title.subtitle || {}).text || '', notes: (l.annotations || []).map(a => a.text)"
        ".join(' | ')}; }"
    )
    return {k: html.unescape(v) for k, v in texts.items()}


def test_group_by_age_figure_and_downloads_stand_alone(
    page: Page, server: Server, tmp_path: Path
) -> None:
    """A tumour-board journey: OS by age (clinical bands only), the figure saved as a PNG that
    carries its title, p and stamp, the curve CSV read back as a plain table, then CIR by
    product with the CD19 split (one panel per cause, one legend entry per product)."""
    sign_in(page, server, "viewer")
    open_page(page, "Durability")
    choose(page, "Endpoint", "Overall survival")
    choose(page, "Group by", "Age at infusion")
    main = main_area(page)
    expect(main.get_by_text("Log-rank p = ", exact=False).first).to_be_visible()
    wait_idle(page)
    names = _curve_names(page)
    bands = ("<3 y", "3–9 y", "10–17 y", "≥18 y", "Unknown")
    assert 2 <= len(names) <= len(bands), names
    # every legend entry is a band with its n, events and median
    assert all(n.startswith(bands) and "(n " in n and "events" in n for n in names), names
    expect(main.get_by_text("Effect sizes", exact=True)).to_be_visible()
    assert "**" not in main.inner_text()  # the test sentence is bold, not starred

    # the figure carries its title, test with p and stamp: the camera saves it as drawn
    figure = _figure_texts(page)
    # (Streamlit's theme wraps the title in more <b> tags)
    title = re.sub(r"</?b>", "", figure["title"])
    assert title == "Overall survival by age at infusion", figure
    assert figure["subtitle"].startswith("Log-rank p = "), figure
    assert "Data version " in figure["notes"] and "evaluated " in figure["notes"], figure
    camera = main.locator('.modebar-btn[data-title^="Download plot"]')
    with page.expect_download() as info:
        camera.click()  # in the browser: no server round trip, no "Prepare" step
    png = tmp_path / info.value.suggested_filename
    info.value.save_as(png)
    assert re.fullmatch(r"os_by_age_group_v\d+_\d{4}-\d\d-\d\d\.png", png.name), png.name
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    shutil.copy(png, SHOTS / "issue15-downloaded-os-by-age.png")

    # the curve CSV is a plain table: its first line is the header, the stamp is beside it
    text = download_text(page, main.get_by_role("button", name="Curve data (CSV)"))
    frame = pl.read_csv(io.StringIO(text))
    assert frame.columns[:3] == ["group", "time_days", "at_risk"], frame.columns
    assert set(frame["group"].unique()) <= {"<3", "3–9", "10–17", "≥18", "unknown"}
    sidecar = download_text(page, main.get_by_role("button", name="Stamp (TXT)"))
    assert "Data version " in sidecar and f"{frame.height} rows" in sidecar
    if shutil.which("Rscript"):
        csv_path = tmp_path / "curve.csv"
        csv_path.write_text(text, encoding="utf-8")
        r = subprocess.run(
            ["Rscript", "-e", f"x <- read.csv('{csv_path}'); cat(names(x)[1:3], nrow(x))"],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        assert r.stdout.split() == ["group", "time_days", "at_risk", str(frame.height)], r

    shot(page, "durability-os-by-age", "viewer")

    # CIR by product with the CD19 split: a panel per cause, a legend entry per product
    choose(page, "Endpoint", "Cumulative incidence of relapse")
    choose(page, "Group by", "Product")
    expect(main.get_by_text("Split relapse by CD19", exact=True)).to_be_visible()
    wait_idle(page)
    legend = _curve_names(page)
    products = {
        str(p)
        for p in pl.read_csv(
            io.StringIO(
                run_cli(
                    server.db_url,
                    "durability",
                    "--endpoint",
                    "cir",
                    "--by",
                    "product",
                    "--format",
                    "csv",
                )
            )
        )["group"].unique()
    }
    assert len(legend) == len(products), legend
    assert all("relapses)" in n for n in legend), legend
    panels = _figure_texts(page)["notes"]
    for cause in ("Relapse, CD19-positive", "Relapse, antigen escape", "Death without relapse"):
        assert cause in panels, panels
    shot(page, "durability-cir-by-product", "viewer")

    # the Overview's swimmer plot: patients with open alerts, most severe first; a click on a
    # lane opens that patient
    # a tall window: the swimmer's controls sit below the tiles, and a selectbox at the foot of
    # a short window does not open its list
    page.set_viewport_size({"width": 1280, "height": 1600})
    open_page(page, "Overview")
    choose(page, "Show", "With open alerts")
    choose(page, "Sort lanes", "Most severe open alerts first")
    expect(main.get_by_text("Click a lane to open that patient", exact=False)).to_be_visible()
    lanes = _settled_lanes(page)
    assert 1 <= len(lanes) <= 50, len(lanes)
    shot(page, "overview-swimmer-alerts", "viewer")
    follow_up = main.locator(".barlayer .trace").first.locator(".point path")
    expect(follow_up).to_have_count(len(lanes))
    lane = follow_up.nth(0)  # lane 1, drawn first: the top lane
    lane.scroll_into_view_if_needed()
    box = lane.bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] * 0.6, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    # plotly clicks the point it hovers; its label names the patient of the lane under the mouse
    hover = page.locator(".hoverlayer .hovertext").first
    expect(hover).to_contain_text(f"{html.unescape(lanes[0])}:")
    page.mouse.click(x, y)
    page.wait_for_url(f"**/patient?patient={html.unescape(lanes[0])}")
    wait_idle(page)
    expect(main.get_by_role("heading", name="Patient")).to_be_visible()


def _settled_lanes(page: Page) -> list[str]:
    """The swimmer's lane labels once two reads half a second apart agree: a choice made just
    before reruns the page, and a read between the two runs would see the old lanes."""
    script = (
        '() => Array.from(document.querySelector(\'[data-testid="stPlotlyChart"] '
        ".js-plotly-plot').layout.yaxis.ticktext)"
    )
    lanes: list[str] = []
    for _ in range(40):
        wait_idle(page)
        before: list[str] = page.evaluate(script)
        page.wait_for_timeout(500)
        wait_idle(page)
        lanes = page.evaluate(script)
        if lanes == before:
            return lanes
    raise AssertionError(f"the swimmer's lanes kept changing: {lanes[:3]}")
