"""The kept and incremental alert evaluation (`monitoring.alert_evaluation`) gives exactly what a
full evaluation from scratch gives (and its kept outcomes are `derive_outcomes`) (`DataFrame.equals`: same ids, same order), after every commit
of a random sequence (new patients, changed visits, acknowledgements, flags), for every site
scope, on SQLite and PostgreSQL; a commit whose kept evaluation was never written (a crash) or
whose entry cannot be read is evaluated again."""

from __future__ import annotations

import random
from contextlib import closing
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from monitoring import alert_evaluation
from monitoring.alert_queue import (
    acknowledge,
    acknowledgement_history,
    alerts_with_status,
    evaluate_store,
    flag_patient,
    open_alert_count,
    read_flags,
)
from monitoring.alerts import evaluate_alerts
from monitoring.ingest import ingest_files
from monitoring.outcomes import derive_outcomes
from monitoring.store import Store, alert_cache
from monitoring.store import tables as t
from monitoring.store.site_scope import SiteScope
from monitoring.synthetic import make_cohort

PAST = date(2026, 6, 30)


def _truth(store: Store, day: date) -> pl.DataFrame:
    """Every alert of the store's scope as of `day`, evaluated from scratch."""
    _version, patients, visits = store.snapshot()
    return evaluate_alerts(patients, visits, day, flags=read_flags(store))


def _check(store: Store, day: date) -> None:
    scopes = [SiteScope.every(), *(SiteScope.of({s}) for s in _sites(store)[:2])]
    for scope in scopes:
        view = store.scoped(scope)
        kept, truth = evaluate_store(view, day), _truth(view, day)
        assert kept.equals(truth), (scope, day)
        acked = acknowledgement_history(view)["alert_id"].unique().implode()
        assert open_alert_count(view, day) == truth.filter(~pl.col("alert_id").is_in(acked)).height
        assert alerts_with_status(view, day, "all").height == truth.height
        # the outcomes kept beside the alerts are derive_outcomes of the scope
        _version, patients, visits = view.snapshot()
        outcomes = derive_outcomes(patients, visits, day)
        kept_outcomes = alert_evaluation.kept_outcomes(view, day)
        assert kept_outcomes is not None and kept_outcomes.equals(outcomes)
        assert alert_evaluation.evaluated_outcomes(view, day).equals(outcomes)


def _sites(store: Store) -> list[str]:
    return sorted(store.patients()["site"].drop_nulls().unique().to_list())


def _upload(store: Store, folder: Path, name: str, frame: pl.DataFrame) -> None:
    path = folder / f"{name}.csv"
    frame.write_csv(path)
    ingest_files(store, [path], kind="patients" if "sex" in frame.columns else "visits")


def test_kept_and_incremental_evaluations_equal_a_full_one(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    cohort = make_cohort(70, seed=5)
    # half the patients without a recorded last contact: their visits alone date their follow-up
    patients = cohort.patients.with_columns(
        last_contact_date=pl.when(pl.int_range(pl.len()) % 2 == 0).then(pl.col("last_contact_date"))
    )
    cohort = type(cohort)(patients=patients, visits=cohort.visits)
    ids = cohort.patients["patient_id"].to_list()
    first, later = ids[:50], ids[50:]
    evaluated: list[int] = []  # patients per evaluation: the incremental path must be taken
    real = alert_evaluation.evaluate_patients

    def counting(patients: pl.DataFrame, *args: object) -> alert_evaluation.RuleEvaluation:
        evaluated.append(patients.height)
        return real(patients, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(alert_evaluation, "evaluate_patients", counting)
    again: list[int] = []  # patients a new date re-evaluated
    sensitive = alert_evaluation.time_sensitive

    def counting_days(*args: object) -> pl.Series:
        found = sensitive(*args)  # type: ignore[arg-type]
        again.append(found.len())
        return found

    monkeypatch.setattr(alert_evaluation, "time_sensitive", counting_days)
    deltas: list[bool] = []  # per kept entry: a delta over a whole entry?
    write = alert_cache.write_entry

    def watched_write(*args: object, **kwargs: object) -> None:
        deltas.append(len(args) > 6 and args[6] is not None)
        write(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(alert_cache, "write_entry", watched_write)
    rng = random.Random(14)
    with closing(Store.open(store_url)) as store:
        today = store.today()
        keep = pl.col("patient_id").is_in(first)
        _upload(store, tmp_path, "patients0", cohort.patients.filter(keep))
        _upload(store, tmp_path, "visits0", cohort.visits.filter(keep))
        for day in (today, PAST):
            _check(store, day)
        done = []  # seed 14 draws each of the four kinds of commit once in these four steps
        for step in range(4):
            action = rng.choice(["new", "change", "ack", "flag"])
            stored = store.patients()["patient_id"].to_list()
            if action == "new" and later:
                batch, later = later[:5], later[5:]
                rows = pl.col("patient_id").is_in(batch)
                _upload(store, tmp_path, f"p{step}", cohort.patients.filter(rows))
                _upload(store, tmp_path, f"v{step}", cohort.visits.filter(rows))
                done.append(action)
            elif action == "change":
                chosen = rng.sample(stored, 3)
                visits = store.visits().filter(pl.col("patient_id").is_in(chosen))
                last = visits.group_by("patient_id").agg(pl.col("visit_date").max())
                changed = visits.join(last, on=["patient_id", "visit_date"]).with_columns(
                    disease_status=pl.lit("relapse"), bm_blasts_pct=pl.lit(40.0 + step)
                )
                _upload(store, tmp_path, f"c{step}", changed)
                done.append(action)
            elif action == "ack":
                queue = alerts_with_status(store, today)
                if queue.height:
                    target = queue.row(rng.randrange(queue.height), named=True)
                    acknowledge(store, target["alert_id"], "dr a", f"seen {step}", as_of=today)
                    done.append(action)
            else:
                flag_patient(store, rng.choice(stored), "dr b", "high", f"call {step}", today)
                done.append("flag")
            # and dates nobody evaluated: from an evaluation of the same rows for another date
            # (in the data's range: visits between the dates; and past today: overdue grows)
            fresh = (PAST - timedelta(days=37 * (step + 1)), today + timedelta(days=11 * step))
            for day in (today, PAST, *fresh):
                _check(store, day)
        whole = store.patients().height
    assert sorted(done) == ["ack", "change", "flag", "new"], done
    assert any(0 < n < whole for n in evaluated), evaluated  # some evaluations were partial
    assert any(0 < n < whole for n in again), again  # some new dates re-evaluated only a few
    assert True in deltas and False in deltas, deltas  # deltas and whole entries were kept


def test_no_kept_entry_or_an_unreadable_one_is_evaluated_again(store_url: str, tmp_path: Path):
    cohort = make_cohort(30, seed=8)
    with closing(Store.open(store_url)) as store:
        today = store.today()
        _upload(store, tmp_path, "patients", cohort.patients)
        _upload(store, tmp_path, "visits", cohort.visits)
        assert evaluate_store(store, today).equals(_truth(store, today))
        # an upload that crashed after its commit, before keeping its evaluation
        patient = store.patients()["patient_id"][0]
        with pytest.MonkeyPatch.context() as patch:

            def crash(*_args: object, **_kwargs: object) -> bool:
                raise RuntimeError("killed between the commit and the kept evaluation")

            patch.setattr(alert_evaluation, "keep_committed", crash)
            visits = store.visits().filter(pl.col("patient_id") == patient).tail(1)
            with pytest.raises(RuntimeError, match="killed"):
                _upload(store, tmp_path, "relapse", visits.with_columns(bm_blasts_pct=pl.lit(90.0)))
        assert evaluate_store(store, today).equals(_truth(store, today))
        # an entry that cannot be read (damaged) is a miss, never half an answer
        with store.engine.begin() as conn:
            conn.execute(sa.update(t.alert_evaluations).values(alerts=b"not parquet"))
        assert evaluate_store(store, today).equals(_truth(store, today))
        assert evaluate_store(store, PAST).equals(_truth(store, PAST))


def test_a_first_ingest_leaves_the_snapshot_the_database_gives(tmp_path: Path):
    """The ingest writes the columnar snapshot from the rows it holds (no second read); it is
    exactly what reading the database gives."""
    from monitoring.store.columnar import snapshot_dir
    from monitoring.synthetic import write_csv

    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    ingest_files(store, list(write_csv(make_cohort(40, seed=9), tmp_path / "csv")))
    folder = snapshot_dir(store.engine)
    assert folder is not None
    written = list(folder.glob("*.parquet"))
    assert len(written) == 2
    _version, patients, visits = store.snapshot()
    for path in written:
        path.unlink()
    _version, from_db_patients, from_db_visits = store.snapshot()
    assert patients.equals(from_db_patients) and visits.equals(from_db_visits)
    store.close()


def test_a_reader_does_not_queue_behind_an_upload_to_keep_its_evaluation(
    store_url: str, tmp_path: Path
):
    """Keeping an evaluation is a write nobody waits for: while another write holds the store,
    the reader answers (from its own evaluation) instead of waiting the 30 s busy limit, and
    keeps nothing; the next reader keeps it."""
    import time

    from monitoring.store.engine import BUSY_WAIT_SECONDS, write_transaction

    cohort = make_cohort(20, seed=4)
    with closing(Store.open(store_url)) as store, closing(Store.open(store_url)) as other:
        _upload(store, tmp_path, "patients", cohort.patients)
        _upload(store, tmp_path, "visits", cohort.visits)
        with write_transaction(other.engine):  # an upload in progress
            started = time.monotonic()
            answer = evaluate_store(store, PAST)
            assert time.monotonic() - started < BUSY_WAIT_SECONDS / 3
        assert answer.equals(_truth(store, PAST))
        assert _kept_entries(store, PAST) == 0
        assert evaluate_store(store, PAST).equals(answer)
        assert _kept_entries(store, PAST) == 1


def test_an_upload_of_some_patients_keeps_only_their_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A small upload into a large store cost what the store is large (1.5 s of a 1 000-visit
    upload into 50 000 patients): it read the kept evaluation of everyone, merged its patients
    and wrote everyone's alerts back. Then it kept nothing, and its first reader did all that
    (`ltfu status` after a delta upload: 5.25× the raw read). Now the upload keeps its
    patients' rows as a delta over the day's entry, reading and writing no one else's rows;
    the first reader merges the two entries, writes nothing, and equals a full evaluation."""
    cohort = make_cohort(40, seed=6)
    with closing(Store.open(f"sqlite:///{tmp_path / 'store.db'}")) as store:
        _upload(store, tmp_path, "patients", cohort.patients)
        _upload(store, tmp_path, "visits", cohort.visits)
        today = store.today()
        assert alert_evaluation.kept_outcomes(store, today) is not None  # the first ingest kept
        decoded: list[set[str]] = []  # the patients of every kept frame read
        written: list[tuple[set[str], set[str]]] = []  # the patients of each entry written
        frame, write = alert_cache._frame, alert_cache.write_entry

        def watched_frame(blob: bytes, columns: list[str] | None) -> pl.DataFrame:
            read = frame(blob, columns)
            if "patient_id" in read.columns:
                decoded.append(set(read["patient_id"].to_list()))
            return read

        def watched_write(*args: object, **kwargs: object) -> None:
            alerts, facts = args[4], args[5]
            assert isinstance(alerts, pl.DataFrame) and isinstance(facts, pl.DataFrame)
            written.append((set(alerts["patient_id"]), set(facts["patient_id"])))
            write(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(alert_cache, "_frame", watched_frame)
        monkeypatch.setattr(alert_cache, "write_entry", watched_write)
        for step, chosen in enumerate((["CART-00001", "CART-00002"], ["CART-00002", "CART-00007"])):
            decoded.clear()
            written.clear()
            changed = cohort.visits.filter(pl.col("patient_id").is_in(chosen)).with_columns(
                bm_blasts_pct=pl.lit(33.0 + step)
            )
            _upload(store, tmp_path, f"delta{step}", changed)
            # a second upload's delta carries the first one's patients over (same whole entry)
            upto = {"CART-00001", *chosen}
            assert len(written) == 1 and written[0][1] == upto, written
            assert all(patients <= upto for patients in decoded), decoded
            assert _kept_entries(store, today) == 2  # the whole entry and one delta over it
            written.clear()
            assert evaluate_store(store, today).equals(_truth(store, today))
            assert alert_evaluation.kept_outcomes(store, today) is not None
            assert written == []


def test_a_reader_keeps_only_the_patients_it_evaluated_again(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A reader that brings an older entry up to date (its upload kept nothing) or evaluates
    a new date from another date's entry wrote everyone's alerts back; it keeps a delta with
    the rows of the patients it evaluated again. A delta whose whole entry is gone is a miss."""
    cohort = make_cohort(60, seed=12)
    with closing(Store.open(store_url)) as store:
        _upload(store, tmp_path, "patients", cohort.patients)
        _upload(store, tmp_path, "visits", cohort.visits)
        today = store.today()
        written: list[tuple[int | None, int]] = []  # (whole entry named, patients written)
        write = alert_cache.write_entry

        def watched_write(*args: object, **kwargs: object) -> None:
            facts = args[5]
            assert isinstance(facts, pl.DataFrame)
            delta_of = args[6] if len(args) > 6 else None
            written.append((delta_of if isinstance(delta_of, int) else None, facts.height))
            write(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(alert_cache, "write_entry", watched_write)
        with monkeypatch.context() as patch:  # an upload that kept nothing
            patch.setattr(alert_evaluation, "keep_committed", lambda *_a, **_k: False)
            chosen = store.patients()["patient_id"].head(3).implode()
            visits = store.visits().filter(pl.col("patient_id").is_in(chosen))
            _upload(store, tmp_path, "change", visits.with_columns(bm_blasts_pct=pl.lit(50.0)))
        assert written == []
        assert evaluate_store(store, today).equals(_truth(store, today))
        assert len(written) == 1 and written[0][0] is not None and written[0][1] <= 3, written
        # a new date from today's entry (a delta itself: it names the same whole entry)
        written.clear()
        tomorrow = today + timedelta(days=1)
        assert evaluate_store(store, tomorrow).equals(_truth(store, tomorrow))
        assert len(written) == 1 and written[0][0] is not None, written
        assert written[0][1] < store.patients().height, written
        # the whole entry gone (deleted, damaged): its deltas are misses, never half an answer
        with store.engine.begin() as conn:
            conn.execute(
                sa.delete(t.alert_evaluations).where(t.alert_evaluations.c.base_entry.is_(None))
            )
        for day in (today, tomorrow):
            assert evaluate_store(store, day).equals(_truth(store, day))


def _kept_entries(store: Store, day: date) -> int:
    """How many evaluations are kept for `day`."""
    with store.engine.connect() as conn:
        count = conn.execute(
            sa.select(sa.func.count())
            .select_from(t.alert_evaluations)
            .where(t.alert_evaluations.c.as_of == day.isoformat())
        ).scalar()
    return int(count or 0)


def test_a_store_kept_before_deltas_migrates_and_keeps_deltas(store_url: str, tmp_path: Path):
    """Migration 11 adds the delta columns to a store made without them (migration 10's
    table), keeping its entries; deltas are kept after it."""
    cohort = make_cohort(20, seed=3)
    with closing(Store.open(store_url)) as store:
        _upload(store, tmp_path, "patients", cohort.patients)
        _upload(store, tmp_path, "visits", cohort.visits)
        today = store.today()
        with store.engine.begin() as conn:  # as migration 10 left the table
            for column in ("base_entry", "replaced"):
                conn.exec_driver_sql(f"ALTER TABLE alert_evaluations DROP COLUMN {column}")
            conn.execute(sa.delete(t.schema_migrations).where(t.schema_migrations.c.version == 11))
    with closing(Store.open(store_url)) as store:
        assert store.schema_version() == 11
        assert _kept_entries(store, today) == 1  # the ingest's entry is still there
        assert evaluate_store(store, today).equals(_truth(store, today))
        patient = store.patients()["patient_id"][0]
        visits = store.visits().filter(pl.col("patient_id") == patient).tail(1)
        _upload(store, tmp_path, "change", visits.with_columns(bm_blasts_pct=pl.lit(70.0)))
        with store.engine.connect() as conn:
            deltas = conn.execute(
                sa.select(sa.func.count())
                .select_from(t.alert_evaluations)
                .where(t.alert_evaluations.c.base_entry.is_not(None))
            ).scalar()
        assert deltas == 1
        assert evaluate_store(store, today).equals(_truth(store, today))
