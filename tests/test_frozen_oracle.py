"""tests/frozen holds the alert evaluation as it was at 15acef1, the oracle of
tests/test_evaluation_matches_before.py. An oracle that is edited along with the code it judges
proves nothing, so its files are pinned by their SHA-256: a change to them fails here and has to
be made (and explained) on purpose. The copies differ from `git show 15acef1:monitoring/...` only
in a note at the top of their docstrings and in the alerts copy importing the frozen outcomes; they share the live
monitoring.thresholds, schemas, severities and config, so a deliberate change there moves both
sides alike (these tests judge the restructuring of the rules, not those modules)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

FROZEN = Path(__file__).parent / "frozen"
PINNED = {
    "__init__.py": "de9b161410eba5416a92f76b8b3bdf58dd21d96b4affc87facd0b962a30426db",
    "alerts_15acef1.py": "7243fd2786538cc336733a36fc8df0d9a1e8087286f5467112a4b77d7b299e3e",
    "outcomes_15acef1.py": "41ef19762318553ce138ae91397d15c0899ddd013e1cb8cc8b4560115f14fb39",
}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_the_frozen_oracle_is_unchanged(name: str) -> None:
    digest = hashlib.sha256((FROZEN / name).read_bytes()).hexdigest()
    assert digest == PINNED[name], f"tests/frozen/{name} changed: the oracle must stay frozen"


def test_every_frozen_file_is_pinned() -> None:
    assert {p.name for p in FROZEN.glob("*.py")} == set(PINNED)
