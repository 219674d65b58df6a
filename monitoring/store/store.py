"""`Store`: the canonical tables, upload history, audit log, acknowledgements, flags and accounts.

Every write is one transaction (`write_transaction`): all of it lands or none of it does.
`data_version` increases with every committed write, so readers can cache on it.
"""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import polars as pl
import sqlalchemy as sa

from monitoring.errors import StoreWriteError
from monitoring.schemas import COLUMNS, Kind, polars_schema
from monitoring.store import clinical_version, columnar, staging
from monitoring.store import tables as t
from monitoring.store.changes import Changes, count_changes
from monitoring.store.client import client_address
from monitoring.store.engine import make_engine, read_connection, resolve_url, write_transaction
from monitoring.store.site_scope import SiteScope

_INSERT_CHUNK = 5000
# rows per CSV text handed to PostgreSQL's COPY (bounds the text held at once)
_COPY_ROWS = 50_000
# an upload touching at least 1/4 of the stored patients reads the whole (columnar) snapshot
_WHOLE_STORE_SHARE = 4
_log = logging.getLogger(__name__)


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _touched_patients(changes: list[tuple[str, str, Changes]]) -> pl.Series:
    return pl.concat(
        [c.new["patient_id"].cast(pl.String) for _n, _s, c in changes]
        + [c.changed["patient_id"].cast(pl.String) for _n, _s, c in changes]
    )


class SnapshotChangedError(Exception):
    """The store changed between an upload's snapshot and its write (see `apply_upload`)."""


@dataclass(frozen=True)
class UploadSummary:
    upload_ids: tuple[int, ...]
    counts: dict[str, dict[str, int]]  # kind → new/changed/unchanged/rows
    clinical_version: int | None = None  # the clinical version this upload's commit made

    def sentence(self) -> str:
        parts = [
            f"{kind}: {c['new']} new, {c['changed']} changed, {c['unchanged']} unchanged"
            for kind, c in self.counts.items()
        ]
        return "; ".join(parts) if parts else "nothing to store"


class Store:
    """Open with `Store.open(url)`; the schema is migrated on open.

    `scope` (default every site) limits every read of patients and visits (`snapshot`,
    `snapshot_of`, `patients`, `visits`, `history`) to the scope's patients; `scoped(scope)`
    gives a store of the same database that reads through another scope (a signed-in account's).
    """

    def __init__(self, engine: sa.Engine, scope: SiteScope | None = None) -> None:
        self.engine = engine
        self.scope = scope or SiteScope.every()

    def scoped(self, scope: SiteScope) -> Store:
        """The same database (and engine) read through `scope`."""
        view = copy.copy(self)
        view.scope = scope
        return view

    def unscoped(self) -> Store:
        """The same database read without a scope. Only for checks that must see a patient
        outside the scope in order to refuse it (an upload touching another site's patient)."""
        return self.scoped(SiteScope.every())

    @classmethod
    def open(cls, url: str | None = None, *, migrate: bool = True) -> Store:
        store = cls(make_engine(resolve_url(url)))
        if migrate:
            store.migrate()
        return store

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()

    # ---- schema -------------------------------------------------------------------------
    def migrate(self) -> list[int]:
        """Apply every migration not yet applied; returns the versions applied now."""
        applied_now: list[int] = []
        wanted = {version for version, _description, _step in t.MIGRATIONS}
        # the common case (up to date) must not take the write lock: readers open stores too
        with read_connection(self.engine) as conn:
            if sa.inspect(conn).has_table("schema_migrations"):
                done = {row[0] for row in conn.execute(sa.select(t.schema_migrations.c.version))}
                if wanted <= done:
                    return applied_now
        with write_transaction(self.engine) as conn:
            t.schema_migrations.create(conn, checkfirst=True)
            done = {row[0] for row in conn.execute(sa.select(t.schema_migrations.c.version))}
            for version, description, step in t.MIGRATIONS:
                if version in done:
                    continue
                step(conn)
                conn.execute(
                    t.schema_migrations.insert().values(
                        version=version, description=description, applied_at=utc_now()
                    )
                )
                applied_now.append(version)
            if (
                applied_now
                and not conn.execute(
                    sa.select(t.meta.c.value).where(t.meta.c.key == "data_version")
                ).first()
            ):
                conn.execute(t.meta.insert().values(key="data_version", value="0"))
        return applied_now

    def schema_version(self) -> int:
        with read_connection(self.engine) as conn:
            return int(
                conn.execute(sa.select(sa.func.max(t.schema_migrations.c.version))).scalar() or 0
            )

    # ---- reading ------------------------------------------------------------------------
    def data_version(self) -> int:
        with read_connection(self.engine) as conn:
            value = conn.execute(
                sa.select(t.meta.c.value).where(t.meta.c.key == "data_version")
            ).scalar()
        return int(value or 0)

    def content_key(self) -> str:
        """A name for the patients' and visits' content: the clinical token, which every commit
        that changes either replaces and acknowledgements and flags keep (before the first such
        commit, the data version). What derives from the two tables alone may be kept under it."""
        with read_connection(self.engine) as conn:
            state = clinical_version.read_state(conn)
            if state.token is not None:
                return f"clinical-{state.token}"
            value = conn.execute(
                sa.select(t.meta.c.value).where(t.meta.c.key == "data_version")
            ).scalar()
        return f"data-{int(value or 0)}"

    @staticmethod
    def _select(
        kind: Kind, dialect: str, ids_json: str | None = None
    ) -> tuple[sa.Select[Any], dict[str, pl.DataType]]:
        """The canonical columns in key order; dates as ISO text and booleans as 0/1.

        `ids_json` (a JSON list of patient ids) keeps only those patients' rows; it is a bound
        literal, expanded by the database (`json_each` / `json_array_elements_text`), so the
        statement stays one statement however many patients an upload touches.
        """
        table = t.patients if kind == "patients" else t.visits
        schema = polars_schema(kind)
        selects: list[sa.ColumnElement[Any]] = []
        raw_schema: dict[str, pl.DataType] = {}
        for spec in COLUMNS[kind]:
            col = table.c[spec.name]
            if spec.type == "date":
                selects.append(sa.cast(col, sa.Text).label(spec.name))
                raw_schema[spec.name] = pl.String()
            elif spec.type == "bool":
                selects.append(sa.cast(col, sa.Integer).label(spec.name))
                raw_schema[spec.name] = pl.Int64()
            else:
                selects.append(col)
                raw_schema[spec.name] = schema[spec.name]
        order = list(table.primary_key.columns)
        query = sa.select(*selects).order_by(*order)
        if ids_json is not None:
            ids: sa.Select[Any]
            if dialect == "postgresql":
                ids = sa.select(
                    sa.func.json_array_elements_text(sa.cast(sa.literal(ids_json), sa.JSON))
                )
            else:
                ids = sa.select(sa.literal_column("value")).select_from(
                    sa.func.json_each(sa.literal(ids_json))
                )
            query = query.where(table.c.patient_id.in_(ids))
        return query, raw_schema

    def _load(self, conn: sa.Connection, kind: Kind, ids_json: str | None = None) -> pl.DataFrame:
        """One canonical table (or some patients' rows) inside the caller's transaction."""
        query, raw_schema = self._select(kind, conn.dialect.name, ids_json)
        frame = columnar.read_frame(conn, query, raw_schema)
        return frame.with_columns(
            [
                pl.col(s.name).str.slice(0, 10).str.to_date("%Y-%m-%d")
                if s.type == "date"
                else pl.col(s.name).cast(pl.Boolean)
                for s in COLUMNS[kind]
                if s.type in ("date", "bool")
            ]
        )

    def patients(self) -> pl.DataFrame:
        return self.snapshot()[1]

    def visits(self) -> pl.DataFrame:
        return self.snapshot()[2]

    def snapshot(self) -> tuple[int, pl.DataFrame, pl.DataFrame]:
        """(data_version, patients, visits) of one committed state, read in one transaction.

        Columnar throughout (`store.columnar`): SQLite serves the Parquet snapshot of the
        transaction's own clinical token when there is one and writes it when there is not;
        PostgreSQL streams both tables through COPY on the same connection.
        """
        folder = columnar.snapshot_dir(self.engine)
        with read_connection(self.engine) as conn:
            rows = {
                str(key): str(value)
                for key, value in conn.execute(
                    sa.select(t.meta.c.key, t.meta.c.value).where(
                        t.meta.c.key.in_(("data_version", clinical_version.TOKEN_KEY))
                    )
                )
            }
            # keyed on the clinical token: an acknowledgement or a flag keeps the snapshot
            version = int(rows.get("data_version") or 0)
            token = rows.get(clinical_version.TOKEN_KEY)
            if folder is not None and token:
                cached = columnar.load_snapshot(
                    folder, token, {k: polars_schema(k) for k in ("patients", "visits")}
                )
                if cached is not None:
                    return (version, *self.scope.restrict(cached[0], cached[1]))
            patients, visits = self._load(conn, "patients"), self._load(conn, "visits")
        if folder is not None and token:
            columnar.save_snapshot(folder, token, patients, visits)
        return (version, *self.scope.restrict(patients, visits))

    def snapshot_of(self, patient_ids: pl.Series) -> tuple[int, pl.DataFrame, pl.DataFrame]:
        """(data_version, patients, visits) of only these patients, read in one transaction.

        What an upload validates and diffs against: every rule across tables is per patient, so
        the stored rows of the patients it touches are all it needs, and its cost follows the
        upload, not the store. An upload touching most of the store reads the whole snapshot.
        """
        ids = patient_ids.drop_nulls().cast(pl.String).unique().sort()
        with read_connection(self.engine) as conn:
            stored = int(
                conn.execute(sa.select(sa.func.count()).select_from(t.patients)).scalar() or 0
            )
            if ids.len() * _WHOLE_STORE_SHARE < stored:
                version = conn.execute(
                    sa.select(t.meta.c.value).where(t.meta.c.key == "data_version")
                ).scalar()
                ids_json = json.dumps(ids.to_list())
                return (
                    int(version or 0),
                    *self.scope.restrict(
                        self._load(conn, "patients", ids_json), self._load(conn, "visits", ids_json)
                    ),
                )
        version, patients, visits = self.snapshot()
        keep = pl.col("patient_id").is_in(ids.implode())
        return version, patients.filter(keep), visits.filter(keep)

    def _frame(self, query: sa.Select[Any]) -> pl.DataFrame:
        with read_connection(self.engine) as conn:
            result = conn.execute(query)
            columns = list(result.keys())
            rows = [tuple(r) for r in result.fetchall()]
        return pl.DataFrame(rows, schema=columns, orient="row", infer_schema_length=None)

    def uploads(self) -> pl.DataFrame:
        """The upload log, newest first. Through a site-limited store: only the uploads of
        accounts limited to some of its sites (such an upload can only have touched those
        sites' patients); an upload by an unlimited account may hold any site's rows and counts."""
        query = sa.select(t.uploads).order_by(t.uploads.c.upload_id.desc())
        if self.scope.sites is not None:
            limited = sa.select(t.account_sites.c.user_name)
            elsewhere = sa.select(t.account_sites.c.user_name).where(
                t.account_sites.c.site.not_in(sorted(self.scope.sites))
            )
            query = query.where(
                t.uploads.c.user_name.in_(limited), t.uploads.c.user_name.not_in(elsewhere)
            )
        return self._frame(query)

    def history(self, patient_id: str | None = None) -> pl.DataFrame:
        """Changed values (oldest first), of one patient or all; only the scope's patients."""
        query = sa.select(t.history).order_by(t.history.c.history_id)
        if patient_id is not None:
            query = query.where(t.history.c.patient_id == patient_id)
        if self.scope.sites is not None:
            in_scope = sa.select(t.patients.c.patient_id).where(
                t.patients.c.site.in_(sorted(self.scope.sites))
            )
            query = query.where(t.history.c.patient_id.in_(in_scope))
        return self._frame(query)

    def audit_entries(
        self, *, user: str | None = None, since: str | None = None, before: str | None = None
    ) -> pl.DataFrame:
        """Audit entries newest first; `since`/`before` compare with `at` (ISO UTC text)."""
        query = sa.select(t.audit_log).order_by(t.audit_log.c.audit_id.desc())
        if user is not None:
            query = query.where(t.audit_log.c.user_name == user)
        if since is not None:
            query = query.where(t.audit_log.c.at >= since)
        if before is not None:
            query = query.where(t.audit_log.c.at < before)
        return self._frame(query)

    def audit_log(self, limit: int = 500) -> pl.DataFrame:
        return self._frame(
            sa.select(t.audit_log).order_by(t.audit_log.c.audit_id.desc()).limit(limit)
        )

    def counts(self) -> dict[str, int]:
        with read_connection(self.engine) as conn:

            def count(table: sa.Table) -> int:
                return int(
                    conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() or 0
                )

            return {
                "patients": count(t.patients),
                "visits": count(t.visits),
                "uploads": count(t.uploads),
            }

    # ---- writing ------------------------------------------------------------------------
    @staticmethod
    def bump_version(conn: sa.Connection) -> None:
        """Count the commit (acknowledgements and flags too; the clinical token, which keys
        what derives from patients and visits, moves in `clinical_version.record_commit`)."""
        conn.execute(
            t.meta.update()
            .where(t.meta.c.key == "data_version")
            .values(value=sa.cast(sa.cast(t.meta.c.value, sa.Integer) + 1, sa.Text))
        )

    @staticmethod
    def audit(conn: sa.Connection, user: str, action: str, detail: dict[str, Any]) -> None:
        entry = {**detail, "client": detail.get("client") or client_address()}
        conn.execute(
            t.audit_log.insert().values(
                at=utc_now(), user_name=user, action=action, detail=json.dumps(entry, default=str)
            )
        )

    def record_audit(self, user: str, action: str, detail: dict[str, Any]) -> None:
        with write_transaction(self.engine) as conn:
            self.audit(conn, user, action, detail)

    def apply_upload(
        self,
        changes: list[tuple[str, str, Changes]],
        *,
        user: str,
        expected_version: int | None = None,
    ) -> UploadSummary:
        """Write (file name, sha256, changes) entries in one transaction. Patients go first.

        With `expected_version` (the `data_version` of the snapshot the changes were computed
        from) the version is re-checked under the write lock: `SnapshotChangedError` when another
        write landed in between, so that the caller validates and diffs again and every history
        row's old value is the value it really replaced. A database error becomes
        `StoreWriteError` (one sentence; the log line names the error type only, no values).
        """
        try:
            return self._apply_upload(changes, user, expected_version)
        except sa.exc.SQLAlchemyError as exc:
            _log.error("upload write failed: %s", type(exc).__name__)
            raise StoreWriteError(
                "The upload could not be written: the database refused it "
                f"({type(exc).__name__}); nothing was written. Try again, and tell the "
                "administrator the time of this upload if it happens again."
            ) from None

    def _apply_upload(
        self, changes: list[tuple[str, str, Changes]], user: str, expected_version: int | None
    ) -> UploadSummary:
        ordered = sorted(changes, key=lambda item: 0 if item[2].kind == "patients" else 1)
        ids: list[int] = []
        now = utc_now()
        # the big new-row frames go through a scratch database, copied in C (`staging`)
        new_rows = {f"new{i}": change.new for i, (_f, _s, change) in enumerate(ordered)}
        with (
            staging.staged(self.engine, new_rows) as staged,
            write_transaction(self.engine, staged) as conn,
        ):
            if expected_version is not None:
                current = conn.execute(
                    sa.select(t.meta.c.value).where(t.meta.c.key == "data_version")
                ).scalar()
                if int(current or 0) != expected_version:
                    raise SnapshotChangedError
            for i, (file_name, sha256, change) in enumerate(ordered):
                table = t.patients if change.kind == "patients" else t.visits
                upload_id = int(
                    conn.execute(
                        t.uploads.insert()
                        .values(
                            file_name=file_name,
                            sha256=sha256,
                            kind=change.kind,
                            user_name=user,
                            uploaded_at=now,
                            rows=change.rows,
                            n_new=change.new.height,
                            n_changed=change.changed.height,
                            n_unchanged=change.unchanged,
                        )
                        .returning(t.uploads.c.upload_id)
                    ).scalar_one()
                )
                ids.append(upload_id)
                name = f"new{i}"
                self._insert(conn, table, change.new, name if staged and staged.has(name) else None)
                self._update(conn, table, change)
                if change.cells.height:
                    history_rows = change.cells.select(
                        pl.lit(upload_id).alias("upload_id"),
                        pl.lit(change.kind).alias("table_name"),
                        "patient_id",
                        "visit_date",
                        pl.col("column").alias("column_name"),
                        "old_value",
                        "new_value",
                        pl.lit(now).alias("changed_at"),
                    )
                    self._insert(conn, t.history, history_rows)
                self.audit(
                    conn,
                    user,
                    "upload",
                    {
                        "upload_id": upload_id,
                        "file": file_name,
                        "kind": change.kind,
                        "new": change.new.height,
                        "changed": change.changed.height,
                        "unchanged": change.unchanged,
                    },
                )
            clinical = None
            if any(c[2].new.height or c[2].changed.height for c in ordered):
                self.bump_version(conn)
                clinical = clinical_version.record_commit(conn, _touched_patients(ordered))
        return UploadSummary(
            tuple(ids), count_changes([change for _n, _s, change in ordered]), clinical
        )

    @staticmethod
    def _insert(
        conn: sa.Connection, table: sa.Table, frame: pl.DataFrame, staged: str | None = None
    ) -> None:
        """Bulk insert at driver speed, inside the caller's transaction. `staged`: the frame's
        name in the attached scratch database (`staging.staged`), copied by one statement."""
        if frame.is_empty():
            return
        columns = frame.columns
        if staged is not None:
            conn.exec_driver_sql(staging.copy_statement(table.name, staged, columns))
            return
        if conn.dialect.name == "postgresql":
            Store._copy_csv(conn, table.name, frame)
            return
        frame = staging.sqlite_values(frame)
        for start in range(0, frame.height, _INSERT_CHUNK):
            # the rows as tuples zipped from column lists: a fifth cheaper than DataFrame.rows()
            chunk = frame.slice(start, _INSERT_CHUNK).get_columns()
            Store._write_chunk(
                conn, table.name, columns, list(zip(*(c.to_list() for c in chunk), strict=True))
            )

    @staticmethod
    def _copy_csv(conn: sa.Connection, table_name: str, frame: pl.DataFrame) -> None:
        """PostgreSQL: the frame as CSV text through COPY, written by polars in C (a Python
        `write_row` per row took 1.3 s of a 50 000-patient first ingest). Text is always
        quoted, so an empty text stays empty and only an unquoted empty field is NULL; floats
        are written in their shortest exact form."""
        raw: Any = conn.connection.driver_connection
        names = ", ".join(f'"{c}"' for c in frame.columns)
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY {table_name} ({names}) FROM STDIN (FORMAT csv)") as copy,
        ):
            for start in range(0, frame.height, _COPY_ROWS):
                Store._copy_batch(copy, frame.slice(start, _COPY_ROWS))

    @staticmethod
    def _copy_batch(copy: Any, batch: pl.DataFrame) -> None:
        copy.write(batch.write_csv(include_header=False, quote_style="non_numeric"))

    @staticmethod
    def _write_chunk(
        conn: sa.Connection, table_name: str, columns: list[str], rows: list[tuple[Any, ...]]
    ) -> None:
        """SQLite: one chunk of rows bound by the driver (PostgreSQL copies: `_copy_csv`)."""
        names = ", ".join(columns)
        marks = ", ".join("?" for _ in columns)
        conn.exec_driver_sql(f"INSERT INTO {table_name} ({names}) VALUES ({marks})", rows)

    @staticmethod
    def _update(conn: sa.Connection, table: sa.Table, change: Changes) -> None:
        if not change.changed.height:
            return
        keys = [c.name for c in table.primary_key.columns]
        values = [c for c in change.changed.columns if c not in keys]
        statement = (
            table.update()
            .where(sa.and_(*[table.c[k] == sa.bindparam("key_" + k) for k in keys]))
            .values({c: sa.bindparam("v_" + c) for c in values})
        )
        frame = change.changed.select(
            [pl.col(k).alias("key_" + k) for k in keys]
            + [pl.col(c).alias("v_" + c) for c in values]
        )
        for start in range(0, frame.height, _INSERT_CHUNK):
            conn.execute(statement, frame.slice(start, _INSERT_CHUNK).to_dicts())

    def today(self) -> date:
        return date.today()
