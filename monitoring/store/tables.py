"""Table definitions and versioned migrations. The canonical columns come from `schemas`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from monitoring.schemas import COLUMNS, KEYS, ColumnSpec, Kind

metadata = sa.MetaData()


def _sa_type(spec: ColumnSpec) -> Any:
    types: dict[str, Any] = {
        "text": sa.Text(),
        "code": sa.Text(),
        "number": sa.Float(precision=53),
        "date": sa.Date(),
        "bool": sa.Boolean(),
    }
    return types[spec.type]


def _canonical_table(kind: Kind) -> sa.Table:
    keys = KEYS[kind]
    columns = [
        sa.Column(
            spec.name, _sa_type(spec), primary_key=spec.name in keys, nullable=not spec.required
        )
        for spec in COLUMNS[kind]
    ]
    return sa.Table(kind, metadata, *columns)


patients = _canonical_table("patients")
visits = _canonical_table("visits")

meta = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

schema_migrations = sa.Table(
    "schema_migrations",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("applied_at", sa.Text, nullable=False),
)

uploads = sa.Table(
    "uploads",
    metadata,
    sa.Column("upload_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("file_name", sa.Text, nullable=False),
    sa.Column("sha256", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("user_name", sa.Text, nullable=False),
    sa.Column("uploaded_at", sa.Text, nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("n_new", sa.Integer, nullable=False),
    sa.Column("n_changed", sa.Integer, nullable=False),
    sa.Column("n_unchanged", sa.Integer, nullable=False),
)

history = sa.Table(
    "history",
    metadata,
    sa.Column("history_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("upload_id", sa.Integer, sa.ForeignKey("uploads.upload_id"), nullable=False),
    sa.Column("table_name", sa.Text, nullable=False),
    sa.Column("patient_id", sa.Text, nullable=False),
    sa.Column("visit_date", sa.Date, nullable=True),
    sa.Column("column_name", sa.Text, nullable=False),
    sa.Column("old_value", sa.Text, nullable=True),
    sa.Column("new_value", sa.Text, nullable=True),
    sa.Column("changed_at", sa.Text, nullable=False),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("audit_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Text, nullable=False),
    sa.Column("user_name", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
)

acknowledgements = sa.Table(
    "acknowledgements",
    metadata,
    sa.Column("ack_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("alert_id", sa.Text, nullable=False, index=True),
    sa.Column("user_name", sa.Text, nullable=False),
    sa.Column("at", sa.Text, nullable=False),
    sa.Column("note", sa.Text, nullable=False),
)

flags = sa.Table(
    "flags",
    metadata,
    sa.Column("flag_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("patient_id", sa.Text, nullable=False, index=True),
    sa.Column("user_name", sa.Text, nullable=False),
    sa.Column("severity", sa.Text, nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("raised_on", sa.Date, nullable=False),
    sa.Column("at", sa.Text, nullable=False),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("user_name", sa.Text, primary_key=True),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
    sa.Column("failed_attempts", sa.Integer, nullable=False, default=0),
    sa.Column("locked_until", sa.Text, nullable=True),
    sa.Column("created_at", sa.Text, nullable=False),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("token_hash", sa.Text, primary_key=True),
    sa.Column("user_name", sa.Text, nullable=False),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("expires_at", sa.Text, nullable=False),
)

# Sign-in throttling (monitoring/accounts.py, store/sign_in.py): one row per name and client
# address, and one per name with address "*" for every address together. Names need not exist
# (no account probing).
sign_in_throttle = sa.Table(
    "sign_in_throttle",
    metadata,
    sa.Column("user_name", sa.Text, primary_key=True),
    sa.Column("address", sa.Text, primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("next_allowed_at", sa.Text, nullable=True),
    sa.Column("last_failure_at", sa.Text, nullable=True),
    sa.Column("last_success_at", sa.Text, nullable=True),
)

profiles = sa.Table(
    "profiles",
    metadata,
    sa.Column("profile_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("sha256", sa.Text, nullable=False),
    sa.Column("saved_by", sa.Text, nullable=False),
    sa.Column("saved_at", sa.Text, nullable=False),
    sa.UniqueConstraint("name", "version", name="profiles_name_version"),
)

# the first-seen ledger (CONTRACT §4): which upload each alert first appeared with
alert_first_seen = sa.Table(
    "alert_first_seen",
    metadata,
    sa.Column("alert_id", sa.Text, primary_key=True),
    sa.Column("patient_id", sa.Text, nullable=False),
    sa.Column("rule", sa.Text, nullable=False),
    sa.Column("triggered_on", sa.Date, nullable=False),
    sa.Column("upload_id", sa.Integer, sa.ForeignKey("uploads.upload_id"), nullable=False),
    sa.Column("first_seen_at", sa.Text, nullable=False),
)

# when each user last opened a page (the Alerts page's "new" mark)
page_visits = sa.Table(
    "page_visits",
    metadata,
    sa.Column("user_name", sa.Text, primary_key=True),
    sa.Column("page", sa.Text, primary_key=True),
    sa.Column("at", sa.Text, nullable=False),
)


# the sites an account is limited to (monitoring/accounts.py): no row = every site
account_sites = sa.Table(
    "account_sites",
    metadata,
    sa.Column("user_name", sa.Text, primary_key=True),
    sa.Column("site", sa.Text, primary_key=True),
)

# which clinical version last changed each patient's rows (store/clinical_version.py)
patient_revisions = sa.Table(
    "patient_revisions",
    metadata,
    sa.Column("patient_id", sa.Text, primary_key=True),
    sa.Column("revision", sa.Integer, nullable=False, index=True),
)

# the rule alerts of one clinical version, evaluation date and settings, as Parquet
# (store/alert_cache.py): shared by every process and instance on the same database
alert_evaluations = sa.Table(
    "alert_evaluations",
    metadata,
    sa.Column("entry_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("clinical_version", sa.Integer, nullable=False),
    sa.Column("clinical_token", sa.Text, nullable=False),
    sa.Column("as_of", sa.Text, nullable=False),
    sa.Column("settings", sa.Text, nullable=False),
    sa.Column("alerts", sa.LargeBinary, nullable=False),
    sa.Column("facts", sa.LargeBinary, nullable=False),
    sa.Column("written_at", sa.Text, nullable=False),
    # a delta entry: the whole entry `base_entry` with the rows of the patients in `replaced`
    # (Parquet) replaced by this entry's rows; both null for a whole entry (migration 11)
    sa.Column("base_entry", sa.Integer, nullable=True),
    sa.Column("replaced", sa.LargeBinary, nullable=True),
    sa.UniqueConstraint("clinical_token", "as_of", "settings", name="alert_evaluations_key"),
)


def _create(*tables: sa.Table) -> Callable[[sa.Connection], None]:
    def run(conn: sa.Connection) -> None:
        for table in tables:
            table.create(conn, checkfirst=True)

    return run


def _append_only_audit(conn: sa.Connection) -> None:
    """The audit log refuses updates and deletes, in the database itself."""
    if conn.dialect.name == "sqlite":
        for op in ("UPDATE", "DELETE"):
            conn.exec_driver_sql(
                f"CREATE TRIGGER IF NOT EXISTS audit_log_no_{op.lower()} BEFORE {op} ON audit_log "
                "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
            )
    elif conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger AS $$ "
            "BEGIN RAISE EXCEPTION 'the audit log is append-only'; END; $$ LANGUAGE plpgsql"
        )
        conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        conn.exec_driver_sql(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
        )


def _visit_index(conn: sa.Connection) -> None:
    conn.exec_driver_sql(
        "CREATE INDEX IF NOT EXISTS history_key ON history (table_name, patient_id)"
    )


def _clinical_version(conn: sa.Connection) -> None:
    """Revisions and kept evaluations; a store with data starts its clinical token at its
    data token (the same content, so its columnar snapshot stays valid). Releases since write
    no data token: this reads the one a store made before them holds."""
    _create(patient_revisions, alert_evaluations)(conn)
    conn.exec_driver_sql(
        "CREATE INDEX IF NOT EXISTS alert_first_seen_patient ON alert_first_seen (patient_id)"
    )
    token = conn.execute(sa.select(meta.c.value).where(meta.c.key == "data_token")).scalar()
    if token is not None:
        conn.execute(meta.insert().values(key="clinical_token", value=str(token)))
        conn.execute(meta.insert().values(key="clinical_version", value="0"))


def _delta_entries(conn: sa.Connection) -> None:
    """Kept evaluations may be deltas over a whole entry (store/alert_cache.py); a store made by
    migration 10 of this code already has the columns."""
    present = {c["name"] for c in sa.inspect(conn).get_columns("alert_evaluations")}
    blob = "BYTEA" if conn.dialect.name == "postgresql" else "BLOB"
    for name, sql_type in (("base_entry", "INTEGER"), ("replaced", blob)):
        if name not in present:
            conn.exec_driver_sql(f"ALTER TABLE alert_evaluations ADD COLUMN {name} {sql_type}")


# Append only: a released migration is never edited; a change is a new entry.
MIGRATIONS: list[tuple[int, str, Callable[[sa.Connection], None]]] = [
    (
        1,
        "canonical tables, uploads, history, audit log",
        _create(meta, patients, visits, uploads, history, audit_log),
    ),
    (2, "append-only audit log", _append_only_audit),
    (3, "history index", _visit_index),
    (4, "alert acknowledgements and physician flags", _create(acknowledgements, flags)),
    (5, "accounts and sessions", _create(users, sessions)),
    (6, "mapping profiles, versioned", _create(profiles)),
    (7, "first-seen alert ledger and page visits", _create(alert_first_seen, page_visits)),
    (8, "sign-in throttling per name and client address", _create(sign_in_throttle)),
    (9, "site-scoped accounts", _create(account_sites)),
    (10, "clinical data version, patient revisions, kept alert evaluations", _clinical_version),
    (11, "kept alert evaluations as deltas over a whole entry", _delta_entries),
]
