"""Small shared pieces: the stamp every figure and download carries, the one error display,
the refusal sentence, download buttons and empty states."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import plotly.graph_objects as go
import polars as pl
import streamlit as st

from dashboard.text import md
from monitoring.errors import (
    ExportUnavailableError,
    LtfuError,
    PermissionDeniedError,
    RejectedUploadError,
)
from monitoring.exports import frame_to_csv


@dataclass(frozen=True)
class Stamp:
    """Where a number came from: data version, evaluation date and the filters applied."""

    data_version: int
    as_of: date
    filters: str

    def text(self) -> str:
        return f"Data version {self.data_version} · evaluated {self.as_of.isoformat()} · {self.filters}"

    def slug(self) -> str:
        return f"v{self.data_version}_{self.as_of.isoformat()}"

    def csv_header(self) -> str:
        return f"# {self.text()}\n"


def show_stamp(stamp: Stamp) -> None:
    st.caption(md(stamp.text()))


def show_error(exc: LtfuError) -> None:
    """The dashboard's one translation of the core's errors."""
    if isinstance(exc, PermissionDeniedError):
        refuse(str(exc))
    elif isinstance(exc, RejectedUploadError):
        st.error(md(exc))
    else:
        st.error(md(exc), icon=":material/error:")


def refuse(sentence: str) -> None:
    """A refused page or action: one sentence (plain text), nothing else of it."""
    st.warning(md(sentence), icon=":material/block:")


def empty_state(message: str) -> None:
    """An empty page or section: plain text (user values in it are not interpreted)."""
    st.info(md(message), icon=":material/info:")


def csv_download(
    label: str,
    frame: pl.DataFrame,
    file_name: str,
    stamp: Stamp,
    key: str,
    patient_id: str | None = None,
) -> None:
    """A CSV built when clicked (a queue at registry scale is large); the audit log records
    who downloaded what, with the filters."""
    from dashboard import audit

    recorded = audit.on_download(label, file_name, stamp.filters, frame.height, patient_id)

    def build() -> str:
        recorded()
        return stamp.csv_header() + frame_to_csv(frame)

    st.download_button(
        md(label),
        data=build,
        file_name=file_name,
        mime="text/csv",
        key=key,
        icon=":material/download:",
    )


@st.cache_data(max_entries=8, show_spinner="Drawing the PNG and SVG…")
def _images(figure_json: str) -> tuple[bytes, bytes]:
    import plotly.io as pio

    from dashboard import charts

    return charts.export_images(pio.from_json(figure_json))


def figure_downloads(fig: go.Figure, base_name: str, key: str, filters: str = "") -> None:
    """PNG and SVG of a figure (kaleido with a Chromium); says so when it cannot export."""
    try:
        png, svg = _images(fig.to_json())
    except ExportUnavailableError as exc:
        st.caption(f"Figure export unavailable: {md(exc)}")
        return
    from dashboard import audit

    left, right = st.columns(2)
    for column, data, kind, mime in (
        (left, png, "png", "image/png"),
        (right, svg, "svg", "image/svg+xml"),
    ):
        name = f"{base_name}.{kind}"
        recorded = audit.on_download(f"Figure {kind.upper()}", name, filters, None)
        column.download_button(
            f"Figure {md(kind.upper())}",
            _after(recorded, data),
            name,
            mime,
            key=f"{key}-{kind}",
            icon=":material/image:",
        )


def _after(recorded: Callable[[], None], data: bytes) -> Callable[[], bytes]:
    def build() -> bytes:
        recorded()
        return data

    return build


def for_display(frame: pl.DataFrame) -> pl.DataFrame:
    """Dates as YYYY-MM-DD text (st.dataframe would add a midnight time to them)."""
    return frame.with_columns(pl.col(pl.Date).cast(pl.String))
