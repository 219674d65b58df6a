"""Small shared pieces: the stamp every figure and download carries, the one error display,
the refusal sentence, download buttons and empty states."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl
import streamlit as st

from dashboard.text import md
from monitoring.errors import (
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

    def sidecar(self, file_name: str, rows: int) -> str:
        """The text file beside a download: which file, how many rows, and where they came
        from. (A CSV itself is a plain table: its first line is its header.)"""
        return f"{file_name}\n{rows} rows\n{self.text()}\n"


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
    """A CSV built when clicked (a queue at registry scale is large), a plain table whose first
    line is its header (Excel, R `read.csv` and polars read it as it is), and beside it the
    stamp as a small text file; the file name carries the data version and date. The audit log
    records who downloaded what, with the filters."""
    from dashboard import audit

    recorded = audit.on_download(label, file_name, stamp.filters, frame.height, patient_id)

    def build() -> str:
        recorded()
        return frame_to_csv(frame)

    row = st.container(horizontal=True)
    row.download_button(
        md(label),
        data=build,
        file_name=file_name,
        mime="text/csv",
        key=key,
        icon=":material/download:",
    )
    stem = file_name.removesuffix(".csv")
    row.download_button(
        "Stamp (TXT)",
        data=stamp.sidecar(file_name, frame.height),
        file_name=f"{stem}_stamp.txt",
        mime="text/plain",
        key=f"{key}-stamp",
        type="tertiary",
        icon=":material/info:",
        help=md(f"Where {file_name} came from: {stamp.text()}"),
    )


def for_display(frame: pl.DataFrame) -> pl.DataFrame:
    """Dates as YYYY-MM-DD text (st.dataframe would add a midnight time to them)."""
    return frame.with_columns(pl.col(pl.Date).cast(pl.String))
