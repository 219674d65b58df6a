"""Every page and every action tried with every role and without a session (AppTest).

A refused page or action shows its one refusal sentence and nothing else of it, writes nothing,
and is audited; a signed-out request shows only the sign-in form.
"""

from __future__ import annotations

import polars as pl
import pytest

from dashboard import page_registry
from dashboard.text import shown
from monitoring import accounts
from monitoring.alert_queue import acknowledgement_history
from monitoring.store import Store
from tests.test_dashboard_pages import PAGES, ROLES, app_as, db, demo_db  # noqa: F401

PAGE_ACTION = {page.url_path: page.permission for page in page_registry.PAGES}
WHO = (*ROLES, None)
pytestmark = pytest.mark.timeout(900)


def _refusals(at) -> list[str]:  # type: ignore[no-untyped-def]
    warnings = [shown(str(w.value)) for w in at.warning]
    return [w for w in warnings if w.startswith("Your role may not")]


@pytest.mark.parametrize("role", WHO, ids=[r or "signed_out" for r in WHO])
def test_every_page(db: Store, role: str | None) -> None:  # noqa: F811
    for page, action in PAGE_ACTION.items():
        at = app_as(db, role, page)
        assert not at.exception, (role, page, at.exception)
        if role is None:
            assert [t.label for t in at.text_input] == ["Username", "Password"], page
            assert not at.dataframe and not at.metric and not at.file_uploader, page
        elif accounts.allowed(role, action):
            assert not _refusals(at), (role, page)
        else:
            assert _refusals(at) == [accounts.refusal(action)], (role, page)
            assert not at.dataframe and not at.file_uploader and not at.metric, (role, page)
    if role is not None:
        refused = [p for p, a in PAGE_ACTION.items() if not accounts.allowed(role, a)]
        audit = db.audit_log().filter(pl.col("action") == "refused")
        assert audit.height == len(refused)


@pytest.mark.parametrize("role", ROLES)
def test_acknowledge_and_flag(db: Store, role: str) -> None:  # noqa: F811
    """Offered to the roles that may, absent for the others (CONTRACT §6)."""
    at = app_as(db, role, "alerts")
    labels = [b.label for b in at.button]
    if accounts.allowed(role, "acknowledge"):
        assert any(label.endswith(" shown") for label in labels)
        next(b for b in at.button if b.label == "Acknowledge").click().run()
        at.text_area(key="ack_note").input("seen")
        next(b for b in at.button if b.label == "Confirm acknowledgement").click().run()
        assert acknowledgement_history(db).height == 1
    else:
        assert "Acknowledge" not in labels and not any(x.endswith(" shown") for x in labels)
        assert acknowledgement_history(db).is_empty()

    at = app_as(db, role, "patient")
    flags_before = db.audit_log().filter(pl.col("action") == "flag_patient").height
    if accounts.allowed(role, "flag"):
        next(b for b in at.button if b.label == "Flag").click().run()
        at.text_area(key="flag_note").input("bruising")
        next(b for b in at.button if b.label == "Raise flag").click().run()
        assert db.audit_log().filter(pl.col("action") == "flag_patient").height == flags_before + 1
    else:
        assert "Flag" not in [b.label for b in at.button]
        assert "Acknowledge" not in [b.label for b in at.button]
        assert db.audit_log().filter(pl.col("action") == "flag_patient").height == flags_before
