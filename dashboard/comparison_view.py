"""Durability page: the group comparisons of the summary (tests, hazard ratios, RMST) as tables.

Pure builders (summary in, text / polars frames out) plus one `show` that draws them. P-values
are not shown on the page when a group has fewer than 10 patients (cBioPortal's rule); the JSON
of `ltfu durability --summary` always has them.
"""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboard.text import md
from monitoring.config import DAYS_PER_MONTH
from monitoring.durability_results import DurabilitySummary
from monitoring.groupings import value_label

#: fewer patients than this in any group: p-values are not shown on the page
MIN_GROUP_FOR_P = 10

_CAUSE_WORDS = {
    "relapse": "relapse",
    "relapse_cd19_positive": "CD19-positive relapse",
    "relapse_antigen_escape": "CD19-negative relapse (antigen escape)",
    "relapse_cd19_unknown": "relapse, CD19 unknown",
}


def _cause_words(cause: str | None) -> str:
    return "" if cause is None else _CAUSE_WORDS.get(cause, cause)


def _p(value: float | None) -> str:
    if value is None:
        return "–"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def small_groups(summary: DurabilitySummary) -> list[str]:
    return [g.group for g in summary.groups if g.n < MIN_GROUP_FOR_P]


def test_sentences(summary: DurabilitySummary, by: str | None) -> list[str]:
    """One plain sentence per test ("Log-rank p = 0.012 across 3 groups."), or why no p is
    shown. Plain text: the page and the figure's subtitle draw it each in their own way."""
    tests = summary.tests or ()
    if not tests:
        return []
    small = small_groups(summary)
    if small:
        names = ", ".join(value_label(by, g) for g in small)
        test = "Log-rank" if tests[0].method == "logrank" else "Gray's test"
        return [
            f"{test} p not shown: fewer than {MIN_GROUP_FOR_P} patients in {names} "
            "(the JSON summary has it)."
        ]
    out = []
    n = len(summary.groups)
    for t in tests:
        if t.method == "logrank":
            out.append(f"Log-rank p = {_p(t.p)} across {n} groups.")
        else:
            cause = _cause_words(t.cause)
            out.append(f"Gray's test p = {_p(t.p)} for {cause} across {n} groups.")
    return out


def figure_subtitle(summary: DurabilitySummary, by: str | None) -> str | None:
    """The tests on one line for a figure's subtitle (a saved PNG carries its p), or None
    without groups."""
    sentences = test_sentences(summary, by)
    if not sentences:
        return None
    if small_groups(summary):
        return sentences[0].replace(" (the JSON summary has it).", ".")
    return " · ".join(s.removesuffix(".") for s in sentences)


def pairwise_frame(summary: DurabilitySummary, by: str | None) -> pl.DataFrame:
    """Pairwise tests with Holm-adjusted p (empty with two groups or small groups)."""
    pairs = summary.pairwise or ()
    if len(summary.groups) <= 2 or small_groups(summary):
        return pl.DataFrame()
    frame = pl.DataFrame(
        {
            "Groups": [
                f"{value_label(by, p.group_a)} vs {value_label(by, p.group_b)}" for p in pairs
            ],
            "Cause": [_cause_words(p.cause) for p in pairs],
            "p": [_p(p.p) for p in pairs],
            "p (Holm)": [_p(p.p_holm) for p in pairs],
        }
    )
    return frame if any(p.cause for p in pairs) else frame.drop("Cause")


def hazard_ratio_frame(summary: DurabilitySummary, by: str | None) -> pl.DataFrame:
    """Hazard ratios with 95 % limits; the p column only when every group has 10 patients."""
    ratios = summary.hazard_ratios or ()
    if not ratios:
        return pl.DataFrame()

    def num(x: float | None) -> str:
        return "–" if x is None else f"{x:.2f}"

    frame = pl.DataFrame(
        {
            "Group": [value_label(by, h.group) for h in ratios],
            "Cause": [_cause_words(h.cause) for h in ratios],
            "Hazard ratio": [num(h.hr) for h in ratios],
            "95 % CI": [
                "not estimable (no events)"
                if h.hr is None
                else f"{num(h.ci_lower)} to {num(h.ci_upper)}"
                for h in ratios
            ],
            "p": [_p(h.p) for h in ratios],
        }
    )
    if not any(h.cause for h in ratios):
        frame = frame.drop("Cause")
    if small_groups(summary):
        frame = frame.drop("p")
    return frame


def rmst_frame(summary: DurabilitySummary, by: str | None) -> pl.DataFrame:
    """Restricted mean survival time to 12 and 24 months per group, in months, with se."""
    rows = []
    for g in summary.groups:
        for r in g.rmst or ():
            est, se = r.estimate, r.se
            rows.append(
                {
                    "Group": value_label(by, g.group),
                    "Horizon": f"{r.months} months",
                    "Restricted mean (months)": "–"
                    if est is None
                    else f"{est / DAYS_PER_MONTH:.1f}",
                    "se": "–" if se is None else f"{se / DAYS_PER_MONTH:.2f}",
                }
            )
    return pl.DataFrame(rows)


def show(summary: DurabilitySummary, by: str | None, reference_key: str | None = None) -> None:
    """Draw the tests, pairwise table, hazard ratios and RMST of the summary. With
    `reference_key`, a chooser (that widget key) for the hazard ratios' reference group."""
    for line in test_sentences(summary, by):
        st.markdown(f"**{md(line)}**")
    pairs = pairwise_frame(summary, by)
    if pairs.height:
        st.caption("Pairwise tests; Holm-adjusted p over all pairs.")
        st.dataframe(pairs, hide_index=True, width="stretch")
    ratios = hazard_ratio_frame(summary, by)
    if ratios.height:
        st.subheader("Effect sizes")
        first = (summary.hazard_ratios or ())[0]
        reference = first.reference
        if reference_key is not None:
            groups = [g.group for g in summary.groups]
            st.selectbox(
                "Hazard ratios against",
                groups,
                index=groups.index(reference),
                key=reference_key,
                format_func=lambda g: value_label(by, g),
                help="The reference group of the hazard ratios (default: the largest group).",
            )
        kind = (
            "Subdistribution hazard ratios (Fine–Gray)"
            if first.cause
            else "Hazard ratios (Cox, Efron ties)"
        )
        st.caption(
            f"{md(kind)} against {md(value_label(by, reference))}, with 95 % confidence "
            "limits and Wald p."
        )
        st.dataframe(ratios, hide_index=True, width="stretch")
    rmst = rmst_frame(summary, by)
    if rmst.height:
        st.caption(
            "Restricted mean survival time: the mean months event-free up to the horizon "
            "(area under the curve)."
        )
        st.dataframe(rmst, hide_index=True, width="stretch")


def in_a_sentence(label: str) -> str:
    """A column label inside a sentence: "Age at infusion" → "age at infusion", while an
    acronym stays as it is ("KMT2A rearranged")."""
    if len(label) > 1 and label[0].isupper() and label[1].islower():
        return label[0].lower() + label[1:]
    return label


def group_names(summary: DurabilitySummary, by: str | None) -> dict[str, str]:
    """The readable name of every group of the summary ("all" → "All patients")."""
    return {
        g.group: "All patients" if by is None else value_label(by, g.group) for g in summary.groups
    }


def legend_labels(summary: DurabilitySummary, by: str | None, endpoint: str) -> dict[str, str]:
    """Legend text per group: its readable name with n, events and (KM) the median."""
    names = group_names(summary, by)
    out: dict[str, str] = {}
    for g in summary.groups:
        parts = [f"n {g.n}", f"{g.events} {'relapses' if endpoint == 'cir' else 'events'}"]
        if endpoint != "cir":
            m = g.median_days
            parts.append(
                "median not reached" if m is None else f"median {m / DAYS_PER_MONTH:.1f} mo"
            )
        out[g.group] = f"{names[g.group]} ({', '.join(parts)})"
    return out


def readable_risk_table(risk: pl.DataFrame, names: dict[str, str]) -> pl.DataFrame:
    """The number-at-risk table with readable group names ("all: at risk" → "All patients:
    at risk")."""
    column = "Number at risk"

    def rename(label: str) -> str:
        group, _, what = label.rpartition(": ")
        return f"{names.get(group, group)}: {what}"

    return risk.with_columns(pl.col(column).map_elements(rename, return_dtype=pl.String))
