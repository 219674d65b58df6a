"""`SiteScope`: which treating sites an account may see (REDCap's data access groups).

    SiteScope.every()          every site, and patients without a site (the default)
    SiteScope.of({"A", "B"})   only patients whose `site` is A or B (a patient without a site is
                               in no limited scope)
    SiteScope.nothing()        no patient at all (no signed-in account)

A `Store` carries one (`Store.scoped`); every read of patients and visits through it keeps only
the scope's patients, so whatever is derived from those reads (outcomes, curves, alerts,
worklist, downloads) is of those patients only. The value is frozen and hashable: it is part of
every cache key whose value depends on it. The sites are kept as a sorted tuple, not a set, so
that any hasher (Streamlit's cache pickles what it does not know) sees one order for one scope.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True)
class SiteScope:
    sites: tuple[str, ...] | None = None  # None: every site; else sorted, without repeats

    def __post_init__(self) -> None:
        if self.sites is not None:
            object.__setattr__(self, "sites", tuple(sorted(set(self.sites))))

    @classmethod
    def every(cls) -> SiteScope:
        return cls(None)

    @classmethod
    def of(cls, sites: Iterable[str]) -> SiteScope:
        return cls(tuple(sites))

    @classmethod
    def nothing(cls) -> SiteScope:
        return cls(())

    @property
    def is_every_site(self) -> bool:
        return self.sites is None

    def allows(self, site: str | None) -> bool:
        return self.sites is None or (site is not None and site in self.sites)

    def key(self) -> str:
        """Stable text of the scope for cache keys and file names' hashes."""
        return "*" if self.sites is None else "sites:" + "\x1f".join(sorted(self.sites))

    def describe(self) -> str:
        if self.sites is None:
            return "all sites"
        if not self.sites:
            return "no site"
        return ", ".join(sorted(self.sites))

    def patients(self, patients: pl.DataFrame) -> pl.DataFrame:
        if self.sites is None:
            return patients
        return patients.filter(pl.col("site").is_in(sorted(self.sites)))

    def restrict(
        self, patients: pl.DataFrame, visits: pl.DataFrame
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        """The scope's patients and only their visits."""
        if self.sites is None:
            return patients, visits
        kept = self.patients(patients)
        return kept, visits.filter(pl.col("patient_id").is_in(kept["patient_id"].implode()))
