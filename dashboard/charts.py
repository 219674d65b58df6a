"""Pure plotly builders: tables in, `go.Figure` out. No streamlit here.

One colour-blind-safe palette (Okabe–Ito) is used everywhere: CD19 status, severity, groups.
Times are drawn in months since the origin (30.4375 days); every axis names its unit; every
figure carries the stamp (data version, evaluation date, filters) at its foot.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from dashboard import text
from monitoring.alerts import SEVERITIES
from monitoring.cohort_views import cd19_category, group_rows, risk_table
from monitoring.config import DAYS_PER_MONTH
from monitoring.durability_results import DurabilitySummary, Landmark
from monitoring.errors import ExportUnavailableError
from monitoring.palette import CAUSE_COLOURS, CAUSE_LABELS, CD19_COLOURS

# ---- palette ---------------------------------------------------------------------------------
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
    "grey": "#999999",
}
GROUP_COLOURS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000"]
SEVERITY_COLOURS = {
    "critical": "#D55E00",
    "high": "#E69F00",
    "medium": "#56B4E9",
    "data": "#999999",
}
SEVERITY_ORDER = SEVERITIES  # one order: monitoring.alerts
MRD_METHODS = {
    "mrd_flow_fraction": ("Flow", "#0072B2", "circle"),
    "mrd_ngs_fraction": ("NGS", "#E69F00", "diamond"),
    "mrd_pcr_fraction": ("RQ-PCR", "#009E73", "square"),
}
FONT = "Source Sans Pro, Helvetica, Arial, sans-serif"
_BAND_ALPHA = 0.15


def _rgba(hex_colour: str, alpha: float) -> str:
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def _band(
    x: list[float], rows: pl.DataFrame, colour: str, alpha: float, group: str | None = None
) -> tuple[go.Scatter, go.Scatter]:
    """The 95 % band of one step curve: an invisible upper line and a lower line filled to it.
    With `group`, the band joins that legend group (hidden with its curve)."""
    upper = rows.select(pl.col("ci_upper").fill_nan(None).forward_fill())
    lower = rows.select(pl.col("ci_lower").fill_nan(None).forward_fill())
    common: dict[str, Any] = {
        "x": x,
        "mode": "lines",
        "line_shape": "hv",
        "line": {"width": 0},
        "hoverinfo": "skip",
        "showlegend": False,
    }
    if group is not None:
        common["legendgroup"] = group
    return (
        go.Scatter(y=_steps(upper, "ci_upper"), **common),
        go.Scatter(
            y=_steps(lower, "ci_lower"),
            fill="tonexty",
            fillcolor=_rgba(colour, alpha),
            name=f"{group or ''} 95 % CI".strip(),
            **common,
        ),
    )


def months(days: Any) -> Any:
    return None if days is None else days / DAYS_PER_MONTH


def _layout_spec(
    stamp: str | None,
    height: int,
    title: str | None = None,
    subtitle: str | None = None,
) -> dict[str, Any]:
    """Font, margins, a legend above the plot, the title (with `subtitle`, e.g. the test and its
    p, on a second line) and the stamp at the foot, as layout properties. Every text is escaped
    as plotly text."""
    top = 20 if not title else (96 if subtitle else 60)
    spec: dict[str, Any] = {
        "height": height,
        "template": "plotly_white",
        "font": {"family": FONT, "size": 13, "color": "#1F2A36"},
        "margin": {"l": 70, "r": 20, "t": top, "b": 90 if stamp else 50},
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.01, "x": 0, "title": None},
        "hovermode": "closest",
    }
    if title:
        heading: dict[str, Any] = {
            "text": f"<b>{text.plot(title)}</b>",
            "x": 0,
            "xref": "paper",
            "xanchor": "left",
            "font": {"size": 17},
        }
        if subtitle:
            heading["subtitle"] = {"text": text.plot(subtitle), "font": {"size": 13}}
        spec["title"] = heading
    if stamp:
        spec["annotations"] = [
            {
                "text": text.plot(stamp),
                "xref": "paper",
                "yref": "paper",
                "x": 0,
                "y": 0,
                "yshift": -80 if height > 300 else -60,
                "xanchor": "left",
                "yanchor": "bottom",
                "showarrow": False,
                "font": {"size": 11, "color": "#5A6772"},
            }
        ]
    return spec


def _layout(
    fig: go.Figure,
    stamp: str | None,
    height: int,
    title: str | None = None,
    subtitle: str | None = None,
) -> None:
    """`_layout_spec` applied to `fig` (its stamp added to the annotations it has)."""
    spec = _layout_spec(stamp, height, title, subtitle)
    annotations = spec.pop("annotations", [])
    fig.update_layout(spec)
    for annotation in annotations:
        fig.add_annotation(annotation)


def _merged(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `update` merged in, nested dicts key by key (as `update_layout` merges)."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


# ---- survival curves ------------------------------------------------------------------------
def last_time(table: pl.DataFrame, column: str = "time_days") -> float:
    """The largest time of a table in days (0 when it has none)."""
    value = table[column].max()
    return float(value) if isinstance(value, int | float) else 0.0


def tick_months(max_days: float, step: int | None = None) -> list[int]:
    """0, 6, 12, … (or 12-month steps beyond 5 years) covering `max_days`."""
    top = max(max_days / DAYS_PER_MONTH, 1.0)
    step = step or (6 if top <= 60 else 12)
    return list(range(0, int(math.ceil(top / step)) * step + 1, step))


def _steps(frame: pl.DataFrame, column: str) -> list[float | None]:
    return [None if v is None or not math.isfinite(v) else v for v in frame[column].to_list()]


def _from_one(rows: pl.DataFrame) -> pl.DataFrame:
    """The curve starts at 100 % just before time 0 (events on day 0 draw a drop at 0)."""
    start = rows.head(1).with_columns(
        time_days=pl.lit(-1e-9),
        estimate=pl.lit(1.0),
        ci_lower=pl.lit(1.0),
        ci_upper=pl.lit(1.0),
        events=pl.lit(0, rows["events"].dtype),
        censored=pl.lit(0, rows["censored"].dtype),
    )
    return pl.concat([start, rows], how="vertical_relaxed")


def km_figure(
    table: pl.DataFrame,
    summary: DurabilitySummary,
    *,
    y_title: str,
    x_title: str = "Months since infusion",
    stamp: str | None = None,
    title: str | None = None,
    subtitle: str | None = None,
    labels: Mapping[str, str] | None = None,
    names: Mapping[str, str] | None = None,
) -> go.Figure:
    """Kaplan–Meier curves: step lines, 95 % bands, censor marks, median guide, and a
    number-at-risk strip under the plot on the same time axis.

    `labels`: legend text per raw group (with n, events, median); `names`: the short readable
    group name the at-risk strip shows. `title` / `subtitle` (the test and its p) and `stamp` are
    drawn on the figure, so a saved PNG or SVG stands alone."""
    medians = {g.group: g.median_days for g in summary.groups}
    return _km(table, medians, y_title, x_title, stamp, title, subtitle, labels, names)


def km_overlay_figure(
    curves: Sequence[tuple[str, str, pl.DataFrame, float | None]],
    *,
    y_title: str = "Survival (%)",
    x_title: str = "Months since infusion",
    stamp: str | None = None,
    title: str | None = None,
    subtitle: str | None = None,
) -> go.Figure:
    """Several endpoints' Kaplan–Meier curves (all patients) on one figure: (short name for
    the at-risk strip, legend label, curve table, median days) each."""
    table = pl.concat(
        [
            t.with_columns(group=pl.lit(short, pl.String)).cast({"group": pl.String})
            for short, _label, t, _median in curves
            if t.height
        ],
        how="vertical_relaxed",
    )
    medians = {short: median for short, _label, _t, median in curves}
    labels = {short: label for short, label, _t, _median in curves}
    return _km(table, medians, y_title, x_title, stamp, title, subtitle, labels, None)


def _km(
    table: pl.DataFrame,
    medians: Mapping[str, float | None],
    y_title: str,
    x_title: str,
    stamp: str | None,
    title: str | None,
    subtitle: str | None,
    labels: Mapping[str, str] | None,
    names: Mapping[str, str] | None,
) -> go.Figure:
    ticks = tick_months(last_time(table))
    groups = group_rows(table)
    strip = 0.1 + 0.035 * len(groups)  # the at-risk strip grows with its rows
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[1 - strip, strip], vertical_spacing=0.1
    )
    for i, (raw_group, observed) in enumerate(groups):
        group = text.plot(raw_group)  # a site or product name: shown as text, never as HTML
        colour = GROUP_COLOURS[i % len(GROUP_COLOURS)]
        rows = _from_one(observed)
        x = [months(t) for t in rows["time_days"].to_list()]
        alpha = _BAND_ALPHA if len(groups) <= 2 else 0.07
        for trace in _band(x, rows, colour, alpha, group):
            fig.add_trace(trace, row=1, col=1)
        fig.add_trace(
            go.Scatter(
                x=x,
                y=rows["estimate"].to_list(),
                mode="lines",
                line_shape="hv",
                line={"color": colour, "width": 2.5},
                name=text.plot((labels or {}).get(raw_group, raw_group)),
                legendgroup=group,
                customdata=rows.select("at_risk", "events", "censored").rows(),
                hovertemplate=(
                    "%{x:.1f} months: %{y:.1%}<br>at risk %{customdata[0]}, events "
                    "%{customdata[1]}, censored %{customdata[2]}<extra>" + group + "</extra>"
                ),
            ),
            row=1,
            col=1,
        )
        cens = rows.filter(pl.col("censored") > 0)
        if cens.height:
            fig.add_trace(
                go.Scatter(
                    x=[months(t) for t in cens["time_days"].to_list()],
                    y=cens["estimate"].to_list(),
                    mode="markers",
                    marker={
                        "symbol": "line-ns-open",
                        "size": 9,
                        "color": colour,
                        "line": {"width": 1.5},
                    },
                    name="censored",
                    legendgroup=group,
                    showlegend=i == 0,
                    hovertemplate="censored at %{x:.1f} months<extra>" + group + "</extra>",
                ),
                row=1,
                col=1,
            )
        median = medians.get(raw_group)
        if median is not None:
            fig.add_trace(
                go.Scatter(
                    x=[0, months(median), months(median)],
                    y=[0.5, 0.5, 0],
                    mode="lines",
                    line={"color": colour, "width": 1, "dash": "dot"},
                    showlegend=False,
                    hovertemplate=f"median {months(median):.1f} months<extra>{group}</extra>",
                ),
                row=1,
                col=1,
            )
        # number at risk strip, one row per group under the curves, on their time axis
        counts = risk_table(observed, ticks).row(0)
        short = text.plot((names or {}).get(raw_group, raw_group))
        fig.add_trace(
            go.Scatter(
                x=ticks,
                y=[short] * len(ticks),
                mode="text",
                text=[str(c) for c in counts[1:]],
                textfont={"color": colour, "size": 12},
                showlegend=False,
                hoverinfo="skip",
            ),
            row=2,
            col=1,
        )
    if not any(m is not None for m in medians.values()):
        fig.add_hline(y=0.5, line={"color": "#B0B8C0", "width": 1, "dash": "dot"}, row=1, col=1)
    fig.update_yaxes(title_text=y_title, range=[0, 1.02], tickformat=".0%", row=1, col=1)
    fig.update_yaxes(
        title_text="At risk (n)",
        range=[len(groups) - 0.4, -0.6],  # top row first, its numbers not cut by the edge
        showgrid=False,
        type="category",
        row=2,
        col=1,
    )
    fig.update_xaxes(tickvals=ticks, range=[-0.5, ticks[-1] + 0.5], row=1, col=1)
    fig.update_xaxes(title_text=x_title, tickvals=ticks, showgrid=False, row=2, col=1)
    _layout(fig, stamp, 560 + 24 * max(0, len(groups) - 1), title, subtitle)
    _legend_right(fig)
    return fig


def _legend_right(fig: go.Figure) -> None:
    """One legend column right of the plot: long labels (n, events, median) never cover the
    curves, the title or the toolbar above them."""
    fig.update_layout(_LEGEND_RIGHT)


_LEGEND_RIGHT: dict[str, Any] = {
    "legend": {
        "orientation": "v",
        "x": 1.01,
        "xanchor": "left",
        "y": 1,
        "yanchor": "top",
        "font": {"size": 12},
    },
    "margin": {"r": 10},
}


def cif_figure(
    table: pl.DataFrame,
    *,
    x_title: str = "Months since remission onset",
    stamp: str | None = None,
    title: str | None = None,
    subtitle: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> go.Figure:
    """Cumulative incidence (Aalen–Johansen) with 95 % bands.

    Without groups, one panel with a line per cause. With groups, one panel per cause (relapse,
    each CD19 category, the competing causes) on shared axes, a colour per group and one
    legend entry per group: 4 products × 4 causes stay readable as 4 small panels instead of
    16 lines on one."""
    groups = group_rows(table)
    if len(groups) <= 1:
        return _cif_single(table, x_title, stamp, title, subtitle)
    causes = table["cause"].unique(maintain_order=True).to_list()
    cols = 1 if len(causes) == 1 else 2
    nrows = math.ceil(len(causes) / cols)
    fig = make_subplots(
        rows=nrows,
        cols=cols,
        shared_xaxes=True,
        shared_yaxes=True,
        subplot_titles=[CAUSE_LABELS.get(c, text.plot(c)) for c in causes],
        vertical_spacing=0.16 if nrows > 1 else 0.1,
        horizontal_spacing=0.05,
    )
    bands = len(groups) <= 2
    for gi, (raw_group, rows) in enumerate(groups):
        group = text.plot(raw_group)
        colour = GROUP_COLOURS[gi % len(GROUP_COLOURS)]
        legend_name = text.plot((labels or {}).get(raw_group, raw_group))
        for ci, cause in enumerate(causes):
            row, col = ci // cols + 1, ci % cols + 1
            part = rows.filter(pl.col("cause") == cause).sort("time_days")
            if not part.height:
                continue
            x = [months(t) for t in part["time_days"].to_list()]
            if bands:
                for trace in _band(x, part, colour, 0.12, group):
                    fig.add_trace(trace, row=row, col=col)
            cause_name = CAUSE_LABELS.get(cause, text.plot(cause))
            line = _incidence_line(x, part, legend_name, colour, 2.2, f"{group} · {cause_name}")
            line.update(legendgroup=group, showlegend=ci == 0)
            fig.add_trace(line, row=row, col=col)
    ticks = tick_months(last_time(table))
    drawn = table["ci_upper"] if bands else table["estimate"]
    top = float(drawn.fill_nan(None).max() or 0.0)  # type: ignore[arg-type]
    fig.update_yaxes(tickformat=".0%", range=[0, min(1.02, top + 0.05)])
    for r in range(1, nrows + 1):
        fig.update_yaxes(title_text="Cumulative incidence (%)", row=r, col=1)
    fig.update_xaxes(tickvals=ticks, range=[-0.5, ticks[-1] + 0.5])
    for c in range(1, cols + 1):
        fig.update_xaxes(title_text=x_title, row=nrows, col=c)
    fig.update_annotations(font={"size": 13})  # the panel titles
    _layout(fig, stamp, 180 + 300 * nrows, title, subtitle)
    fig.update_layout(margin={"t": fig.layout.margin.t + 24})  # room for the panel titles
    _legend_right(fig)
    return fig


def _incidence_line(
    x: list[float], part: pl.DataFrame, name: str, colour: str, width: float, label: str
) -> go.Scatter:
    """One cumulative-incidence step curve; `label` names it in the hover box."""
    return go.Scatter(
        x=x,
        y=part["estimate"].to_list(),
        mode="lines",
        line_shape="hv",
        name=name,
        line={"color": colour, "width": width},
        hovertemplate="%{x:.1f} months: %{y:.1%}<extra>" + label + "</extra>",
    )


def _cif_single(
    table: pl.DataFrame,
    x_title: str,
    stamp: str | None,
    title: str | None,
    subtitle: str | None,
) -> go.Figure:
    fig = go.Figure()
    for cause in table["cause"].unique(maintain_order=True).to_list():
        part = table.filter(pl.col("cause") == cause).sort("time_days")
        colour = CAUSE_COLOURS.get(cause, GROUP_COLOURS[0])
        name = CAUSE_LABELS.get(cause, text.plot(cause))
        x = [months(t) for t in part["time_days"].to_list()]
        for trace in _band(x, part, colour, 0.12):
            fig.add_trace(trace)
        fig.add_trace(_incidence_line(x, part, name, colour, 2.5, name))
    ticks = tick_months(last_time(table))
    fig.update_yaxes(title_text="Cumulative incidence (%)", tickformat=".0%", rangemode="tozero")
    fig.update_xaxes(title_text=x_title, tickvals=ticks)
    _layout(fig, stamp, 500, title, subtitle)
    _legend_right(fig)
    return fig


def landmark_frame(
    summary: DurabilitySummary, names: Mapping[str, str] | None = None
) -> pl.DataFrame:
    """The landmark estimates with 95 % limits and numbers at risk, one row per group (and
    cause); `names` gives the readable group names."""
    rows: list[dict[str, Any]] = []

    def fmt(v: float | None) -> str:
        return "–" if v is None else f"{100 * v:.1f} %"

    def add(group: str, cause: str | None, landmarks: tuple[Landmark, ...]) -> None:
        for lm in landmarks:
            row: dict[str, Any] = {"Group": (names or {}).get(group, group)}
            if cause is not None:
                row["Cause"] = CAUSE_LABELS.get(cause, cause)
            row |= {
                "Months": lm.months,
                "Estimate": fmt(lm.estimate),
                "95 % CI": (
                    "–"
                    if lm.ci_lower is None
                    else f"{100 * lm.ci_lower:.1f}–{100 * (lm.ci_upper or 0):.1f} %"
                ),
                # past the end of follow-up nobody is at risk to count: a dash, as the estimate
                "At risk": "–" if lm.at_risk is None else str(lm.at_risk),
            }
            rows.append(row)

    for g in summary.groups:
        if g.causes is not None:
            for c in g.causes:
                add(g.group, c.cause, c.landmarks)
        else:
            add(g.group, None, g.landmarks)
    return pl.DataFrame(rows)


def export_images(fig: go.Figure) -> tuple[bytes, bytes]:
    """(PNG, SVG) through kaleido; raises ExportUnavailableError when it cannot run."""
    try:
        png = fig.to_image(format="png", width=1100, height=fig.layout.height or 560, scale=2)
        svg = fig.to_image(format="svg", width=1100, height=fig.layout.height or 560)
    except Exception as exc:  # kaleido raises several types when Chromium is missing
        raise ExportUnavailableError(
            f"{type(exc).__name__}: kaleido needs a Chromium (install it with "
            "scripts/system-deps.sh)"
        ) from exc
    return png, svg


# ---- swimmer plot ---------------------------------------------------------------------------
def month_ticks(max_days: float, most: int = 12) -> list[int]:
    """Month ticks from 0 at a round step (1, 3, 6, 12, 24 or 60 months) giving at most `most`
    intervals: a cohort followed for 5 weeks gets 0, 1, 2 months, not one tick at 0."""
    top = max(max_days / DAYS_PER_MONTH, 1.0)
    step = next((s for s in (1, 3, 6, 12, 24) if top / s <= most), 60)
    return list(range(0, int(math.ceil(top / step)) * step + 1, step))


def _bars(
    lanes: pl.DataFrame, start: str, stop: str
) -> tuple[list[float], list[float], list[int], list[str]]:
    """(base months, length months, lane, patient id) of the lanes' [start, stop] spans."""
    base: list[float] = []
    length: list[float] = []
    ys: list[int] = []
    ids: list[str] = []
    for pid, lane, a, b in lanes.select("patient_id", "lane", start, stop).iter_rows():
        if a is None or b is None or b < a:
            continue
        base.append(a / DAYS_PER_MONTH)
        length.append((b - a) / DAYS_PER_MONTH)
        ys.append(lane)
        ids.append(pid)
    return base, length, ys, ids


def swimmer_figure(
    lanes: pl.DataFrame, mrd_points: pl.DataFrame, *, stamp: str | None = None
) -> go.Figure:
    """`swimmer_spec` as a figure (`figure_of`: plotly does not validate it again)."""
    return figure_of(*swimmer_spec(lanes, mrd_points, stamp=stamp))


def swimmer_spec(
    lanes: pl.DataFrame, mrd_points: pl.DataFrame, *, stamp: str | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(traces, layout) of the swimmer plot: one lane per patient on months since infusion, lane 1 at the top, each lane labelled
    with its patient ID. `lanes`: `cohort_views.swimmer_lanes` (or a page of
    `monitoring.swimmer`); `mrd_points`: patient_id, day (MRD detected).

    Every mark carries its patient ID as `customdata`, and the follow-up span is a bar across
    the whole lane, so a click anywhere on a lane names the patient (the page opens them).

    Built as one specification and validated once: adding each trace and layout part to a
    figure in turn validated and copied the template again each time (0.19 s of a new filter's
    run at 100 000 patients, on a loaded machine)."""
    traces: list[dict[str, Any]] = []
    pid = dict(zip(lanes["patient_id"].to_list(), lanes["lane"].to_list(), strict=True))
    ids = [text.plot(p) for p in lanes["patient_id"].to_list()]
    for start, stop, name, colour, width in (
        ("zero", "end_day", "Follow-up", "#C9D1D9", 0.7),
        ("aplasia_start", "aplasia_end", "B-cell aplasia", "#56B4E9", 0.4),
        ("recovery_start", "recovery_end", "B-cell recovery", "#E69F00", 0.4),
    ):
        base, length, ys, who = _bars(lanes.with_columns(zero=pl.lit(0.0)), start, stop)
        traces.append(
            {
                "type": "bar",
                "base": base,
                "x": length,
                "y": ys,
                "orientation": "h",
                "width": width,
                "marker": {"color": colour, "line": {"width": 0}},
                "name": name,
                "customdata": who,
                "hovertemplate": "%{customdata}: "
                + name.lower()
                + " from month %{base:.1f}, %{x:.1f} months long"
                + "<br>click to open the patient<extra></extra>",
            }
        )

    def markers(
        frame: pl.DataFrame,
        day: str,
        name: str,
        symbol: str,
        colour: str,
        size: int = 9,
    ) -> None:
        part = frame.filter(pl.col(day).is_not_null())
        if not part.height:
            return
        traces.append(
            {
                "type": "scatter",
                "x": [months(d) for d in part[day].to_list()],
                "y": part["lane"].to_list(),
                "mode": "markers",
                "name": name,
                "marker": {
                    "symbol": symbol,
                    "size": size,
                    "color": colour,
                    "line": {"width": 1, "color": colour},
                },
                "customdata": part["patient_id"].to_list(),
                "hovertemplate": "%{customdata}: " + name + " at %{x:.1f} months<extra></extra>",
            }
        )

    markers(lanes, "remission_onset_day", "CR/CRi", "circle", "#009E73", 7)
    if mrd_points.height:
        mrd = mrd_points.with_columns(
            lane=pl.col("patient_id").replace_strict(pid, default=None)
        ).filter(pl.col("lane").is_not_null())
        markers(mrd, "day", "MRD detected", "diamond-open", "#1F2A36", 7)
    relapses = lanes.filter(pl.col("relapse_day").is_not_null()).with_columns(
        cat=pl.col("relapse_cd19_status").map_elements(cd19_category, return_dtype=pl.String)
    )
    for cat, colour in CD19_COLOURS.items():
        markers(
            relapses.filter(pl.col("cat") == cat),
            "relapse_day",
            f"Relapse, {cat}",
            "triangle-up",
            colour,
            11,
        )
    markers(lanes, "hsct_day", "Transplant", "star", "#000000", 10)
    markers(lanes, "death_day", "Death", "x", "#000000", 10)
    ongoing = lanes.filter(pl.col("in_follow_up"))
    markers(ongoing, "end_day", "In follow-up", "arrow-right", "#5A6772", 8)
    n = lanes.height
    ticks = month_ticks(last_time(lanes, "end_day"))
    axes = {
        "yaxis": {
            "title": {"text": f"Patients, one lane each (n = {n})"},
            "tickvals": lanes["lane"].to_list(),
            "ticktext": ids,
            "tickfont": {"size": 11},
            "range": [n + 0.7, 0.3],  # lane 1 at the top
            "showgrid": False,
            "zeroline": False,
        },
        "xaxis": {
            "title": {"text": "Months since infusion"},
            "tickvals": ticks,
            "range": [0, ticks[-1] + 0.02 * ticks[-1]],
            "showgrid": True,
        },
    }
    layout = _merged(axes, _layout_spec(stamp, max(360, 130 + 22 * n)))
    layout = _merged(layout, _LEGEND_RIGHT)  # clear of the toolbar above the plot
    layout = _merged(layout, {"barmode": "overlay", "bargap": 0, "margin": {"t": 40, "l": 110}})
    return traces, layout


def figure_of(traces: list[dict[str, Any]], layout: dict[str, Any]) -> go.Figure:
    """The figure `go.Figure(data=traces, layout=layout)` gives, without plotly validating it.

    Validating copied the named template (a deep copy that rebuilt and validated every one of
    its objects) and checked every property, on every new filter's swimmer page: 9 of its
    17 ms in a quiet process, 45 ms in the loaded server. Only what validation changes here is
    done: the template name becomes the template (one copy per process) and a None (unset)
    is left out. That the result is plotly's own, byte for byte, for the specifications this
    module builds is tested (tests/test_swimmer.py), so what plotly would refuse fails there."""
    spec = _without_none(layout)
    if isinstance(spec.get("template"), str):
        spec["template"] = _template(spec["template"])
    return go.Figure(data=[_without_none(t) for t in traces], layout=spec, _validate=False)


@functools.cache
def _template(name: str) -> dict[str, Any]:
    """Plotly's registered template `name`, as the plain values a figure holds (its figures
    copy these, never change them)."""
    import plotly.io as pio

    json: dict[str, Any] = pio.templates[name].to_plotly_json()
    return json


def _without_none(spec: dict[str, Any]) -> dict[str, Any]:
    """`spec` without its None properties, nested ones too (None unsets a property: plotly
    leaves it out), list items kept as they are (a None there is a gap in the data)."""
    return {key: _kept(value) for key, value in spec.items() if value is not None}


def _kept(value: Any) -> Any:
    if isinstance(value, dict):
        return _without_none(value)
    if isinstance(value, list) and any(isinstance(item, dict) for item in value):
        return [_kept(item) for item in value]  # e.g. the annotations
    return value
