"""Durability page: tests, hazard ratios and RMST from the summary; p hidden for small groups."""

from __future__ import annotations

from typing import Any

from dashboard import comparison_view


def _summary(n_small: int) -> dict[str, Any]:
    def group(name: str, n: int) -> dict[str, Any]:
        return {
            "group": name,
            "n": n,
            "events": 5,
            "median_days": 365.25,
            "rmst": [
                {"months": 12, "estimate": 300.0, "se": 10.0},
                {"months": 24, "estimate": 500.0, "se": 20.0},
            ],
        }

    return {
        "groups": [group("true", 40), group("false", 30), group("unknown", n_small)],
        "tests": [{"method": "logrank", "cause": None, "statistic": 9.0, "df": 2, "p": 0.011}],
        "pairwise": [
            {"group_a": "true", "group_b": "false", "cause": None, "p": 0.01, "p_holm": 0.03},
            {"group_a": "true", "group_b": "unknown", "cause": None, "p": 0.2, "p_holm": 0.4},
            {"group_a": "false", "group_b": "unknown", "cause": None, "p": 0.3, "p_holm": 0.4},
        ],
        "hazard_ratios": [
            {
                "group": "false",
                "reference": "true",
                "cause": None,
                "hr": 1.5,
                "ci_lower": 1.1,
                "ci_upper": 2.0,
                "p": 0.01,
            },
            {
                "group": "unknown",
                "reference": "true",
                "cause": None,
                "hr": None,
                "ci_lower": None,
                "ci_upper": None,
                "p": None,
            },
        ],
    }


def test_p_values_shown_when_every_group_has_ten_patients() -> None:
    s = _summary(10)
    assert comparison_view.test_sentences(s, "kmt2a_rearranged") == [
        "**Log-rank p = 0.011** across 3 groups."
    ]
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
