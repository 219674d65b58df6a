"""SQL of dashboard accounts (`users`) and server-side sessions (`sessions`).

The rules (passwords, throttling, expiry, roles) live in `monitoring.accounts`; this module only
reads and writes rows, each write in one transaction with its audit entries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl
import sqlalchemy as sa

from monitoring.store import sign_in
from monitoring.store import tables as t
from monitoring.store.engine import read_connection, write_transaction
from monitoring.store.site_scope import SiteScope
from monitoring.store.store import Store

Audit = tuple[str, str, dict[str, Any]]  # user, action, detail

USERS_SCHEMA: dict[str, pl.DataType] = {
    "user_name": pl.String(),
    "role": pl.String(),
    "disabled": pl.Boolean(),
    "failed_attempts": pl.Int64(),
    "locked_until": pl.String(),
    "created_at": pl.String(),
    "sites": pl.String(),  # "all" or the account's sites, comma-separated
}


@dataclass(frozen=True)
class UserRow:
    user_name: str
    role: str
    password_hash: str
    disabled: bool
    failed_attempts: int
    locked_until: str | None  # ISO 8601 UTC
    created_at: str
    sites: SiteScope = SiteScope()  # every site unless limited


@dataclass(frozen=True)
class SessionRow:
    user_name: str
    created_at: str | None
    expires_at: str | None
    user_disabled: bool


def _audit(conn: sa.Connection, audits: Sequence[Audit]) -> None:
    for user, action, detail in audits:
        Store.audit(conn, user, action, detail)


def _scope(conn: sa.Connection, user_name: str) -> SiteScope:
    sites = conn.execute(
        sa.select(t.account_sites.c.site).where(t.account_sites.c.user_name == user_name)
    ).fetchall()
    return SiteScope.of(str(r[0]) for r in sites) if sites else SiteScope.every()


def _write_sites(conn: sa.Connection, user_name: str, scope: SiteScope) -> None:
    conn.execute(t.account_sites.delete().where(t.account_sites.c.user_name == user_name))
    if scope.sites is not None:
        if not scope.sites:
            raise ValueError("an account is limited to at least one site")
        conn.execute(
            t.account_sites.insert(),
            [{"user_name": user_name, "site": site} for site in sorted(scope.sites)],
        )


def read_user(store: Store, user_name: str) -> UserRow | None:
    with read_connection(store.engine) as conn:
        row = conn.execute(sa.select(t.users).where(t.users.c.user_name == user_name)).first()
        sites = _scope(conn, user_name) if row is not None else SiteScope.every()
    if row is None:
        return None
    return UserRow(
        user_name=row.user_name,
        role=row.role,
        password_hash=row.password_hash,
        disabled=bool(row.disabled),
        failed_attempts=int(row.failed_attempts or 0),
        locked_until=row.locked_until,
        created_at=row.created_at,
        sites=sites,
    )


def insert_user(store: Store, row: UserRow, audit: Audit) -> bool:
    """Add the account; False (and nothing written) when the name is taken."""
    with write_transaction(store.engine) as conn:
        exists = conn.execute(
            sa.select(t.users.c.user_name).where(t.users.c.user_name == row.user_name)
        ).first()
        if exists:
            return False
        conn.execute(
            t.users.insert().values(
                user_name=row.user_name,
                role=row.role,
                password_hash=row.password_hash,
                disabled=row.disabled,
                failed_attempts=row.failed_attempts,
                locked_until=row.locked_until,
                created_at=row.created_at,
            )
        )
        _write_sites(conn, row.user_name, row.sites)
        _audit(conn, [audit])
    return True


def update_sites(store: Store, user_name: str, scope: SiteScope, audit: Audit) -> bool:
    """Limit the account to `scope` (or lift the limit); False when there is no such user."""
    with write_transaction(store.engine) as conn:
        exists = conn.execute(
            sa.select(t.users.c.user_name).where(t.users.c.user_name == user_name)
        ).first()
        if not exists:
            return False
        _write_sites(conn, user_name, scope)
        _audit(conn, [audit])
    return True


def list_users(store: Store) -> pl.DataFrame:
    """Every account without its password hash, by name."""
    columns = [c for c in t.users.c if c.name != "password_hash"]
    with read_connection(store.engine) as conn:
        rows = conn.execute(sa.select(*columns).order_by(t.users.c.user_name)).fetchall()
        limits: dict[str, list[str]] = {}
        for name, site in conn.execute(
            sa.select(t.account_sites.c.user_name, t.account_sites.c.site).order_by(
                t.account_sites.c.user_name, t.account_sites.c.site
            )
        ):
            limits.setdefault(str(name), []).append(str(site))
    return pl.DataFrame(
        [(*tuple(r), ", ".join(limits.get(r.user_name, [])) or "all") for r in rows],
        schema=USERS_SCHEMA,
        orient="row",
    )


def update_user(
    store: Store,
    user_name: str,
    values: dict[str, Any],
    audits: Sequence[Audit],
    *,
    end_sessions: bool = False,
    clear_throttle: bool = False,
) -> bool:
    """Set columns of one account (and end its sessions, and forget its sign-in throttle counts);
    False when there is no such user."""
    with write_transaction(store.engine) as conn:
        result = conn.execute(
            t.users.update().where(t.users.c.user_name == user_name).values(**values)
        )
        if result.rowcount == 0:
            return False
        if end_sessions:
            conn.execute(t.sessions.delete().where(t.sessions.c.user_name == user_name))
        if clear_throttle:
            sign_in.clear(conn, user_name)
        _audit(conn, audits)
    return True


def insert_session(
    store: Store, token_hash: str, user_name: str, created_at: str, expires_at: str
) -> None:
    """Store a new session and tidy the sessions that expired before `created_at`."""
    with write_transaction(store.engine) as conn:
        conn.execute(t.sessions.delete().where(t.sessions.c.expires_at < created_at))
        conn.execute(
            t.sessions.insert().values(
                token_hash=token_hash,
                user_name=user_name,
                created_at=created_at,
                expires_at=expires_at,
            )
        )


def read_session(store: Store, token_hash: str) -> SessionRow | None:
    with read_connection(store.engine) as conn:
        row = conn.execute(
            sa.select(t.sessions, t.users.c.disabled)
            .join(t.users, t.users.c.user_name == t.sessions.c.user_name)
            .where(t.sessions.c.token_hash == token_hash)
        ).first()
    if row is None:
        return None
    return SessionRow(row.user_name, row.created_at, row.expires_at, bool(row.disabled))


def extend_session(store: Store, token_hash: str, expires_at: str) -> None:
    with write_transaction(store.engine) as conn:
        conn.execute(
            t.sessions.update()
            .where(t.sessions.c.token_hash == token_hash)
            .values(expires_at=expires_at)
        )


def delete_session(store: Store, token_hash: str, audits: Sequence[Audit] = ()) -> None:
    with write_transaction(store.engine) as conn:
        conn.execute(t.sessions.delete().where(t.sessions.c.token_hash == token_hash))
        _audit(conn, audits)
