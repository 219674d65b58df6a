"""Every alert rule is documented in docs/alerts.md with its severity, rationale and evidence."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from monitoring.alerts import ALERT_RULES

DOC = Path(__file__).resolve().parents[1] / "docs" / "alerts.md"


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _section(rule_id: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    match = re.search(rf"^## `{re.escape(rule_id)}`\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"docs/alerts.md has no section '## `{rule_id}`'"
    return _normalise(match.group(1))


@pytest.mark.parametrize("rule", ALERT_RULES, ids=lambda r: r.id)
def test_rule_documented_with_rationale(rule):
    section = _section(rule.id)
    assert _normalise(rule.rationale) in section
    assert _normalise(rule.evidence_source) in section
    assert "**Scope:**" in section and "**Trigger:**" in section
    assert (rule.severity or "chosen") in section


def test_no_undocumented_or_stale_sections():
    documented = re.findall(r"^## `([a-z_]+)`", DOC.read_text(encoding="utf-8"), re.M)
    assert documented == [r.id for r in ALERT_RULES]
