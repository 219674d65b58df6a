"""Durability page: tests, hazard ratios and RMST from the summary; p hidden for small groups."""

from __future__ import annotations

from dashboard import comparison_view
from monitoring.durability_results import (
    DurabilitySummary,
    GroupSummary,
    GroupTest,
    HazardRatio,
    PairwiseTest,
    Rmst,
)


def _group(name: str, n: int, *, rmst: bool = True) -> GroupSummary:
    return GroupSummary(
        group=name,
        n=n,
        events=5 if rmst else 1,
        median_days=365.25 if rmst else None,
        median_ci_lower=None,
        median_ci_upper=None,
        landmarks=(),
        rmst=(Rmst(12, 300.0, 10.0), Rmst(24, 500.0, 20.0)) if rmst else None,
    )


def _summary(n_small: int) -> DurabilitySummary:
    return DurabilitySummary(
        endpoint="os",
        median_followup_days=400.0,
        logrank_p=0.011,
        groups=(_group("true", 40), _group("false", 30), _group("unknown", n_small)),
        tests=(GroupTest("logrank", None, 9.0, 2, 0.011),),
        pairwise=(
            PairwiseTest("true", "false", None, 0.01, 0.03),
            PairwiseTest("true", "unknown", None, 0.2, 0.4),
            PairwiseTest("false", "unknown", None, 0.3, 0.4),
        ),
        hazard_ratios=(
            HazardRatio("false", "true", None, 1.5, 1.1, 2.0, 0.01),
            HazardRatio("unknown", "true", None, None, None, None, None),
        ),
    )


def _everyone() -> DurabilitySummary:
    return DurabilitySummary("os", 400.0, None, (_group("all", 5, rmst=False),), tests=())


def test_p_values_shown_when_every_group_has_ten_patients() -> None:
    s = _summary(10)
    assert comparison_view.test_sentences(s, "kmt2a_rearranged") == [
        "Log-rank p = 0.011 across 3 groups."
    ]
    # the figure carries the test on its subtitle (a saved PNG has its p)
    assert comparison_view.figure_subtitle(s, "kmt2a_rearranged") == (
        "Log-rank p = 0.011 across 3 groups"
    )
    pairs = comparison_view.pairwise_frame(s, "kmt2a_rearranged")
    assert pairs.columns == ["Groups", "p", "p (Holm)"]
    assert pairs["p (Holm)"].to_list() == [
        "0.030",
        "0.400",
        "0.400",
    ]
    hr = comparison_view.hazard_ratio_frame(s, "kmt2a_rearranged")
    assert hr.columns == ["Group", "Hazard ratio", "95 % CI", "p"]
    assert hr.row(0) == ("No", "1.50", "1.10 to 2.00", "0.010")
    assert hr.row(1)[2] == "not estimable (no events)"


def test_p_values_hidden_with_a_sentence_when_a_group_has_fewer_than_ten() -> None:
    s = _summary(9)
    (sentence,) = comparison_view.test_sentences(s, "kmt2a_rearranged")
    assert "not shown" in sentence and "Unknown" in sentence and "fewer than 10" in sentence
    assert comparison_view.pairwise_frame(s, "kmt2a_rearranged").is_empty()
    assert "p" not in comparison_view.hazard_ratio_frame(s, "kmt2a_rearranged").columns


def test_rmst_in_months_and_legend_with_n_events_median() -> None:
    s = _summary(12)
    rm = comparison_view.rmst_frame(s, "kmt2a_rearranged")
    assert rm.row(0) == ("Yes", "12 months", "9.9", "0.33")
    labels = comparison_view.legend_labels(s, "kmt2a_rearranged", "os")
    assert labels["true"] == "Yes (n 40, 5 events, median 12.0 mo)"
    assert comparison_view.legend_labels(s, "kmt2a_rearranged", "cir")["false"] == (
        "No (n 30, 5 relapses)"
    )


def test_figure_subtitle_says_why_no_p_when_a_group_is_small() -> None:
    line = comparison_view.figure_subtitle(_summary(9), "kmt2a_rearranged")
    assert line is not None and "p not shown" in line and "Unknown" in line
    assert "JSON" not in line  # a figure outlives the page: no pointer to the page's JSON
    assert comparison_view.figure_subtitle(_everyone(), None) is None


def test_readable_group_names_in_the_number_at_risk_table() -> None:
    import polars as pl

    s = _summary(12)
    names = comparison_view.group_names(s, "kmt2a_rearranged")
    assert names == {"true": "Yes", "false": "No", "unknown": "Unknown"}
    risk = pl.DataFrame({"Number at risk": ["true: at risk", "false: events"], "0": [40, 0]})
    shown = comparison_view.readable_risk_table(risk, names)
    assert shown["Number at risk"].to_list() == ["Yes: at risk", "No: events"]
    assert comparison_view.group_names(_everyone(), None) == {"all": "All patients"}
