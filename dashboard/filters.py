"""Sidebar filters (site, product, infusion year, age group) and the evaluation date.

The widgets live in the sidebar drawn by app.py on every run, so their values survive page
changes; pages read them back with `current()`. Empty selection = everyone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl
import streamlit as st

from dashboard.site_scope import current_scope
from monitoring.endpoints import AGE_GROUPS, add_group

_KEYS = {
    "sites": "filter_site",
    "products": "filter_product",
    "years": "filter_year",
    "age_groups": "filter_age",
}
AS_OF_KEY = "filter_as_of"


@dataclass(frozen=True)
class Filters:
    sites: tuple[str, ...] = ()
    products: tuple[str, ...] = ()
    years: tuple[int, ...] = ()
    age_groups: tuple[str, ...] = ()

    def apply(
        self, patients: pl.DataFrame, visits: pl.DataFrame
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        chosen = self.chosen(patients)
        return chosen, of_patients(visits, chosen)

    def chosen(self, patients: pl.DataFrame) -> pl.DataFrame:
        """The patients these filters keep (`apply` without the visits: what a page that
        needs only who is in the cohort reads; filtering 1.2 M visits took 75 ms)."""
        keep = pl.lit(True)
        if self.sites:
            keep &= pl.col("site").is_in(list(self.sites))
        if self.products:
            keep &= pl.col("product").is_in(list(self.products))
        if self.years:
            keep &= pl.col("infusion_date").dt.year().is_in(list(self.years))
        if self.age_groups:
            patients = patients.with_columns(_age=_age_groups(patients))
            keep &= pl.col("_age").is_in(list(self.age_groups))
        return patients.filter(keep).drop("_age", strict=False)

    def without(self, held: Held) -> Filters:
        """These filters without the parts that keep every patient: a part whose values
        include every value its column holds, with no blank in it (the multiselect's "Select
        all", or every site ticked), filters nobody out. The result chooses the same patients
        in the same order, under the key of a cohort that may have been asked for already, so
        its views are read from the cache instead of derived again over the same patients
        (at 100 000 patients, "Select all" derived the Overview anew)."""
        parts = {name: getattr(self, name) for name in _KEYS}
        return Filters(
            **{
                name: () if held.keeps_everyone(name, values) else values
                for name, values in parts.items()
            }
        )

    def describe(self) -> str:
        parts = [
            f"{label}: {', '.join(str(v) for v in values)}"
            for label, values in (
                ("site", self.sites),
                ("product", self.products),
                ("infusion year", self.years),
                ("age", self.age_groups),
            )
            if values
        ]
        return "filters: " + ("; ".join(parts) if parts else "none (all patients)")


@dataclass(frozen=True)
class Held:
    """Per filter part, the values its column holds among a set of patients (None: a blank
    is among them, so choosing values always filters someone out)."""

    values: tuple[tuple[str, frozenset[object] | None], ...]

    @classmethod
    def of(cls, patients: pl.DataFrame) -> Held:
        columns = {
            "sites": patients["site"],
            "products": patients["product"],
            "years": patients["infusion_date"].dt.year(),
            "age_groups": _age_groups(patients),
        }
        return cls(
            tuple(
                (name, None if column.null_count() else frozenset(column.unique().to_list()))
                for name, column in columns.items()
            )
        )

    def keeps_everyone(self, name: str, chosen: tuple[object, ...]) -> bool:
        held = dict(self.values)[name]
        return bool(chosen) and held is not None and held <= set(chosen)


def _age_groups(patients: pl.DataFrame) -> pl.Series:
    groups = add_group(patients.select("age_at_infusion_years"), "age_group")["group"]
    return groups.cast(pl.String)


def of_patients(frame: pl.DataFrame, patients: pl.DataFrame) -> pl.DataFrame:
    """The rows of `frame` whose patient_id is one of `patients`' (a cohort's visits, outcomes,
    alerts or MRD points)."""
    return frame.filter(pl.col("patient_id").is_in(patients["patient_id"].implode()))


def _options(patients: pl.DataFrame, column: str) -> tuple[str, ...]:
    return tuple(sorted(str(v) for v in patients[column].drop_nulls().unique().to_list()))


@dataclass(frozen=True)
class Options:
    """What the filter widgets offer: the cohort's sites, products and infusion years."""

    sites: tuple[str, ...]
    products: tuple[str, ...]
    years: tuple[int, ...]

    @classmethod
    def of(cls, patients: pl.DataFrame) -> Options:
        years = patients["infusion_date"].dt.year().drop_nulls().unique().to_list()
        return cls(_options(patients, "site"), _options(patients, "product"), tuple(sorted(years)))


def sidebar(options: Options) -> None:
    """Draw the filter widgets (called once per run by app.py; `options` are cached per data
    version, `dashboard.data.filter_options`)."""
    with st.sidebar.expander("Filters", expanded=True, icon=":material/filter_alt:"):
        limited = not current_scope().is_every_site  # the options are the account's sites
        st.multiselect(
            "Site",
            options.sites,
            key=_KEYS["sites"],
            placeholder="All your sites" if limited else "All sites",
        )
        st.multiselect(
            "Product",
            options.products,
            key=_KEYS["products"],
            placeholder="All products",
        )
        st.multiselect("Infusion year", options.years, key=_KEYS["years"], placeholder="All years")
        st.multiselect(
            "Age group (years)", list(AGE_GROUPS), key=_KEYS["age_groups"], placeholder="All ages"
        )
        st.date_input(
            "Evaluation date",
            value=date.today(),
            key=AS_OF_KEY,
            max_value=date.today(),
            format="YYYY-MM-DD",
            help="Later visits are ignored, as if today were this date.",
        )


def current() -> Filters:
    state = st.session_state
    return Filters(
        sites=tuple(state.get(_KEYS["sites"]) or ()),
        products=tuple(state.get(_KEYS["products"]) or ()),
        years=tuple(int(y) for y in state.get(_KEYS["years"]) or ()),
        age_groups=tuple(state.get(_KEYS["age_groups"]) or ()),
    )


def as_of() -> date:
    value = st.session_state.get(AS_OF_KEY)
    return value if isinstance(value, date) else date.today()
