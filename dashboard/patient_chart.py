"""One child's course on one time axis, drawn so a physician can trust it.

- Alerts: one marker per day, coloured by the most severe alert of that day and drawn in
  severity order (critical last, so on top); the hover names every alert of the day.
- MRD, B cells (% of lymphocytes and per µL) and CAR copies on log axes with the site's
  thresholds (from `Config`) drawn; a value of 0 ("not detected") sits on the axis floor as an
  open marker and says so in the hover.
- The x axis spans infusion (or the first earlier visit) to the last contact.
"""

from __future__ import annotations

import math
from typing import Any

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from dashboard.charts import MRD_METHODS, SEVERITY_COLOURS, SEVERITY_ORDER
from monitoring.cohort_views import cd19_category
from monitoring.config import Config
from monitoring.palette import CD19_COLOURS

MRD_FLOOR = 1e-6
BCELL_PCT_FLOOR = 0.001
BCELL_UL_FLOOR = 0.1
CAR_FLOOR = 1.0
_NOTE = {"size": 11, "color": "#5A6772"}


def alerts_by_day(alerts: pl.DataFrame, titles: dict[str, str]) -> pl.DataFrame:
    """One row per day: day, top severity, and the hover text naming every alert."""
    rank = {s: i for i, s in enumerate(SEVERITY_ORDER)}
    rows = (
        alerts.with_columns(
            _rank=pl.col("severity").replace_strict(rank, default=len(rank), return_dtype=pl.Int64),
            _line=pl.concat_str(
                pl.col("severity"),
                pl.lit(": "),
                pl.col("rule").replace_strict(titles, default=pl.col("rule")),
                pl.lit(" ("),
                pl.col("status"),
                pl.lit(")"),
            ),
        )
        .sort("day", "_rank")
        .group_by("day", maintain_order=True)
        .agg(
            pl.col("_rank").min().alias("_top"),
            pl.col("triggered_on").first().cast(pl.String).alias("date"),
            pl.col("_line").str.join("<br>").alias("text"),
        )
    )
    return rows.with_columns(
        severity=pl.col("_top").replace_strict(dict(enumerate(SEVERITY_ORDER)), default="data")
    ).drop("_top")


def _log_threshold(
    fig: go.Figure, value: float, text: str, row: int, colour: str, yref: str, xref: str
) -> None:
    fig.add_hline(y=value, line={"color": colour, "dash": "dash", "width": 1}, row=row, col=1)
    # plotly misplaces add_hline annotations on log axes: annotate in log10 units
    fig.add_annotation(
        text=text,
        xref=xref,
        yref=yref,
        x=0,
        y=math.log10(value),
        xanchor="left",
        yanchor="bottom",
        showarrow=False,
        font=_NOTE,
    )


def _series(
    fig: go.Figure,
    visits: pl.DataFrame,
    column: str,
    floor: float,
    name: str,
    unit: str,
    colour: str,
    symbol: str,
    row: int,
    secondary: bool = False,
    line: bool = True,
) -> None:
    part = visits.filter(pl.col(column).is_not_null())
    if not part.height:
        return
    values = part[column].to_list()
    fig.add_trace(
        go.Scatter(
            x=part["day"].to_list(),
            y=[v if v > 0 else floor for v in values],
            mode="lines+markers" if line else "markers",
            name=name,
            line={"color": colour, "width": 1.5},
            marker={
                "symbol": [symbol if v > 0 else f"{symbol}-open" for v in values],
                "size": 8,
                "color": colour,
            },
            customdata=[f"{v:.3g}{unit}" if v > 0 else "0 (not detected)" for v in values],
            hovertemplate="day %{x}: %{customdata}<extra>" + name + "</extra>",
        ),
        row=row,
        col=1,
        secondary_y=secondary,
    )


def patient_course_figure(
    visits: pl.DataFrame,
    outcome: dict[str, Any],
    alerts: pl.DataFrame | None,
    config: Config,
    titles: dict[str, str],
    stamp: str | None = None,
) -> go.Figure:
    """`visits` needs `day`; `outcome` is the patient's `derive_outcomes` row; `alerts` the
    patient's queue rows (with day, severity, rule, status, triggered_on)."""
    fig = make_subplots(
        rows=4,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.05,
        row_heights=[0.16, 0.3, 0.27, 0.27],
        specs=[[{}], [{}], [{"secondary_y": True}], [{}]],
    )
    events = [
        ("remission_onset_day", "CR/CRi", "#009E73", "circle"),
        (
            "relapse_day",
            "Relapse",
            CD19_COLOURS[cd19_category(outcome.get("relapse_cd19_status"))],
            "triangle-up",
        ),
        ("bcell_recovery_day", "B-cell recovery", "#E69F00", "circle-open"),
        ("car_loss_day", "CAR loss", "#CC79A7", "square-open"),
        ("hsct_day", "Transplant", "#000000", "star"),
        ("new_therapy_day", "New therapy", "#555555", "star-open"),
        ("death_day", "Death", "#000000", "x"),
    ]
    for column, name, colour, symbol in events:
        day = outcome.get(column)
        if day is None:
            continue
        fig.add_trace(
            go.Scatter(
                x=[day],
                y=["Events"],
                mode="markers",
                name=name,
                marker={"symbol": symbol, "size": 12, "color": colour},
                hovertemplate=f"day %{{x}}: {name}<extra></extra>",
            ),
            row=1,
            col=1,
        )
        for row in (2, 3, 4):
            fig.add_vline(x=day, line={"color": colour, "width": 1, "dash": "dot"}, row=row, col=1)
    if alerts is not None and alerts.height:
        days = alerts_by_day(alerts, titles)
        # least severe first: later traces are drawn on top, so critical ends on top
        for sev in reversed(SEVERITY_ORDER):
            part = days.filter(pl.col("severity") == sev)
            if not part.height:
                continue
            fig.add_trace(
                go.Scatter(
                    x=part["day"].to_list(),
                    y=["Alerts"] * part.height,
                    mode="markers",
                    name=f"Alert ({sev})",
                    marker={
                        "symbol": "diamond",
                        "size": 13 if sev == "critical" else 11,
                        "color": SEVERITY_COLOURS[sev],
                        "line": {"width": 1, "color": "#ffffff"},
                    },
                    customdata=list(
                        zip(part["date"].to_list(), part["text"].to_list(), strict=True)
                    ),
                    hovertemplate="day %{x} (%{customdata[0]})<br>%{customdata[1]}<extra></extra>",
                ),
                row=1,
                col=1,
            )
    for column, (label, colour, symbol) in MRD_METHODS.items():
        _series(fig, visits, column, MRD_FLOOR, f"MRD {label}", "", colour, symbol, 2)
    _log_threshold(
        fig,
        config.mrd_flow_detected,
        f"flow detected ≥ {config.mrd_flow_detected:g}",
        2,
        "#999999",
        "y2",
        "x2 domain",
    )
    _series(
        fig,
        visits,
        "bcell_pct_lymphocytes",
        BCELL_PCT_FLOOR,
        "B cells (% lymphocytes)",
        " %",
        "#56B4E9",
        "circle",
        3,
    )
    _series(
        fig,
        visits,
        "bcell_per_ul",
        BCELL_UL_FLOOR,
        "B cells (per µL)",
        "/µL",
        "#0072B2",
        "square",
        3,
        secondary=True,
        line=False,
    )
    _log_threshold(
        fig,
        config.bcell_pct_recovery,
        f"recovery ≥ {config.bcell_pct_recovery:g} % or ≥ {config.bcell_per_ul_recovery:g}/µL",
        3,
        "#E69F00",
        "y3",
        "x3 domain",
    )
    fig.add_hline(
        y=config.bcell_per_ul_recovery,
        line={"color": "#0072B2", "dash": "dot", "width": 1},
        row=3,
        col=1,
        secondary_y=True,
    )
    _series(
        fig,
        visits,
        "car_copies_per_ug",
        CAR_FLOOR,
        "CAR transgene",
        " copies/µg",
        "#CC79A7",
        "circle",
        4,
    )
    _log_threshold(
        fig,
        config.car_loss_copies_per_ug,
        f"loss < {config.car_loss_copies_per_ug:g} copies/µg",
        4,
        "#CC79A7",
        "y5",
        "x4 domain",
    )
    fig.update_yaxes(
        type="category",
        categoryorder="array",
        categoryarray=["Alerts", "Events"],
        showgrid=False,
        row=1,
        col=1,
    )
    _log_axis(fig, "MRD (fraction)", (-6.3, 0.2), row=2)
    _log_axis(fig, "B cells (% lymph.)", (-3.2, 2.1), row=3, secondary_y=False)
    _log_axis(fig, "B cells (/µL)", (-1.2, 3.6), row=3, secondary_y=True, grid=False)
    _log_axis(fig, "CAR (copies/µg DNA)", (-0.2, 6), row=4)
    first_visit = visits["day"].min() if visits.height else None
    start = min(0, int(first_visit)) if isinstance(first_visit, int) else 0
    end = outcome.get("last_contact_day") or 0
    pad = max(5, (end - start) * 0.02)
    fig.update_xaxes(range=[start - pad, end + pad])
    fig.update_xaxes(title_text="Days since infusion (to last contact)", row=4, col=1)
    fig.update_layout(
        height=840,
        margin={"l": 70, "r": 70, "t": 40, "b": 60},
        legend={"orientation": "h", "y": -0.08},
        hovermode="closest",
        font={"family": "Source Sans Pro, Helvetica, Arial, sans-serif"},
        title={"text": stamp or "", "font": {"size": 11, "color": "#5A6772"}, "x": 0.01},
        template="plotly_white",
    )
    return fig


def _log_axis(
    fig: go.Figure,
    title: str,
    decades: tuple[float, float],
    row: int,
    secondary_y: bool | None = None,
    grid: bool = True,
) -> None:
    """A log10 y axis of the course figure: `decades` is its range in powers of ten."""
    options: dict[str, object] = {} if grid else {"showgrid": False}
    if secondary_y is not None:
        options["secondary_y"] = secondary_y
    fig.update_yaxes(
        type="log",
        title_text=title,
        range=list(decades),
        dtick=1,
        exponentformat="power",
        row=row,
        col=1,
        **options,
    )


__all__ = ["alerts_by_day", "patient_course_figure"]
