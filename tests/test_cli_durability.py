"""`ltfu durability` prints exactly the CONTRACT §5 shapes, from the store."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from monitoring.cli import main

COLUMNS = [
    "group",
    "time_days",
    "at_risk",
    "events",
    "censored",
    "estimate",
    "ci_lower",
    "ci_upper",
]


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('dur') / 'demo.db'}"
    assert main(["--db", url, "demo", "--patients", "150", "--seed", "2026"]) == 0
    return url


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert main(list(args)) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("endpoint", ["os", "efs", "rfs", "bca", "car"])
def test_km_csv_rows(demo_db: str, capsys, endpoint: str):
    rows = list(
        csv.DictReader(
            io.StringIO(_run(capsys, "--db", demo_db, "durability", "--endpoint", endpoint))
        )
    )
    assert list(rows[0]) == COLUMNS
    assert rows[0]["time_days"] == "0.0" and rows[0]["group"] == "all"
    estimates = [float(r["estimate"]) for r in rows]
    assert all(a >= b for a, b in zip(estimates, estimates[1:], strict=False))
    times = [float(r["time_days"]) for r in rows]
    assert times == sorted(set(times))


def test_cir_csv_has_cause_column(demo_db: str, capsys):
    out = _run(
        capsys, "--db", demo_db, "durability", "--endpoint", "cir", "--by-cd19", "--hsct-competing"
    )
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == [*COLUMNS, "cause"]
    assert {r["cause"] for r in rows} >= {
        "relapse_cd19_positive",
        "relapse_antigen_escape",
        "death",
        "hsct",
    }


def _summary(capsys: pytest.CaptureFixture[str], db: str, endpoint: str, *extra: str) -> dict:
    """`ltfu durability --summary --format json` parsed."""
    args = ["--db", db, "durability", "--endpoint", endpoint, "--summary", "--format", "json"]
    return dict(json.loads(_run(capsys, *args, *extra)))


def test_summary_json_shape(demo_db: str, capsys):
    summary = _summary(capsys, demo_db, "efs", "--by", "product")
    assert set(summary) >= {"endpoint", "median_followup_days", "logrank_p", "groups"}
    assert summary["endpoint"] == "efs" and 0 <= summary["logrank_p"] <= 1
    group = summary["groups"][0]
    assert set(group) >= {
        "group",
        "n",
        "events",
        "median_days",
        "median_ci_lower",
        "median_ci_upper",
        "landmarks",
    }
    assert [lm["months"] for lm in group["landmarks"]] == [6, 12, 24, 36, 60]
    assert sum(g["n"] for g in summary["groups"]) == 150


def test_one_group_has_null_logrank(demo_db: str, capsys):
    summary = _summary(capsys, demo_db, "os")
    assert summary["logrank_p"] is None and summary["groups"][0]["group"] == "all"


def test_as_of_hides_later_data(demo_db: str, capsys):
    early = _summary(capsys, demo_db, "os", "--as-of", "2023-01-01")
    late = _summary(capsys, demo_db, "os")
    assert early["groups"][0]["n"] < late["groups"][0]["n"]


def test_immortal_time_grouping_refused_without_landmark(demo_db: str, capsys):
    capsys.readouterr()
    assert (
        main(["--db", demo_db, "durability", "--endpoint", "os", "--by", "early_bcell_recovery"])
        == 2
    )
    assert "immortal time" in capsys.readouterr().err
    out = _run(
        capsys,
        "--db",
        demo_db,
        "durability",
        "--endpoint",
        "os",
        "--by",
        "early_bcell_recovery",
        "--landmark",
        "183",
    )
    assert {r["group"] for r in csv.DictReader(io.StringIO(out))} <= {"yes", "no", "unknown"}


def test_text_summary(demo_db: str, capsys, tmp_path: Path):
    out = _run(capsys, "--db", demo_db, "durability", "--endpoint", "efs", "--summary")
    assert "median follow-up" in out and "12 mo" in out
