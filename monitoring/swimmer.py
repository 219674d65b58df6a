"""The swimmer plot at any cohort size: which lanes to draw, in what order, one page at a time.

`cohort_views.swimmer_lanes` gives one row per patient; `swimmer_page` filters them (by status
or open alerts), sorts them and cuts one page, numbering the page's lanes 1… from the top. A
registry of 10 000 patients is 200 pages of 50 lanes, each readable, instead of one picture of
the 200 most recent infusions. Pure polars (the dashboard draws the page).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import polars as pl

from monitoring.alerts import SEVERITIES

#: which patients the swimmer plot shows (key → words on the page)
SHOW: Final[dict[str, str]] = {
    "all": "All patients",
    "alerts": "With open alerts",
    "in_follow_up": "In follow-up",
    "overdue": "Alive, follow-up overdue",
    "remission": "In continuous remission",
    "relapsed": "Relapsed",
    "transplanted": "Transplanted",
    "died": "Died",
}
#: lane orders (key → words on the page)
SORT: Final[dict[str, str]] = {
    "follow_up": "Longest follow-up first",
    "recent": "Most recently infused first",
    "alerts": "Most severe open alerts first",
    "patient": "Patient ID",
}
PER_PAGE: Final[int] = 50


@dataclass(frozen=True)
class SwimmerPage:
    """One page of lanes: `lanes` numbered 1… from the top, with `open_alerts` per patient."""

    lanes: pl.DataFrame
    matching: int  # patients that pass the filter (all pages)
    page: int  # 1-based, clamped to the pages there are
    pages: int
    first: int  # 1-based position of the page's first lane among the matching (0 when none)
    last: int


def _status(show: str) -> pl.Expr:
    relapsed = pl.col("relapse_day").is_not_null()
    died = pl.col("death_day").is_not_null()
    return {
        "all": pl.lit(True),
        "alerts": pl.col("open_alerts") > 0,
        "in_follow_up": pl.col("in_follow_up"),
        "overdue": ~pl.col("in_follow_up") & ~died,
        "remission": (pl.col("response") == "responder") & ~relapsed & ~died,
        "relapsed": relapsed,
        "transplanted": pl.col("hsct_day").is_not_null(),
        "died": died,
    }[show]


def swimmer_page(
    lanes: pl.DataFrame,
    alerts: pl.DataFrame,
    *,
    show: str = "all",
    sort: str = "follow_up",
    page: int = 1,
    per_page: int = PER_PAGE,
) -> SwimmerPage:
    """Filter, sort and page the lanes of `cohort_views.swimmer_lanes`.

    `alerts`: the open alerts (patient_id, severity) of the same cohort. Ties in every order
    go by patient ID, so a page never changes between two runs on the same data. Unknown
    `show` / `sort` keys raise KeyError (the page offers only `SHOW` and `SORT`)."""
    if show not in SHOW or sort not in SORT:
        raise KeyError(f"show {show!r} / sort {sort!r}: not one of {list(SHOW)} / {list(SORT)}")
    rank = {severity: i for i, severity in enumerate(SEVERITIES)}  # most severe first
    counts = alerts.group_by("patient_id").agg(
        pl.len().alias("open_alerts"),
        pl.col("severity").replace_strict(rank, default=len(rank)).min().alias("worst"),
    )
    frame = (
        lanes.drop("lane", strict=False)
        .join(counts, on="patient_id", how="left")
        .with_columns(
            pl.col("open_alerts").fill_null(0).cast(pl.Int64),
            pl.col("worst").fill_null(len(rank)).cast(pl.Int64),
        )
        .filter(_status(show))
    )
    order: dict[str, tuple[list[str], list[bool]]] = {
        "follow_up": (["end_day", "patient_id"], [True, False]),
        "recent": (["infusion_date", "patient_id"], [True, False]),
        "alerts": (["worst", "open_alerts", "patient_id"], [False, True, False]),
        "patient": (["patient_id"], [False]),
    }
    columns, descending = order[sort]
    frame = frame.sort(columns, descending=descending, nulls_last=True)
    pages = max(1, math.ceil(frame.height / per_page))
    page = min(max(1, page), pages)
    start = (page - 1) * per_page
    shown = frame.slice(start, per_page).with_row_index("lane", offset=1)
    return SwimmerPage(
        lanes=shown.drop("worst"),
        matching=frame.height,
        page=page,
        pages=pages,
        first=start + 1 if shown.height else 0,
        last=start + shown.height,
    )
