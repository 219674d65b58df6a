"""Every dashboard page for every role (AppTest), the refusals, the signed-out state, the Data
upload flow and acknowledging an alert. Users are signed in through the form once, and through
the session-token hook (`st.session_state["ltfu_token"]`) elsewhere."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboard import page_registry
from dashboard.text import shown
from monitoring import accounts
from monitoring.store import Store

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")
PAGES = {page.url_path: page.app_relative for page in page_registry.PAGES}
ROLES = ("viewer", "physician", "data_manager", "admin")
PASSWORD = "a long test password"
TIMEOUT = 120

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic cohort with one account per role (built once per module)."""
    from monitoring.ingest import ingest_files
    from monitoring.synthetic import make_cohort, write_csv

    folder = tmp_path_factory.mktemp("dash")
    path = folder / "demo.db"
    store = Store.open(f"sqlite:///{path}")
    paths = write_csv(make_cohort(40, seed=7), folder)
    ingest_files(store, list(paths), user="test")
    for role in ROLES:
        accounts.add_user(store, role, role, PASSWORD)
    store.close()
    return path


@pytest.fixture
def db(demo_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """A private copy of the demo store for one test; the app reads it from the environment."""
    path = tmp_path / "store.db"
    shutil.copy(demo_db, path)
    url = f"sqlite:///{path}"
    monkeypatch.setenv("LTFU_DATABASE_URL", url)
    st.cache_data.clear()
    st.cache_resource.clear()
    store = Store.open(url)
    yield store
    store.close()
    st.cache_data.clear()
    st.cache_resource.clear()


def app_as(store: Store, role: str | None, page: str = "overview") -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if role is not None:
        at.session_state["ltfu_token"] = accounts.create_session(store, role)
    at.switch_page(PAGES[page])
    return at.run()


def texts(at: AppTest) -> str:
    parts = [e.value for e in (*at.title, *at.header, *at.subheader, *at.markdown, *at.warning)]
    parts += [e.value for e in (*at.info, *at.error, *at.success, *at.caption)]
    return "\n".join(shown(str(p)) for p in parts)


def test_signed_out_every_path_shows_only_the_sign_in_form(db: Store) -> None:
    for page in PAGES:
        at = app_as(db, None, page)
        assert not at.exception
        assert [t.label for t in at.text_input] == ["Username", "Password"]
        assert [b.label for b in at.button] == ["Sign in"]
        assert not at.metric and not at.dataframe and not at.header


def test_sign_in_through_the_form_then_sign_out(db: Store) -> None:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.text_input(key="signin_user").input("physician")
    at.text_input(key="signin_password").input("wrong password!")
    at.button[0].click().run()
    assert "Unknown user name or wrong password." in texts(at)
    at.text_input(key="signin_user").input("physician")
    at.text_input(key="signin_password").input(PASSWORD)
    at.button[0].click().run()
    assert not at.exception
    assert "Cohort overview" in texts(at)
    assert "**physician** · physician" in texts(at)
    actions = db.audit_log()["action"].to_list()
    assert "sign_in" in actions and "sign_in_failed" in actions
    sign_out = next(b for b in at.sidebar.button if b.label == "Sign out")
    sign_out.click().run()
    assert [t.label for t in at.text_input] == ["Username", "Password"]
    assert "sign_out" in db.audit_log()["action"].to_list()


@pytest.mark.parametrize("role", ROLES)
def test_every_role_sees_the_four_shared_pages(db: Store, role: str) -> None:
    at = app_as(db, role, "overview")
    assert not at.exception, at.exception
    assert "Cohort overview" in texts(at)
    assert {m.label for m in at.metric} >= {"Patients infused", "CR/CRi rate", "Relapses"}
    for page, marker in (
        ("durability", "Event-free survival"),
        ("alerts", "Alert queue"),
        ("patient", "Patient"),
    ):
        at.switch_page(PAGES[page]).run()
        assert not at.exception, (page, at.exception)
        assert marker in texts(at), page
        assert "Your role may not" not in texts(at)
    if role in ("data_manager", "admin"):
        at.switch_page(PAGES["data"]).run()
        assert not at.exception
        assert at.file_uploader and "Upload history" in texts(at)


@pytest.mark.parametrize("role", ["viewer", "physician"])
def test_data_page_refused_in_one_sentence(db: Store, role: str) -> None:
    at = app_as(db, role, "data")
    assert not at.exception
    assert [shown(w.value) for w in at.warning] == [accounts.refusal("upload")]
    assert not at.file_uploader and not at.dataframe and not at.title
    refused = db.audit_log().filter(pl.col("action") == "refused")
    assert refused["user_name"].to_list() == [role]


def test_durability_shows_the_at_risk_table_and_landmarks(db: Store) -> None:
    at = app_as(db, "viewer", "durability")
    assert "Event-free survival" in [shown(h.value) for h in at.header]
    assert at.table and at.table[0].value.index.name == "Number at risk"
    assert "Landmarks" in texts(at)
    at.selectbox(key="dur_by").set_value("product").run()
    assert not at.exception
    assert "Log-rank p" in texts(at)
    at.selectbox(key="dur_endpoint").set_value("cir").run()
    assert not at.exception
    assert "Cumulative incidence of relapse" in [h.value for h in at.header]
    assert "Gray's test p" in texts(at)  # the competing-risks test, shown or explained


def _ack_button(at: AppTest):  # type: ignore[no-untyped-def]
    return next(b for b in at.button if b.label == "Acknowledge")


def test_physician_acknowledges_an_alert(db: Store) -> None:
    from monitoring.alert_queue import acknowledgement_history

    at = app_as(db, "physician", "alerts")
    picked = at.selectbox(key="alert_pick").value
    _ack_button(at).click().run()
    assert not at.exception
    at.text_area(key="ack_note").input("Marrow booked for next week")
    next(b for b in at.button if b.label == "Confirm acknowledgement").click().run()
    assert not at.exception, at.exception
    history = acknowledgement_history(db)
    assert history["alert_id"].to_list() == [picked]
    assert history["user_name"].to_list() == ["physician"]
    assert any("Acknowledged" in shown(s.value) for s in at.success)
    assert picked not in at.selectbox(key="alert_pick").options


def test_viewer_cannot_acknowledge(db: Store) -> None:
    from monitoring.alert_queue import acknowledgement_history

    at = app_as(db, "viewer", "alerts")
    assert not at.exception, at.exception
    labels = [b.label for b in at.button]
    # CONTRACT §6: a control for an action the role may not take is not offered at all
    assert "Acknowledge" not in labels and not any(x.endswith(" shown") for x in labels)
    assert not at.text_area
    assert acknowledgement_history(db).is_empty()


def test_viewer_cannot_flag_and_physician_can(db: Store) -> None:
    at = app_as(db, "viewer", "patient")
    assert not at.exception, at.exception
    assert "Flag" not in [b.label for b in at.button]
    at = app_as(db, "physician", "patient")
    next(b for b in at.button if b.label == "Flag").click().run()
    at.text_area(key="flag_note").input("Parents report bruising")
    next(b for b in at.button if b.label == "Raise flag").click().run()
    assert not at.exception
    assert "flag_patient" in db.audit_log()["action"].to_list()


BAD_VISITS = (
    b"patient_id,visit_date,disease_status,mrd_sample,mrd_flow_fraction\n"
    b"CART-00001,2024-13-01,CR,BM,0\n"
    b"NOBODY,2024-01-01,CR,BM,5\n"
)


def test_data_manager_upload_flow(db: Store) -> None:
    at = app_as(db, "data_manager", "data")
    assert not at.exception
    # a file with errors: the report, nothing written
    at.file_uploader[0].set_value(("bad.csv", BAD_VISITS, "text/csv"))
    at.run()  # dropping the file is the check: no Validate click
    assert at.error and "Upload rejected" in at.error[0].value
    assert at.dataframe[0].value.shape[0] >= 2  # the report, every row
    assert at.table[0].value.shape[0] >= 1  # grouped, wrapping
    assert not [b for b in at.button if b.label == "Confirm upload"]
    # a clean file: preview, confirm, committed
    before = db.counts()["patients"]
    clean = (
        b"patient_id,site,product,infusion_date,age_at_infusion_years\n"
        b"NEW-001,LON,tisagenlecleucel,2025-01-10,8\n"
    )
    at.file_uploader[0].set_value(("new.csv", clean, "text/csv"))
    at.run()
    assert not at.exception, at.exception
    assert "`patients`: 1 new, 0 changed, 0 unchanged" in texts(at)
    next(b for b in at.button if b.label == "Confirm upload").click().run()
    assert not at.exception
    assert db.counts()["patients"] == before + 1
    assert any("Committed" in shown(s.value) for s in at.success)
    uploads = db.uploads()
    assert uploads["user_name"][0] == "data_manager" and uploads["file_name"][0] == "new.csv"


def test_patient_query_parameter_opens_that_patient(db: Store) -> None:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["ltfu_token"] = accounts.create_session(db, "viewer")
    at.query_params["patient"] = "CART-00003"
    at.switch_page(PAGES["patient"]).run()
    assert not at.exception
    assert at.selectbox(key="patient_pick").value == "CART-00003"


def test_expired_or_forged_token_shows_the_sign_in_form(db: Store) -> None:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["ltfu_token"] = "forged-token-forged-token-forged"
    at.run()
    assert [b.label for b in at.button] == ["Sign in"]


def test_an_empty_store_shows_helpful_empty_states(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    monkeypatch.setenv("LTFU_DATABASE_URL", url)
    st.cache_data.clear()
    st.cache_resource.clear()
    store = Store.open(url)
    accounts.add_user(store, "admin", "admin", PASSWORD)
    for page in PAGES:
        at = app_as(store, "admin", page)
        assert not at.exception, (page, at.exception)
        if page in ("overview", "patient"):
            assert "No patients" in texts(at), page
    store.close()
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.mark.parametrize("role", ["viewer", "physician", "data_manager"])
def test_accounts_page_refused_to_non_admins(db: Store, role: str) -> None:
    at = app_as(db, role, "accounts")
    assert not at.exception
    assert [shown(w.value) for w in at.warning] == [accounts.refusal("accounts")]
    assert not at.dataframe and not at.title and not at.text_input


def test_admin_manages_accounts_in_the_dashboard(db: Store) -> None:
    at = app_as(db, "admin", "accounts")
    assert not at.exception, at.exception
    assert "Accounts" in texts(at)
    fields = {t.label: t for t in at.text_input}
    fields["New user name"].input("nurse1")
    fields["Initial password"].input("nurse password 1")
    fields["Repeat the password"].input("nurse password 1")
    next(b for b in at.button if b.label == "Add account").click().run()
    assert not at.exception, at.exception
    added = accounts.get_user(db, "nurse1")
    assert added is not None and added.role == "viewer"
    at.selectbox(key="acct_user").set_value("nurse1").run()
    next(b for b in at.button if b.label == "Disable").click().run()
    assert not at.exception
    assert accounts.get_user(db, "nurse1").disabled  # type: ignore[union-attr]
    actions = db.audit_log()["action"].to_list()
    assert "user_add" in actions and "user_disable" in actions


def _patient_app(store: Store, role: str, patient_id: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["ltfu_token"] = accounts.create_session(store, role)
    at.query_params["patient"] = patient_id
    return at.switch_page(PAGES["patient"]).run()


def test_patient_page_acknowledges_for_a_physician_and_offers_a_viewer_nothing(
    db: Store,
) -> None:
    from monitoring.alert_queue import acknowledgement_history

    alerts = app_as(db, "physician", "alerts").selectbox(key="alert_pick")
    alert_id = alerts.value
    patient_id = alerts.options[alerts.index].split(" · ")[0]
    # CONTRACT §6: a viewer sees the patient's open alerts but no control to act on them
    at = _patient_app(db, "viewer", patient_id)
    assert not at.exception, at.exception
    assert at.selectbox(key="patient_pick").value == patient_id
    assert "open alerts" in texts(at)
    assert not {"Acknowledge", "Flag"} & {b.label for b in at.button}
    assert "patient_alert_pick" not in [s.key for s in at.selectbox]
    # the physician acknowledges the same alert from the patient page
    at = _patient_app(db, "physician", patient_id)
    at.selectbox(key="patient_alert_pick").set_value(alert_id).run()
    next(b for b in at.button if b.label == "Acknowledge").click().run()
    assert not at.exception, at.exception
    assert alert_id in texts(at)  # the dialog names the alert it acknowledges
    at.text_area(key="patient_ack_note").input("Seen in clinic")
    next(b for b in at.button if b.label == "Confirm acknowledgement").click().run()
    assert not at.exception, at.exception
    history = acknowledgement_history(db)
    assert history["alert_id"].to_list() == [alert_id]
    assert history["note"].to_list() == ["Seen in clinic"]
    assert any(f"Acknowledged: {patient_id}" in shown(s.value) for s in at.success)
    assert alert_id not in at.selectbox(key="patient_alert_pick").options


def test_patient_status_line_is_bold_not_asterisks(db: Store) -> None:
    at = app_as(db, "viewer", "patient")
    (line,) = [m.value for m in at.markdown if "last contact" in m.value]
    # the words are set in bold by the page (`**alive**`), not shown as literal asterisks
    assert line.startswith(("**alive**", "**dead**")), line
    assert "\\*" not in line, line


def test_patient_visits_are_labelled_with_units_and_blank_when_empty(db: Store) -> None:
    at = app_as(db, "viewer", "patient")
    visits = at.dataframe[-1].value
    assert {"Visit", "Disease status", "Marrow blasts", "Flow MRD"} <= set(visits.columns)
    assert not {"patient_id", "visit_date", "disease_status"} & set(visits.columns)
    cells = [str(v) for v in visits.to_numpy().ravel()]
    assert "None" not in cells and "nan" not in cells and "True" not in cells
    assert any(c.endswith(" %") for c in visits["Marrow blasts"])
