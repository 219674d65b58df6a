"""SQL of institution (OpenID Connect) accounts: a `users` row the provider keeps up to date.

An institution account has no password: its `password_hash` is `INSTITUTION_HASH`, which is not
an argon2 hash, so a password sign-in to it always fails. Its role is rewritten from the claims
and its sites (`account_sites`) at every institution sign-in, and an administrator can still disable it (`ltfu user disable`),
which ends its sessions and refuses its next sign-in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from monitoring.store import tables as t
from monitoring.store.engine import write_transaction
from monitoring.store.site_scope import SiteScope
from monitoring.store.store import Store
from monitoring.store.users import _write_sites as write_sites

INSTITUTION_HASH = "institution-sign-in"


@dataclass(frozen=True)
class Provisioned:
    """What `provision` found: `local` when a password account holds the name (nothing changed),
    `disabled` when the institution account is disabled (nothing changed)."""

    local: bool = False
    disabled: bool = False

    @property
    def ok(self) -> bool:
        return not (self.local or self.disabled)


def provision(
    store: Store,
    user_name: str,
    role: str,
    sites: SiteScope,
    created_at: str,
    session: tuple[str, str, str],
    audit: tuple[str, str, dict[str, Any]],
) -> Provisioned:
    """Create or update the institution account (role and sites), store its session (token hash, created,
    expires) and write the audit entry, all in one transaction; nothing when refused."""
    with write_transaction(store.engine) as conn:
        row = conn.execute(
            sa.select(t.users.c.password_hash, t.users.c.disabled).where(
                t.users.c.user_name == user_name
            )
        ).first()
        if row is not None and row.password_hash != INSTITUTION_HASH:
            return Provisioned(local=True)
        if row is not None and bool(row.disabled):
            return Provisioned(disabled=True)
        if row is None:
            conn.execute(
                t.users.insert().values(
                    user_name=user_name,
                    role=role,
                    password_hash=INSTITUTION_HASH,
                    disabled=False,
                    failed_attempts=0,
                    locked_until=None,
                    created_at=created_at,
                )
            )
        else:
            conn.execute(t.users.update().where(t.users.c.user_name == user_name).values(role=role))
        write_sites(conn, user_name, sites)
        token_hash, started, expires = session
        conn.execute(
            t.sessions.insert().values(
                token_hash=token_hash, user_name=user_name, created_at=started, expires_at=expires
            )
        )
        Store.audit(conn, *audit)
    return Provisioned()
