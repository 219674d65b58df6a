"""Site-scoped access (issue 16 item 8): a store read through an account's `SiteScope` sees only
its sites' patients, and everything derived from it follows; a patient outside the scope is
"not found" exactly like an unknown id; an upload by a site-limited account may only touch its
sites' patients. A two-site hand-built cohort, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from monitoring import accounts
from monitoring.alert_queue import (
    acknowledge,
    acknowledgement_history,
    alerts_with_status,
    evaluate_store,
    flag_patient,
)
from monitoring.bulk_ack import acknowledge_ids
from monitoring.durability import durability_summary
from monitoring.errors import NotFoundError, RejectedUploadError, UsageError
from monitoring.ingest import ingest_files
from monitoring.outcomes import derive_outcomes
from monitoring.rule_performance import store_rule_performance
from monitoring.store import Store
from monitoring.store.site_scope import SiteScope
from monitoring.worklist import worklist
from tests.conftest import PATIENTS_HEADER, VISITS_HEADER, write_csv

AS_OF = date(2025, 3, 1)
SITE_A = SiteScope.of({"A"})
A_IDS = {"A-1", "A-2"}
B_IDS = {"B-1", "B-2", "N-1"}  # N-1 has no site: in no limited scope


def _load(store: Store, folder: Path) -> None:
    patients = write_csv(
        folder / "patients.csv",
        PATIENTS_HEADER,
        "A-1,A,F,7,tisagenlecleucel,2024-01-10,,,",
        "A-2,A,M,9,tisagenlecleucel,2024-03-10,,,",
        "B-1,B,F,12,tisagenlecleucel,2024-02-10,,2024-09-01,relapse",
        "B-2,B,M,4,tisagenlecleucel,2024-04-10,,,",
        "N-1,,M,5,tisagenlecleucel,2024-04-12,,,",
    )
    visits = write_csv(
        folder / "visits.csv",
        VISITS_HEADER,
        "A-1,2024-02-07,CR,2,BM,0,0,,",
        "A-1,2024-06-07,relapse,40,BM,0.2,0,,",
        "A-2,2024-04-07,CR,1,BM,0,0,300,false",
        "B-1,2024-03-10,CR,2,BM,0,0,,",
        "B-1,2024-07-10,relapse,60,BM,0.3,0,,",
        "B-2,2024-05-08,CR,1,BM,0,0,300,false",
        "N-1,2024-05-10,CR,1,BM,0,0,,",
    )
    ingest_files(store, [patients, visits], user="dm")


@pytest.fixture
def cohort(store: Store, tmp_path: Path) -> Store:
    _load(store, tmp_path)
    return store


def _ids(frame: pl.DataFrame) -> set[str]:
    return set(frame["patient_id"].to_list())


def test_a_scoped_store_reads_only_its_sites_patients_and_visits(cohort: Store):
    _version, patients, visits = cohort.scoped(SITE_A).snapshot()
    assert _ids(patients) == A_IDS and _ids(visits) == A_IDS
    _v, everyone, _visits = cohort.snapshot()
    assert _ids(everyone) == A_IDS | B_IDS
    _v, some, some_visits = cohort.scoped(SITE_A).snapshot_of(pl.Series(["A-1", "B-1"]))
    assert _ids(some) == {"A-1"} and _ids(some_visits) == {"A-1"}
    assert _ids(cohort.scoped(SiteScope.nothing()).patients()) == set()
    assert set(cohort.scoped(SITE_A).history()["patient_id"].to_list()) <= A_IDS


def test_everything_derived_from_a_scoped_store_is_of_its_sites(cohort: Store):
    scoped = cohort.scoped(SITE_A)
    _v, patients, visits = scoped.snapshot()
    assert _ids(derive_outcomes(patients, visits, as_of=AS_OF)) == A_IDS
    assert sum(g.n for g in durability_summary(patients, visits, "efs").groups) == 2
    assert _ids(worklist(patients, visits, AS_OF, within_days=400)) <= A_IDS
    queue = alerts_with_status(scoped, AS_OF, "all")
    assert queue.height and _ids(queue) <= A_IDS
    assert _ids(alerts_with_status(cohort, AS_OF, "all")) & B_IDS  # the others have alerts too
    performance = store_rule_performance(scoped, AS_OF)
    everyone = store_rule_performance(cohort, AS_OF)
    assert performance["alerts"].sum() == queue.height < everyone["alerts"].sum()


def test_cached_alerts_of_one_scope_are_never_served_to_another(cohort: Store):
    site_b = SiteScope.of({"B"})
    # A first: on SQLite its alerts are then cached beside the store for this commit and day
    first = evaluate_store(cohort.scoped(SITE_A), AS_OF)
    assert _ids(first) == A_IDS
    assert _ids(evaluate_store(cohort.scoped(site_b), AS_OF)) == {"B-1", "B-2"}
    assert _ids(evaluate_store(cohort, AS_OF)) == A_IDS | B_IDS
    assert _ids(evaluate_store(cohort.scoped(SITE_A), AS_OF)) == A_IDS


def test_a_patient_outside_the_scope_is_not_found_like_an_unknown_id(cohort: Store):
    scoped = cohort.scoped(SITE_A)
    with pytest.raises(NotFoundError) as unknown:
        flag_patient(scoped, "Z-9", "dr", "high", "look")
    with pytest.raises(NotFoundError) as outside:
        flag_patient(scoped, "B-2", "dr", "high", "look")
    assert str(outside.value) == str(unknown.value).replace("Z-9", "B-2")
    with pytest.raises(NotFoundError):
        flag_patient(scoped, "N-1", "dr", "high", "no site")
    b_alert = alerts_with_status(cohort, AS_OF, "all").filter(pl.col("patient_id") == "B-1")
    alert_id = b_alert["alert_id"][0]
    with pytest.raises(NotFoundError) as refused:
        acknowledge(scoped, alert_id, "dr", "seen", as_of=AS_OF)
    with pytest.raises(NotFoundError) as missing:
        acknowledge(scoped, "0000000000000000", "dr", "seen", as_of=AS_OF)
    assert str(refused.value) == str(missing.value).replace("0000000000000000", alert_id)
    with pytest.raises(NotFoundError):
        acknowledge_ids(scoped, [alert_id], "dr", "seen", as_of=AS_OF)
    assert acknowledgement_history(cohort).is_empty()  # nothing was written
    assert _ids(scoped.scoped(SITE_A).history().select("patient_id")) <= A_IDS


def test_acknowledgements_and_flags_of_other_sites_are_not_shown(cohort: Store):
    queue = alerts_with_status(cohort, AS_OF, "all")
    b_id = queue.filter(pl.col("patient_id") == "B-1")["alert_id"][0]
    a_id = queue.filter(pl.col("patient_id") == "A-1")["alert_id"][0]
    acknowledge(cohort, b_id, "dr", "B's note", as_of=AS_OF)
    acknowledge(cohort, a_id, "dr", "A's note", as_of=AS_OF)
    flag_patient(cohort, "B-2", "dr", "high", "B flag", raised_on=AS_OF)
    scoped = cohort.scoped(SITE_A)
    assert acknowledgement_history(scoped)["note"].to_list() == ["A's note"]
    assert set(acknowledgement_history(cohort)["note"].to_list()) == {"A's note", "B's note"}
    assert _ids(alerts_with_status(scoped, AS_OF, "all")) <= A_IDS
    assert "B-2" in _ids(evaluate_store(cohort, AS_OF).filter(pl.col("rule") == "physician_flag"))


def test_a_site_limited_upload_touching_another_site_is_rejected_whole(
    cohort: Store, tmp_path: Path
):
    before = (cohort.counts(), cohort.snapshot()[1], cohort.snapshot()[2])
    patients = write_csv(
        tmp_path / "p2.csv",
        PATIENTS_HEADER,
        "A-1,A,F,8,tisagenlecleucel,2024-01-10,,,",  # row 2: fine (own site)
        "B-2,A,M,4,tisagenlecleucel,2024-04-10,,,",  # row 3: stored at B, moved to A
        "A-9,B,F,6,tisagenlecleucel,2024-05-10,,,",  # row 4: new, at another site
        "A-8,,F,6,tisagenlecleucel,2024-05-10,,,",  # row 5: new, without a site
        "N-1,A,M,5,tisagenlecleucel,2024-04-12,,,",  # row 6: stored without a site
    )
    visits = write_csv(
        tmp_path / "v2.csv",
        VISITS_HEADER,
        "A-1,2024-08-07,CR,1,BM,0,0,,",  # row 2: fine
        "B-1,2024-08-10,relapse,70,BM,0.4,0,,",  # row 3: another site's patient
    )
    with pytest.raises(RejectedUploadError) as rejected:
        ingest_files(cohort.scoped(SITE_A), [patients, visits], user="dm-a")
    errors = rejected.value.report.filter(pl.col("column") == "site")
    assert sorted(errors.select("file", "row", "patient_id").rows()) == [
        ("p2.csv", 3, "B-2"),
        ("p2.csv", 4, "A-9"),
        ("p2.csv", 5, "A-8"),
        ("p2.csv", 6, "N-1"),
        ("v2.csv", 3, "B-1"),
    ]
    assert (errors["severity"] == "error").all()
    sentences = dict(zip(errors["patient_id"], errors["problem"], strict=True))
    assert sentences["B-2"].startswith("patient belongs to a site outside your account's sites (A)")
    assert "B" not in sentences["B-1"].replace("B-1", "")  # the other site is never named
    assert sentences["A-9"] == "this site is not one of your account's sites (A)"
    assert sentences["A-8"].startswith("site is empty")
    # nothing written
    assert cohort.counts() == before[0]
    assert cohort.snapshot()[1].equals(before[1]) and cohort.snapshot()[2].equals(before[2])
    # the same rows of its own site only are accepted
    own = write_csv(
        tmp_path / "p3.csv", PATIENTS_HEADER, "A-7,A,F,6,tisagenlecleucel,2024-05-10,,,"
    )
    result = ingest_files(cohort.scoped(SITE_A), [own], user="dm-a")
    assert result.summary is not None and "A-7" in _ids(cohort.patients())


def test_accounts_carry_their_sites_audited(store: Store):
    account = accounts.add_user(
        store, "dm-a", "data_manager", "a long enough passphrase", by="boss", sites=SITE_A
    )
    assert account.sites == SITE_A
    assert accounts.get_user(store, "dm-a").sites == SITE_A  # type: ignore[union-attr]
    accounts.add_user(store, "doc", "physician", "another long passphrase", by="boss")
    assert accounts.get_user(store, "doc").sites.is_every_site  # type: ignore[union-attr]
    accounts.set_sites(store, "doc", SiteScope.of({"B", "A"}), by="boss")
    assert accounts.get_user(store, "doc").sites == SiteScope.of({"A", "B"})  # type: ignore[union-attr]
    listed = dict(accounts.list_users(store).select("user_name", "sites").rows())
    assert listed == {"dm-a": "A", "doc": "A, B"}
    accounts.set_sites(store, "doc", SiteScope.every(), by="boss")
    assert accounts.get_user(store, "doc").sites.is_every_site  # type: ignore[union-attr]
    audit = store.audit_entries(user="boss")
    assert audit.filter(pl.col("action") == "user_sites").height == 2
    assert '"sites": "A"' in audit.filter(pl.col("action") == "user_add")["detail"][-1]
    with pytest.raises(UsageError, match="administrator sees every site"):
        accounts.add_user(store, "root", "admin", "a very long admin phrase", sites=SITE_A)
    with pytest.raises(NotFoundError):
        accounts.set_sites(store, "nobody", SITE_A)
    with pytest.raises(UsageError, match="names no site"):
        accounts.site_scope(" , ")


def test_the_cli_adds_limits_and_lists_sites(tmp_path: Path, monkeypatch, capsys):
    import io
    import json
    from contextlib import closing

    from monitoring.cli import main

    db = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough passphrase\n"))
    assert main(["--db", db, "user", "add", "v", "--role", "viewer", "--sites", "A, B"]) == 0
    assert "(A, B)" in capsys.readouterr().out
    assert main(["--db", db, "user", "list", "--format", "json"]) == 0
    assert [row["sites"] for row in json.loads(capsys.readouterr().out)] == ["A, B"]
    assert main(["--db", db, "user", "sites", "v", "C"]) == 0
    assert main(["--db", db, "user", "sites", "v"]) == 2  # neither sites nor --all-sites
    assert main(["--db", db, "user", "sites", "v", "--all-sites"]) == 0
    with closing(Store.open(db)) as store:
        assert accounts.get_user(store, "v").sites.is_every_site  # type: ignore[union-attr]
        actions = store.audit_entries()["action"].to_list()
    assert actions.count("user_sites") == 2


def test_an_institution_identity_gets_its_sites_from_a_claim():
    claims = {"groups": ["ltfu"], "ltfu_sites": ["A", " B "], "one": "C", "none": []}
    assert accounts.sites_from_claims(claims, None, "viewer") == SiteScope.every()
    assert accounts.sites_from_claims(claims, "ltfu_sites", "viewer") == SiteScope.of({"A", "B"})
    assert accounts.sites_from_claims(claims, "one", "physician") == SiteScope.of({"C"})
    assert accounts.sites_from_claims(claims, "none", "viewer") is None  # refused
    assert accounts.sites_from_claims(claims, "missing", "viewer") is None
    assert accounts.sites_from_claims(claims, "missing", "admin") == SiteScope.every()


def test_the_upload_log_through_a_scope_lists_only_its_sites_accounts_uploads(
    cohort: Store, tmp_path: Path
):
    accounts.add_user(cohort, "dm-a", "data_manager", "a long enough passphrase", sites=SITE_A)
    accounts.add_user(
        cohort, "dm-ab", "data_manager", "a long enough passphrase", sites=SiteScope.of("AB")
    )
    own = write_csv(tmp_path / "a.csv", PATIENTS_HEADER, "A-7,A,F,6,tisagenlecleucel,2024-05-10,,,")
    ingest_files(cohort.scoped(SITE_A), [own], user="dm-a")
    both = write_csv(
        tmp_path / "ab.csv", PATIENTS_HEADER, "B-7,B,F,6,tisagenlecleucel,2024-05-10,,,"
    )
    ingest_files(cohort.scoped(SiteScope.of("AB")), [both], user="dm-ab")

    def files(store: Store) -> list[str]:
        return store.uploads()["file_name"].to_list() if store.uploads().height else []

    assert files(cohort) == ["ab.csv", "a.csv", "visits.csv", "patients.csv"]
    assert files(cohort.scoped(SITE_A)) == ["a.csv"]  # not dm-ab's: it may hold B's rows
    assert files(cohort.scoped(SiteScope.of("AB"))) == ["ab.csv", "a.csv"]
    assert files(cohort.scoped(SiteScope.of({"B"}))) == []


def test_the_command_line_uploads_as_a_named_site_limited_account_within_its_sites(
    cohort: Store, tmp_path: Path, monkeypatch, capsys
):
    from monitoring.cli import main

    accounts.add_user(cohort, "dm-a", "data_manager", "a long enough passphrase", sites=SITE_A)
    visits = write_csv(tmp_path / "v.csv", VISITS_HEADER, "B-2,2024-08-08,CR,1,BM,0,0,300,false")
    db = cohort.engine.url.render_as_string(hide_password=False)
    monkeypatch.delenv("LTFU_USER", raising=False)
    report = tmp_path / "report.csv"
    assert main(["--db", db, "ingest", str(visits), "--user", "dm-a", "--report", str(report)]) == 1
    rows = pl.read_csv(report).filter(pl.col("severity") == "error")
    assert rows.select("file", "row", "patient_id", "column").rows() == [
        ("v.csv", 2, "B-2", "site")
    ]
    assert rows["problem"][0].startswith("patient belongs to a site outside your account's sites")
    assert main(["--db", db, "ingest", str(visits), "--user", "central"]) == 0


def test_a_refused_upload_tells_nothing_of_the_other_sites_stored_patient(
    cohort: Store, tmp_path: Path
):
    # B-1 died on 2024-09-01 and was infused on 2024-02-10: a visit after its death and one
    # long before its infusion would be reported against those stored dates for its own site
    visits = write_csv(
        tmp_path / "v.csv",
        VISITS_HEADER,
        "B-1,2024-10-01,CR,1,BM,0,0,,",
        "B-1,2023-01-01,CR,1,BM,0,0,,",
    )
    with pytest.raises(RejectedUploadError) as unscoped:
        ingest_files(cohort, [visits], user="central")
    assert "2024-09-01" in " ".join(unscoped.value.report["problem"].to_list())  # live check
    with pytest.raises(RejectedUploadError) as rejected:
        ingest_files(cohort.scoped(SITE_A), [visits], user="dm-a")
    report = rejected.value.report
    text = " ".join(str(v) for row in report.rows() for v in row)
    assert "2024-09-01" not in text and "2024-02-10" not in text
    assert report.select("row", "column").rows() == [(2, "site"), (3, "site")]
