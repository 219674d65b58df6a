"""The sign-in throttle's rows (`tables.sign_in_throttle`); the policy is in `monitoring.accounts`.

    reserve_attempt(engine, name, address, now, policy) ─▶ Attempt   counts the attempt first
    record_success(engine, name, address, now)                       undoes it, marks the address
    clear(conn, name)                                                 a password reset
    state(engine, name) ─▶ list[ThrottleRow]                          for `ltfu user list` / tests

Atomic on both backends: the read, the decision and the write of one attempt happen in one
`write_transaction` (SQLite `BEGIN IMMEDIATE`, PostgreSQL's transaction-scoped advisory lock), so
concurrent attempts are decided one after another, each seeing the counts the others wrote.
The attempt is counted as a failure before the password is verified; a success takes it back.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from monitoring.store import tables as t
from monitoring.store.engine import read_connection, write_transaction

ALL_ADDRESSES = "*"
_table = t.sign_in_throttle


@dataclass(frozen=True)
class ThrottlePolicy:
    """delay(failures) after the failures-th failure in a row, per name+address and per name;
    failures older than `forget` no longer count; an address that signed in to the name within
    `known_for` is not held back by the per-name delay."""

    address_delay: Callable[[int], timedelta]
    account_delay: Callable[[int], timedelta]
    forget: timedelta
    known_for: timedelta


@dataclass(frozen=True)
class Attempt:
    allowed: bool
    wait_seconds: int  # when refused: how long until the next attempt is allowed
    failures: int  # the name+address failures counting this attempt


@dataclass(frozen=True)
class ThrottleRow:
    user_name: str
    address: str
    failures: int
    next_allowed_at: datetime | None
    last_success_at: datetime | None


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


def _parse(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _row(conn: sa.Connection, name: str, address: str) -> sa.Row[tuple[object, ...]] | None:
    return conn.execute(
        sa.select(_table).where(_table.c.user_name == name, _table.c.address == address)
    ).first()


def _live_failures(row: sa.Row[tuple[object, ...]] | None, now: datetime, forget: timedelta) -> int:
    if row is None:
        return 0
    last = _parse(row.last_failure_at)
    return 0 if last is None or now - last > forget else int(row.failures)


def _wait(row: sa.Row[tuple[object, ...]] | None, now: datetime) -> float:
    allowed_at = _parse(row.next_allowed_at) if row is not None else None
    return 0.0 if allowed_at is None else (allowed_at - now).total_seconds()


def _put(conn: sa.Connection, exists: bool, name: str, address: str, **values: object) -> None:
    if exists:
        conn.execute(
            _table.update()
            .where(_table.c.user_name == name, _table.c.address == address)
            .values(**values)
        )
    else:
        conn.execute(_table.insert().values(user_name=name, address=address, **values))


def reserve_attempt(
    engine: sa.Engine, name: str, address: str, now: datetime, policy: ThrottlePolicy
) -> Attempt:
    """Allow the attempt (and count it as a failure) or refuse it with the wait, atomically."""
    with write_transaction(engine) as conn:
        pair = _row(conn, name, address)
        every = _row(conn, name, ALL_ADDRESSES)
        last_success = _parse(pair.last_success_at) if pair is not None else None
        known = last_success is not None and now - last_success <= policy.known_for
        wait = max(_wait(pair, now), 0.0 if known else _wait(every, now))
        if wait > 0:
            return Attempt(False, max(1, math.ceil(wait)), _live_failures(pair, now, policy.forget))
        pair_failures = _live_failures(pair, now, policy.forget) + 1
        all_failures = _live_failures(every, now, policy.forget) + 1
        _put(
            conn,
            pair is not None,
            name,
            address,
            failures=pair_failures,
            next_allowed_at=_iso(now + policy.address_delay(pair_failures)),
            last_failure_at=_iso(now),
        )
        _put(
            conn,
            every is not None,
            name,
            ALL_ADDRESSES,
            failures=all_failures,
            next_allowed_at=_iso(now + policy.account_delay(all_failures)),
            last_failure_at=_iso(now),
        )
        return Attempt(True, 0, pair_failures)


def record_success(engine: sa.Engine, name: str, address: str, now: datetime) -> None:
    """The right password: this address starts afresh and becomes known; the per-name count
    loses the attempt `reserve_attempt` counted (other addresses' failures still count)."""
    with write_transaction(engine) as conn:
        _put(
            conn,
            _row(conn, name, address) is not None,
            name,
            address,
            failures=0,
            next_allowed_at=None,
            last_success_at=_iso(now),
        )
        every = _row(conn, name, ALL_ADDRESSES)
        if every is not None:
            conn.execute(
                _table.update()
                .where(_table.c.user_name == name, _table.c.address == ALL_ADDRESSES)
                .values(failures=max(0, int(every.failures) - 1))
            )


def clear(conn: sa.Connection, name: str) -> None:
    """Forget every count for the name (an administrator reset its password)."""
    conn.execute(_table.delete().where(_table.c.user_name == name))


def state(engine: sa.Engine, name: str) -> list[ThrottleRow]:
    with read_connection(engine) as conn:
        rows = conn.execute(
            sa.select(_table).where(_table.c.user_name == name).order_by(_table.c.address)
        ).fetchall()
    return [
        ThrottleRow(
            r.user_name,
            r.address,
            int(r.failures),
            _parse(r.next_allowed_at),
            _parse(r.last_success_at),
        )
        for r in rows
    ]
