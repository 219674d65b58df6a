"""`ltfu durability --summary`: the group comparisons of CONTRACT §5 revision 2, exactly keyed."""

from __future__ import annotations

import json

import polars as pl
import pytest

from monitoring import comparisons
from monitoring.cli import main
from monitoring.durability import analysis_frame
from monitoring.endpoints import AGE_GROUPS, UNKNOWN
from monitoring.synthetic import make_cohort

TEST_KEYS = {"method", "cause", "statistic", "df", "p"}
PAIR_KEYS = {"group_a", "group_b", "cause", "p", "p_holm"}
HR_KEYS = {"group", "reference", "cause", "hr", "ci_lower", "ci_upper", "p"}
RMST_KEYS = {"months", "estimate", "se"}
GROUP_KEYS = {
    "group",
    "n",
    "events",
    "median_days",
    "median_ci_lower",
    "median_ci_upper",
    "landmarks",
}


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('cmp') / 'demo.db'}"
    assert main(["--db", url, "demo", "--patients", "300", "--seed", "2026"]) == 0
    return url


def _summary(capsys: pytest.CaptureFixture[str], db: str, *extra: str) -> dict:
    capsys.readouterr()
    args = ["--db", db, "durability", "--summary", "--format", "json", *extra]
    assert main(args) == 0
    return dict(json.loads(capsys.readouterr().out))


def test_km_summary_has_exactly_the_contract_keys(demo_db: str, capsys) -> None:
    s = _summary(capsys, demo_db, "--endpoint", "os", "--by", "product")
    assert set(s) == {
        "endpoint",
        "median_followup_days",
        "logrank_p",
        "groups",
        "tests",
        "pairwise",
        "hazard_ratios",
    }
    groups = [g["group"] for g in s["groups"]]
    assert len(groups) >= 3
    for g in s["groups"]:
        assert set(g) == GROUP_KEYS | {"rmst"}
        assert [set(r) for r in g["rmst"]] == [RMST_KEYS, RMST_KEYS]
        assert [r["months"] for r in g["rmst"]] == [12, 24]
        # RMST to 12 months is at most 12 months of days and at most the one to 24
        assert 0 < g["rmst"][0]["estimate"] <= 12 * 30.4375 + 1e-9
        assert g["rmst"][0]["estimate"] <= g["rmst"][1]["estimate"]
    (test,) = s["tests"]
    assert set(test) == TEST_KEYS and test["method"] == "logrank" and test["cause"] is None
    assert test["p"] == pytest.approx(s["logrank_p"], abs=1e-12)
    assert test["df"] == len(groups) - 1
    assert [(p["group_a"], p["group_b"]) for p in s["pairwise"]] == [
        (a, b) for i, a in enumerate(groups) for b in groups[i + 1 :]
    ]
    for p in s["pairwise"]:
        assert set(p) == PAIR_KEYS and p["cause"] is None
        assert p["p"] <= p["p_holm"] <= 1
    sizes = {g["group"]: g["n"] for g in s["groups"]}
    reference = min(sizes, key=lambda g: (-sizes[g], g))
    assert [h["group"] for h in s["hazard_ratios"]] == [g for g in groups if g != reference]
    for h in s["hazard_ratios"]:
        assert set(h) == HR_KEYS and h["reference"] == reference and h["cause"] is None
        assert h["ci_lower"] < h["hr"] < h["ci_upper"]


def test_reference_is_chosen_and_unknown_reference_is_a_usage_error(demo_db: str, capsys) -> None:
    s = _summary(capsys, demo_db, "--endpoint", "efs", "--by", "sex")
    groups = [g["group"] for g in s["groups"]]
    chosen = groups[-1]
    s2 = _summary(capsys, demo_db, "--endpoint", "efs", "--by", "sex", "--reference", chosen)
    assert {h["reference"] for h in s2["hazard_ratios"]} == {chosen}
    assert chosen not in {h["group"] for h in s2["hazard_ratios"]}
    capsys.readouterr()
    code = main(
        [
            "--db",
            demo_db,
            "durability",
            "--endpoint",
            "efs",
            "--by",
            "sex",
            "--summary",
            "--reference",
            "nonexistent",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "nonexistent" in err and all(g in err for g in groups)


def test_cir_summary_has_gray_and_fine_gray_per_relapse_cause(demo_db: str, capsys) -> None:
    s = _summary(capsys, demo_db, "--endpoint", "cir", "--by", "product", "--by-cd19")
    causes = ["relapse_cd19_positive", "relapse_antigen_escape", "relapse_cd19_unknown"]
    assert [t["cause"] for t in s["tests"]] == causes
    assert {t["method"] for t in s["tests"]} == {"gray"}
    assert all("rmst" not in g for g in s["groups"])
    n_groups = len(s["groups"])
    pairs = n_groups * (n_groups - 1) // 2
    assert len(s["pairwise"]) == pairs * len(causes)
    assert len(s["hazard_ratios"]) == (n_groups - 1) * len(causes)
    assert {h["cause"] for h in s["hazard_ratios"]} == set(causes)


def test_single_group_has_no_comparison_keys(demo_db: str, capsys) -> None:
    s = _summary(capsys, demo_db, "--endpoint", "os")
    assert set(s) == {"endpoint", "median_followup_days", "logrank_p", "groups"}
    assert set(s["groups"][0]) == GROUP_KEYS


def test_text_summary_shows_tests_ratios_and_rmst(demo_db: str, capsys) -> None:
    capsys.readouterr()
    assert (
        main(["--db", demo_db, "durability", "--endpoint", "os", "--by", "product", "--summary"])
        == 0
    )
    out = capsys.readouterr().out
    assert "log-rank: chi-square" in out and "Holm" in out
    assert "hazard ratio (Cox) against" in out and "restricted mean to 12 mo" in out


def test_compare_groups_matches_the_estimators_on_the_frame() -> None:
    cohort = make_cohort(200, seed=7)
    patients, visits = cohort.patients, cohort.visits
    frame = analysis_frame(patients, visits, "os", by="age_group")
    result = comparisons.compare_groups(frame, "os")
    labels = [str(g) for g in frame["group"].unique().sort().to_list()]
    assert set(labels) <= {*AGE_GROUPS, UNKNOWN}
    sizes = frame.group_by("group").len()
    top = sizes.sort(["len", pl.col("group").cast(pl.String)], descending=[True, False])
    assert result.reference == str(top["group"][0])
