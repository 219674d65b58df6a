"""Typed results of a durability analysis; `to_json()` gives the shapes of CONTRACT.md §5.

    DurabilitySummary ─ groups: GroupSummary ─ landmarks: Landmark
                      │                      ├ causes: CauseSummary (cir only)
                      │                      └ rmst: Rmst (revision 2, KM endpoints)
                      ├ tests: GroupTest            (revision 2, two or more groups)
                      ├ pairwise: PairwiseTest      (revision 2)
                      └ hazard_ratios: HazardRatio  (revision 2)

A field that is None is left out of the JSON (the revision-2 parts appear only when computed);
every number is a finite float or None (NaN and infinity become None before they get here).
"""

from __future__ import annotations

from dataclasses import dataclass

Json = dict[str, object]


def _optional(out: Json, key: str, items: tuple[_ToJson, ...] | None) -> None:
    if items is not None:
        out[key] = [item.to_json() for item in items]


class _ToJson:
    def to_json(self) -> Json:  # pragma: no cover  (every subclass defines it)
        raise NotImplementedError


@dataclass(frozen=True)
class Landmark(_ToJson):
    months: int
    estimate: float | None
    ci_lower: float | None
    ci_upper: float | None
    at_risk: int | None

    def to_json(self) -> Json:
        return {
            "months": self.months,
            "estimate": self.estimate,
            "ci_lower": self.ci_lower,
            "ci_upper": self.ci_upper,
            "at_risk": self.at_risk,
        }


@dataclass(frozen=True)
class CauseSummary(_ToJson):
    cause: str
    events: int
    landmarks: tuple[Landmark, ...]

    def to_json(self) -> Json:
        return {
            "cause": self.cause,
            "events": self.events,
            "landmarks": [lm.to_json() for lm in self.landmarks],
        }


@dataclass(frozen=True)
class Rmst(_ToJson):
    months: int
    estimate: float | None
    se: float | None

    def to_json(self) -> Json:
        return {"months": self.months, "estimate": self.estimate, "se": self.se}


@dataclass(frozen=True)
class GroupSummary(_ToJson):
    group: str
    n: int
    events: int
    median_days: float | None
    median_ci_lower: float | None
    median_ci_upper: float | None
    landmarks: tuple[Landmark, ...]
    causes: tuple[CauseSummary, ...] | None = None  # cir: one entry per cause
    rmst: tuple[Rmst, ...] | None = None

    def to_json(self) -> Json:
        out: Json = {
            "group": self.group,
            "n": self.n,
            "events": self.events,
            "median_days": self.median_days,
            "median_ci_lower": self.median_ci_lower,
            "median_ci_upper": self.median_ci_upper,
            "landmarks": [lm.to_json() for lm in self.landmarks],
        }
        _optional(out, "causes", self.causes)
        _optional(out, "rmst", self.rmst)
        return out


@dataclass(frozen=True)
class GroupTest(_ToJson):
    method: str  # "logrank" or "gray"
    cause: str | None
    statistic: float | None
    df: int | None
    p: float | None

    def to_json(self) -> Json:
        return {
            "method": self.method,
            "cause": self.cause,
            "statistic": self.statistic,
            "df": self.df,
            "p": self.p,
        }


@dataclass(frozen=True)
class PairwiseTest(_ToJson):
    group_a: str
    group_b: str
    cause: str | None
    p: float | None
    p_holm: float | None

    def to_json(self) -> Json:
        return {
            "group_a": self.group_a,
            "group_b": self.group_b,
            "cause": self.cause,
            "p": self.p,
            "p_holm": self.p_holm,
        }


@dataclass(frozen=True)
class HazardRatio(_ToJson):
    group: str
    reference: str
    cause: str | None
    hr: float | None
    ci_lower: float | None
    ci_upper: float | None
    p: float | None

    def to_json(self) -> Json:
        return {
            "group": self.group,
            "reference": self.reference,
            "cause": self.cause,
            "hr": self.hr,
            "ci_lower": self.ci_lower,
            "ci_upper": self.ci_upper,
            "p": self.p,
        }


@dataclass(frozen=True)
class DurabilitySummary(_ToJson):
    endpoint: str
    median_followup_days: float | None
    logrank_p: float | None
    groups: tuple[GroupSummary, ...]
    tests: tuple[GroupTest, ...] | None = None
    pairwise: tuple[PairwiseTest, ...] | None = None
    hazard_ratios: tuple[HazardRatio, ...] | None = None

    def to_json(self) -> Json:
        out: Json = {
            "endpoint": self.endpoint,
            "median_followup_days": self.median_followup_days,
            "logrank_p": self.logrank_p,
            "groups": [group.to_json() for group in self.groups],
        }
        _optional(out, "tests", self.tests)
        _optional(out, "pairwise", self.pairwise)
        _optional(out, "hazard_ratios", self.hazard_ratios)
        return out
