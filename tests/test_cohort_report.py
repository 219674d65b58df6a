"""The cohort report (issue 15, item 6): its numbers are the core's, its text is text, and the
file stands alone (no script, nothing fetched). A small hand-built cohort; `tests/test_cli_report.py`
drives `ltfu report`."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import polars as pl
import pytest

from monitoring.alerts import evaluate_alerts
from monitoring.analysis_registry import ENDPOINT_SPECS, DurabilityRequest
from monitoring.cohort_report import build_report, render_html
from monitoring.cohort_report.content import CohortReport
from monitoring.cohort_views import cohort_tiles, risk_table, swimmer_lanes
from monitoring.durability import durability_summary, durability_table
from monitoring.outcomes import derive_outcomes
from monitoring.rule_performance import rule_performance
from monitoring.stamp import ALL_PATIENTS, stamp_text
from tests.factories import d, patient, patients_frame, visit, visits_frame

AS_OF = d(1000)
VERSION = 7
HOSTILE_SITE = '<script>alert("site")</script>'
HOSTILE_PRODUCT = "<img src=x onerror=alert(1)>&amp;"
HOSTILE_FILTERS = "filters: site: <b onmouseover=alert(2)>LON</b>"

# six patients, all infused on day 0:
#   P1 CR d28, CD19-negative relapse d200, death d400      (site and product hostile)
#   P2 CR d28, last contact d900
#   P3 CR d30, death in remission d300
#   P4 no response by day 90, death d150
#   P5 CR d28, CD19-positive relapse d500, last contact d700
#   P6 CR d28, last contact d950
PATIENTS = patients_frame(
    patient("P1", site=HOSTILE_SITE, product=HOSTILE_PRODUCT, death_date=d(400)),
    patient("P2", site="LON", product="tisagenlecleucel", last_contact_date=d(900)),
    patient("P3", site="LON", product="tisagenlecleucel", death_date=d(300)),
    patient("P4", site="PHL", product="tisagenlecleucel", death_date=d(150)),
    patient("P5", site="PHL", product="tisagenlecleucel", last_contact_date=d(700)),
    patient("P6", site="PHL", product="tisagenlecleucel", last_contact_date=d(950)),
)
VISITS = visits_frame(
    *(visit(p, 28, disease_status="CR") for p in ("P1", "P2", "P5", "P6")),
    visit("P3", 30, disease_status="CR"),
    visit("P4", 28, disease_status="no_response"),
    visit("P1", 200, disease_status="relapse", cd19_status="negative"),
    visit("P5", 500, disease_status="relapse", cd19_status="positive"),
)


def _queue() -> pl.DataFrame:
    alerts = evaluate_alerts(PATIENTS, VISITS, AS_OF)
    # the first alert acknowledged, the others open (the queue's status column)
    return (
        alerts.with_row_index("_i")
        .with_columns(
            status=pl.when(pl.col("_i") == 0).then(pl.lit("acknowledged")).otherwise(pl.lit("open"))
        )
        .drop("_i")
    )


@pytest.fixture(scope="module")
def report() -> CohortReport:
    return build_report(PATIENTS, VISITS, _queue(), AS_OF, VERSION, HOSTILE_FILTERS)


@pytest.fixture(scope="module")
def page(report: CohortReport) -> str:
    return render_html(report)


def _section(page: str, anchor: str) -> str:
    start = page.index(f'<section id="{anchor}"')
    return page[start : page.index("</section>", start)]


def test_every_section_holds_the_cores_numbers(report: CohortReport) -> None:
    outcomes = derive_outcomes(PATIENTS, VISITS, as_of=AS_OF)
    assert report.overview.tiles == cohort_tiles(outcomes)
    assert [s.request.endpoint for s in report.endpoints] == [s.id for s in ENDPOINT_SPECS]
    for section in [*report.endpoints, report.cd19]:
        request = section.request
        assert request.as_of == AS_OF
        assert section.summary == durability_summary(PATIENTS, VISITS, request)
        assert section.table.equals(durability_table(PATIENTS, VISITS, request))
        risk = risk_table(section.table, list(section.ticks))
        assert [r.counts for r in section.at_risk] == [
            tuple(row[1:]) for row in risk.rows() if str(row[0]).endswith(": at risk")
        ]
    assert report.cd19.request == DurabilityRequest("cir", as_of=AS_OF, by_cd19=True)
    queue = _queue()
    assert report.alerts.total == queue.height
    assert report.alerts.open == queue.height - 1
    performance = rule_performance(queue, outcomes, AS_OF).filter(pl.col("alerts") > 0)
    assert [(r.rule, r.alerts, r.patients) for r in report.alerts.by_rule] == performance.select(
        "rule", "alerts", "patients"
    ).rows()


def test_the_swimmer_plot_draws_the_cores_lanes(report: CohortReport, page: str) -> None:
    outcomes = derive_outcomes(PATIENTS, VISITS, as_of=AS_OF)
    lanes = swimmer_lanes(outcomes.sort("infusion_date", "patient_id", descending=True), AS_OF)
    assert report.overview.swimmer.lanes.equals(lanes)
    swimmer = _section(page, "swimmer")
    assert swimmer.count('stroke="#C9D1D9"') == 6  # one follow-up line per patient
    assert "most recently infused" not in swimmer  # all six are drawn
    # relapse marks coloured by CD19: P1 antigen escape (negative), P5 CD19-positive
    triangles = re.findall(r'<polygon points="[^"]+" fill="(#[0-9A-F]+)"', swimmer)
    assert triangles.count("#D55E00") == 2 and triangles.count("#0072B2") == 2  # + legend


def test_the_page_shows_hand_computed_numbers(page: str) -> None:
    # OS: deaths on days 150, 300, 400 of 6 patients, none censored before day 400:
    # S(12 months = day 365.25) = 4/6 after days 150 and 300
    os_part = _section(page, "endpoint-os")
    assert "n = 6, events = 3" in os_part
    assert "66.7 %" in os_part
    # 5 responders; relapses: P1 (CD19-negative = antigen escape) and P5 (CD19-positive)
    cd19 = _section(page, "relapse-cd19")
    assert "n = 5, relapses = 2" in cd19
    assert "Relapse, CD19-positive (1)" in cd19 and "antigen escape" in cd19
    overview = _section(page, "overview")
    assert re.search(r'Patients infused</div><div class="value">6<', overview)
    assert re.search(r'Relapses</div><div class="value">2<', overview)


def test_every_section_carries_the_stamp(page: str, report: CohortReport) -> None:
    stamp = stamp_text(VERSION, AS_OF, HOSTILE_FILTERS)
    assert report.stamp == stamp
    escaped = stamp.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    anchors = re.findall(r'<section id="([^"]+)"', page)
    # overview, swimmer, one per endpoint, relapse by CD19, alert burden, data completeness
    assert len(anchors) == 2 + len(ENDPOINT_SPECS) + 1 + 2
    for anchor in anchors:
        assert escaped.replace('"', "&quot;") in _section(page, anchor) or escaped in _section(
            page, anchor
        ), anchor


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_site_product_and_filters_are_shown_as_text(page: str) -> None:
    parsed = _Tags()
    parsed.feed(page)
    assert "script" not in parsed.tags and "img" not in parsed.tags and "b" in parsed.tags
    assert not [a for a, _v in parsed.attrs if a.startswith("on")]  # no event handler anywhere
    shown = "".join(parsed.text)
    assert HOSTILE_SITE in shown and HOSTILE_PRODUCT in shown
    assert "<b onmouseover=alert(2)>LON</b>" in shown
    assert HOSTILE_SITE not in page and HOSTILE_PRODUCT not in page


def test_the_file_stands_alone(page: str) -> None:
    assert "default-src 'none'" in page  # its own CSP: nothing may be fetched or run
    parsed = _Tags()
    parsed.feed(page)
    assert not {"script", "link", "iframe", "object", "embed", "img"} & set(parsed.tags)
    assert not [a for a, _v in parsed.attrs if a in ("src", "srcset", "background")]
    assert all(v and v.startswith("#") for a, v in parsed.attrs if a in ("href", "xlink:href"))
    style = page[page.index("<style>") : page.index("</style>")]
    assert "url(" not in style and "@import" not in style
    assert set(re.findall(r"https?://[^\s\"'<>]+", page)) == {"http://www.w3.org/2000/svg"}


def test_same_data_same_bytes(page: str) -> None:
    again = build_report(PATIENTS, VISITS, _queue(), AS_OF, VERSION, HOSTILE_FILTERS)
    assert render_html(again) == page


def test_the_stamp_is_the_dashboards() -> None:
    from dashboard.components import Stamp
    from dashboard.filters import Filters

    assert Filters().describe() == ALL_PATIENTS
    assert Stamp(VERSION, AS_OF, ALL_PATIENTS).text() == stamp_text(VERSION, AS_OF)


def test_censor_marks_drawn_unless_they_would_merge_into_a_line(page: str) -> None:
    from monitoring.cohort_report.page import MAX_CENSOR_MARKS, _series

    # OS: P2, P5 and P6 censored (days 900, 700, 950); the first figure of the section is OS
    assert _section(page, "endpoint-os").count('stroke-width="1.2"') == 3
    many = pl.DataFrame(
        {
            "time_days": [float(t) for t in range(MAX_CENSOR_MARKS + 2)],
            "estimate": [1.0] * (MAX_CENSOR_MARKS + 2),
            "ci_lower": [None] * (MAX_CENSOR_MARKS + 2),
            "ci_upper": [None] * (MAX_CENSOR_MARKS + 2),
            "censored": [1] * (MAX_CENSOR_MARKS + 2),
        }
    )
    assert (
        len(_series(many.head(MAX_CENSOR_MARKS + 1), "x", "#000", start=1.0).censored)
        == MAX_CENSOR_MARKS
    )
    assert _series(many, "x", "#000", start=1.0).censored == ()


def test_a_site_limited_accounts_report_says_so_in_its_stamp() -> None:
    from dashboard.filters import Filters
    from dashboard.report_download import report_filters
    from monitoring.store.site_scope import SiteScope

    assert report_filters(Filters(), SiteScope.every()) == ALL_PATIENTS
    limited = report_filters(Filters(products=("tisagenlecleucel",)), SiteScope.of({"PHL", "LON"}))
    assert limited == "filters: product: tisagenlecleucel; account's sites: LON, PHL"
