"""Saved mapping profiles: every save is a new version (never overwritten) and an audit entry.

The text is stored as the person wrote it; the caller checks it with `load_profile` first.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from monitoring.errors import NotFoundError
from monitoring.store import tables as t
from monitoring.store.engine import read_connection, write_transaction
from monitoring.store.store import Store, utc_now


@dataclass(frozen=True)
class StoredProfile:
    name: str
    version: int
    text: str
    sha256: str
    saved_by: str
    saved_at: str


def _row(row: Any) -> StoredProfile:
    name, version, text, sha256, saved_by, saved_at = row
    return StoredProfile(
        str(name), int(version), str(text), str(sha256), str(saved_by), str(saved_at)
    )


_COLUMNS = (
    t.profiles.c.name,
    t.profiles.c.version,
    t.profiles.c.text,
    t.profiles.c.sha256,
    t.profiles.c.saved_by,
    t.profiles.c.saved_at,
)


def save_profile(store: Store, name: str, text: str, *, user: str) -> StoredProfile:
    """Store `text` as the next version of profile `name` (unchanged text: no new version)."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    with write_transaction(store.engine) as conn:
        latest = conn.execute(
            sa.select(*_COLUMNS)
            .where(t.profiles.c.name == name)
            .order_by(t.profiles.c.version.desc())
            .limit(1)
        ).first()
        if latest is not None and latest.sha256 == digest:
            return _row(latest)
        version = 1 if latest is None else int(latest.version) + 1
        saved = StoredProfile(name, version, text, digest, user, utc_now())
        conn.execute(
            t.profiles.insert().values(
                name=name,
                version=version,
                text=text,
                sha256=digest,
                saved_by=user,
                saved_at=saved.saved_at,
            )
        )
        store.audit(
            conn, user, "profile_saved", {"profile": name, "version": version, "sha256": digest}
        )
        store.bump_version(conn)
    return saved


def latest_profiles(store: Store) -> list[StoredProfile]:
    """The newest version of every saved profile, by name."""
    newest = (
        sa.select(t.profiles.c.name, sa.func.max(t.profiles.c.version).label("version"))
        .group_by(t.profiles.c.name)
        .subquery()
    )
    query = (
        sa.select(*_COLUMNS)
        .join(
            newest,
            sa.and_(t.profiles.c.name == newest.c.name, t.profiles.c.version == newest.c.version),
        )
        .order_by(t.profiles.c.name)
    )
    with read_connection(store.engine) as conn:
        return [_row(r) for r in conn.execute(query)]


def get_profile(store: Store, name: str, version: int | None = None) -> StoredProfile:
    query = sa.select(*_COLUMNS).where(t.profiles.c.name == name)
    if version is None:
        query = query.order_by(t.profiles.c.version.desc()).limit(1)
    else:
        query = query.where(t.profiles.c.version == version)
    with read_connection(store.engine) as conn:
        row = conn.execute(query).first()
    if row is None:
        raise NotFoundError(
            f"no saved profile named '{name}'" + (f" version {version}" if version else "")
        )
    return _row(row)


def profile_versions(store: Store, name: str) -> list[StoredProfile]:
    query = sa.select(*_COLUMNS).where(t.profiles.c.name == name).order_by(t.profiles.c.version)
    with read_connection(store.engine) as conn:
        return [_row(r) for r in conn.execute(query)]
