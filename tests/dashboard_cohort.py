"""The store the dashboard's loader tests read: a 300-patient synthetic cohort ingested as of
`as_of`, served to the loaders through LTFU_DATABASE_URL."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import streamlit as st

from monitoring.ingest import ingest_files
from monitoring.store import Store
from monitoring.synthetic import make_cohort, write_csv


def served_cohort(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, as_of: date) -> Store:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = Store.open(url)
    ingest_files(store, list(write_csv(make_cohort(300, seed=5), tmp_path / "csv")), today=as_of)
    monkeypatch.setenv("LTFU_DATABASE_URL", url)
    st.cache_resource.clear()  # loaders are keyed on the data version, not the store
    return store
