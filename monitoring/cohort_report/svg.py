"""A small SVG renderer for the report: step curves with 95 % bands, censor marks, axes, a
legend and the numbers at risk aligned under the ticks; and horizontal bars. Text in, text out:
every label is escaped here, so a site or product name is shown as text, never read as markup.

Inline SVG needs no script and no font or file from anywhere, so the report opens offline and
prints the same in any browser.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

FONT = "Helvetica, Arial, sans-serif"
WIDTH = 760
LEFT, RIGHT = 110, 24
PLOT_HEIGHT = 200
ROW = 16  # one legend or at-risk line
AXIS_GREY = "#5A6772"
GRID_GREY = "#E3E7EA"


@dataclass(frozen=True)
class StepSeries:
    """One curve: times in months (ascending, the first is 0) and values in [0, 1] at each;
    `band` the 95 % limits at the same times (None: no band); `censored` (month, value) marks."""

    label: str
    colour: str
    times: tuple[float, ...]
    values: tuple[float, ...]
    band: tuple[tuple[float, float], ...] | None = None
    censored: tuple[tuple[float, float], ...] = ()
    dashed: bool = False


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    colour: str


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _text(x: float, y: float, content: str, **attrs: str) -> str:
    extra = "".join(f' {key.replace("_", "-")}="{escape(val)}"' for key, val in attrs.items())
    return f'<text x="{_num(x)}" y="{_num(y)}"{extra}>{escape(content)}</text>'


def _steps(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The corners of a right-continuous step function through `points`."""
    corners: list[tuple[float, float]] = []
    for i, (t, v) in enumerate(points):
        if i:
            corners.append((t, corners[-1][1]))
        corners.append((t, v))
    return corners


def step_chart(
    series: Sequence[StepSeries],
    *,
    ticks: Sequence[int],
    x_title: str,
    y_title: str,
    at_risk: Sequence[tuple[str, Sequence[int]]] = (),
    caption: str = "",
    y_max: float = 1.0,
) -> str:
    """An SVG figure of step curves on 0 to `y_max` (a multiple of 0.2, at most 1) against months, ticks at `ticks` (the last is the
    axis end), with the numbers at risk (label, one count per tick) under the axis and
    `caption` (the stamp) at its foot."""
    x_end = float(ticks[-1]) if ticks and ticks[-1] > 0 else 1.0
    top = 10 + ROW * len(series) + 8
    bottom = top + PLOT_HEIGHT
    plot_width = WIDTH - LEFT - RIGHT
    height = (
        bottom + 48 + (ROW * (len(at_risk) + 1) + 8 if at_risk else 0) + (ROW if caption else 0)
    )

    def x(months: float) -> float:
        return LEFT + plot_width * min(max(months, 0.0), x_end) / x_end

    def y(value: float) -> float:
        return top + PLOT_HEIGHT * (1.0 - min(max(value, 0.0), y_max) / y_max)

    parts: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {_num(height)}" '
        f'width="100%" role="img" aria-label="{escape(y_title)}" '
        f'font-family="{FONT}" font-size="12">'
    ]
    # legend: one line per curve, above the plot
    for i, s in enumerate(series):
        ly = 10 + ROW * i + 10
        dash = ' stroke-dasharray="6 3"' if s.dashed else ""
        parts.append(
            f'<line x1="{LEFT}" y1="{ly - 4}" x2="{LEFT + 22}" y2="{ly - 4}" '
            f'stroke="{escape(s.colour)}" stroke-width="2.5"{dash}/>'
        )
        parts.append(_text(LEFT + 28, ly, s.label))
    # grid and y axis (0–100 %)
    for pct in range(0, round(100 * y_max) + 1, 20 if y_max > 0.4 else 10):
        gy = y(pct / 100)
        parts.append(
            f'<line x1="{LEFT}" y1="{_num(gy)}" x2="{WIDTH - RIGHT}" y2="{_num(gy)}" '
            f'stroke="{GRID_GREY}" stroke-width="1"/>'
        )
        parts.append(_text(LEFT - 6, gy + 4, f"{pct} %", text_anchor="end", fill=AXIS_GREY))
    parts.append(
        f'<text x="14" y="{_num(top + PLOT_HEIGHT / 2)}" fill="{AXIS_GREY}" text-anchor="middle" '
        f'transform="rotate(-90 14 {_num(top + PLOT_HEIGHT / 2)})">{escape(y_title)}</text>'
    )
    # x axis
    parts.append(
        f'<line x1="{LEFT}" y1="{bottom}" x2="{WIDTH - RIGHT}" y2="{bottom}" '
        f'stroke="{AXIS_GREY}" stroke-width="1"/>'
    )
    for tick in ticks:
        tx = x(float(tick))
        parts.append(
            f'<line x1="{_num(tx)}" y1="{bottom}" x2="{_num(tx)}" y2="{bottom + 4}" '
            f'stroke="{AXIS_GREY}"/>'
        )
        parts.append(_text(tx, bottom + 16, str(tick), text_anchor="middle", fill=AXIS_GREY))
    parts.append(
        _text(LEFT + plot_width / 2, bottom + 34, x_title, text_anchor="middle", fill=AXIS_GREY)
    )
    # bands first, then curves, then censor marks on top
    for s in series:
        if s.band is None:
            continue
        upper = _steps([(t, hi) for t, (_lo, hi) in zip(s.times, s.band, strict=True)])
        lower = _steps([(t, lo) for t, (lo, _hi) in zip(s.times, s.band, strict=True)])
        outline = upper + lower[::-1]
        points = " ".join(f"{_num(x(t))},{_num(y(v))}" for t, v in outline)
        parts.append(
            f'<polygon points="{points}" fill="{escape(s.colour)}" fill-opacity="0.15" '
            'stroke="none"/>'
        )
    for s in series:
        corners = _steps(list(zip(s.times, s.values, strict=True)))
        path = " ".join(
            ("M" if i == 0 else "L") + f"{_num(x(t))},{_num(y(v))}"
            for i, (t, v) in enumerate(corners)
        )
        dash = ' stroke-dasharray="6 3"' if s.dashed else ""
        parts.append(
            f'<path d="{path}" fill="none" stroke="{escape(s.colour)}" stroke-width="2"{dash}>'
            f"<title>{escape(s.label)}</title></path>"
        )
        for t, v in s.censored:
            cx, cy = x(t), y(v)
            parts.append(
                f'<line x1="{_num(cx)}" y1="{_num(cy - 4)}" x2="{_num(cx)}" y2="{_num(cy + 4)}" '
                f'stroke="{escape(s.colour)}" stroke-width="1.2"/>'
            )
    # numbers at risk, aligned under the ticks
    row_y = bottom + 58
    if at_risk:
        parts.append(_text(4, row_y, "Number at risk", font_weight="bold"))
        for label, counts in at_risk:
            row_y += ROW
            parts.append(_text(4, row_y, label, fill=AXIS_GREY))
            for tick, count in zip(ticks, counts, strict=True):
                parts.append(_text(x(float(tick)), row_y, str(count), text_anchor="middle"))
        row_y += 8
    if caption:
        parts.append(_text(4, row_y + ROW - 2, caption, fill=AXIS_GREY, font_size="10"))
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(bars: Sequence[Bar], *, caption: str = "", unit: str = "") -> str:
    """Horizontal bars with their values written beside them."""
    left, bar_h, gap = 230, 16, 6
    top = 6
    height = top + (bar_h + gap) * len(bars) + (ROW + 4 if caption else 4)
    largest = max((b.value for b in bars), default=0) or 1
    width = WIDTH - left - 80
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="100%" '
        f'role="img" font-family="{FONT}" font-size="12">'
    ]
    for i, bar in enumerate(bars):
        by = top + (bar_h + gap) * i
        length = width * bar.value / largest
        parts.append(_text(left - 8, by + bar_h - 4, bar.label, text_anchor="end"))
        parts.append(
            f'<rect x="{left}" y="{by}" width="{_num(length)}" height="{bar_h}" '
            f'fill="{escape(bar.colour)}"/>'
        )
        parts.append(_text(left + length + 6, by + bar_h - 4, f"{bar.value}{unit}"))
    if caption:
        parts.append(_text(4, height - 6, caption, fill=AXIS_GREY, font_size="10"))
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class Mark:
    """A point on a swimmer lane: its month, shape (circle, diamond, triangle, cross, square,
    or one of them with `-open`) and colour."""

    month: float
    shape: str
    colour: str


@dataclass(frozen=True)
class Lane:
    """One patient's lane: follow-up to `end` months, coloured spans, marks, and an arrow when
    still in follow-up."""

    end: float
    spans: tuple[tuple[float, float, str], ...] = ()
    marks: tuple[Mark, ...] = ()
    arrow: bool = False


def _mark(cx: float, cy: float, mark: Mark, r: float) -> str:
    colour = escape(mark.colour)
    hollow = mark.shape.endswith("-open")
    paint = f'fill="white" stroke="{colour}"' if hollow else f'fill="{colour}" stroke="{colour}"'
    shape = mark.shape.removesuffix("-open")
    if shape == "circle":
        return f'<circle cx="{_num(cx)}" cy="{_num(cy)}" r="{_num(r * 0.8)}" {paint}/>'
    if shape == "cross":
        d = r * 0.9
        return (
            f'<path d="M{_num(cx - d)},{_num(cy - d)}L{_num(cx + d)},{_num(cy + d)}'
            f'M{_num(cx - d)},{_num(cy + d)}L{_num(cx + d)},{_num(cy - d)}" '
            f'stroke="{colour}" stroke-width="1.6"/>'
        )
    corners = {
        "diamond": [(0, -r), (r, 0), (0, r), (-r, 0)],
        "triangle": [(0, -r * 1.1), (r, r * 0.8), (-r, r * 0.8)],
        "square": [
            (-r * 0.8, -r * 0.8),
            (r * 0.8, -r * 0.8),
            (r * 0.8, r * 0.8),
            (-r * 0.8, r * 0.8),
        ],
    }.get(shape, [(0, -r), (r, 0), (0, r), (-r, 0)])
    points = " ".join(f"{_num(cx + dx)},{_num(cy + dy)}" for dx, dy in corners)
    return f'<polygon points="{points}" {paint} stroke-width="0.8"/>'


def swimmer_chart(
    lanes: Sequence[Lane],
    *,
    ticks: Sequence[int],
    x_title: str,
    legend: Sequence[tuple[str, str, str]],
    caption: str = "",
    lane_height: float = 6.0,
) -> str:
    """One lane per patient (the first lane at the bottom) against months since infusion.
    `legend`: (shape or "span", colour, label) items."""
    x_end = float(ticks[-1]) if ticks and ticks[-1] > 0 else 1.0
    per_row = 4
    legend_rows = -(-len(legend) // per_row)
    top = 8 + ROW * legend_rows + 6
    bottom = top + lane_height * max(len(lanes), 1)
    plot_width = WIDTH - LEFT - RIGHT
    height = bottom + 44 + (ROW if caption else 0)

    def x(months: float) -> float:
        return LEFT + plot_width * min(max(months, 0.0), x_end) / x_end

    parts: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {_num(height)}" '
        f'width="100%" role="img" aria-label="Swimmer plot" font-family="{FONT}" font-size="12">'
    ]
    column_width = (WIDTH - 8) / per_row
    for i, (shape, colour, label) in enumerate(legend):
        lx, ly = 8 + column_width * (i % per_row), 8 + ROW * (i // per_row) + 8
        if shape == "span":
            parts.append(
                f'<line x1="{_num(lx)}" y1="{_num(ly)}" x2="{_num(lx + 18)}" y2="{_num(ly)}" '
                f'stroke="{escape(colour)}" stroke-width="4"/>'
            )
        else:
            parts.append(_mark(lx + 9, ly, Mark(0.0, shape, colour), 4.5))
        parts.append(_text(lx + 24, ly + 4, label))
    parts.append(
        f'<text x="14" y="{_num((top + bottom) / 2)}" fill="{AXIS_GREY}" text-anchor="middle" '
        f'transform="rotate(-90 14 {_num((top + bottom) / 2)})">'
        f"Patients, one lane each (n = {len(lanes)})</text>"
    )
    r = max(lane_height * 0.75, 2.0)
    for i, lane in enumerate(lanes):
        cy = bottom - lane_height * (i + 0.5)
        parts.append(
            f'<line x1="{_num(x(0))}" y1="{_num(cy)}" x2="{_num(x(lane.end))}" y2="{_num(cy)}" '
            f'stroke="#C9D1D9" stroke-width="{_num(lane_height * 0.5)}"/>'
        )
        for start, stop, colour in lane.spans:
            parts.append(
                f'<line x1="{_num(x(start))}" y1="{_num(cy)}" x2="{_num(x(stop))}" '
                f'y2="{_num(cy)}" stroke="{escape(colour)}" '
                f'stroke-width="{_num(lane_height * 0.8)}"/>'
            )
        if lane.arrow:
            ex = x(lane.end)
            parts.append(
                f'<polygon points="{_num(ex)},{_num(cy - r * 0.8)} {_num(ex + r * 1.4)},'
                f'{_num(cy)} {_num(ex)},{_num(cy + r * 0.8)}" fill="{AXIS_GREY}"/>'
            )
        for mark in lane.marks:
            parts.append(_mark(x(mark.month), cy, mark, r))
    parts.append(
        f'<line x1="{LEFT}" y1="{_num(bottom)}" x2="{WIDTH - RIGHT}" y2="{_num(bottom)}" '
        f'stroke="{AXIS_GREY}" stroke-width="1"/>'
    )
    for tick in ticks:
        tx = x(float(tick))
        parts.append(_text(tx, bottom + 16, str(tick), text_anchor="middle", fill=AXIS_GREY))
    parts.append(
        _text(LEFT + plot_width / 2, bottom + 34, x_title, text_anchor="middle", fill=AXIS_GREY)
    )
    if caption:
        parts.append(_text(4, bottom + 34 + ROW, caption, fill=AXIS_GREY, font_size="10"))
    parts.append("</svg>")
    return "".join(parts)
