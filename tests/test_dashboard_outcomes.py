"""A filter change on the dashboard picks the cohort's outcomes from everyone's: the same frame
as deriving them for the filtered cohort (outcomes are per patient)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import streamlit as st

from dashboard import data
from dashboard.filters import Filters
from monitoring.ingest import ingest_files
from monitoring.outcomes import derive_outcomes
from monitoring.store import Store
from monitoring.store.site_scope import SiteScope
from monitoring.synthetic import make_cohort, write_csv

AS_OF = date(2026, 6, 30)


@pytest.mark.filterwarnings("ignore")  # st.cache_data outside a running app warns
def test_filtered_outcomes_equal_the_filtered_cohorts_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = Store.open(url)
    ingest_files(store, list(write_csv(make_cohort(300, seed=5), tmp_path / "csv")), today=AS_OF)
    monkeypatch.setenv("LTFU_DATABASE_URL", url)
    st.cache_resource.clear()  # loaders are keyed on the data version, not the store
    patients = store.patients()
    product, site = patients["product"][0], patients["site"][0]
    version, scope = store.data_version(), SiteScope.every()
    for chosen in (
        Filters(products=(product,)),
        Filters(sites=(site,), years=(2024, 2025)),
        Filters(age_groups=("<3",)),
    ):
        cohort_patients, cohort_visits = chosen.apply(*store.snapshot()[1:])
        expected = derive_outcomes(cohort_patients, cohort_visits, as_of=AS_OF)
        got = data._outcomes(version, scope, chosen, AS_OF)
        assert 0 < expected.height < patients.height, chosen
        assert got.equals(expected), chosen
    store.close()
