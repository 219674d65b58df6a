"""Local accounts: argon2-hashed passwords, roles, lockout and server-side sessions.

    add_user / reset_password / disable_user          managed by `ltfu user …` (cli/accounts.py)
    authenticate(name, password) ─▶ Account           or SignInError (wrong, locked, disabled)
    create_session(name) ─▶ token                     only sha256(token) is stored in `sessions`
    resolve_session(token) ─▶ Account | None          idle expiry slides forward on use
    allowed(role, action) / require(account, action)  the one place roles are decided

Choices where CONTRACT.md is silent:
- Lockout: `MAX_FAILED_ATTEMPTS` (5) wrong passwords in a row lock the account for
  `LOCKOUT` (15 min); a successful sign-in or a password reset clears the count.
- Sessions expire after `SESSION_IDLE` (8 h) without use; the expiry is pushed forward at most
  once every `SESSION_TOUCH` (5 min) so that reading a page is not a write each time.
- An unknown user name costs the same argon2 verification as a known one (no user probing),
  and every refusal says the same sentence except for lockout and a disabled account.
- The audit log gets sign-ins, failures, lockouts, sign-outs and account changes, never a
  password or a token.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import polars as pl
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from monitoring.errors import NotFoundError, PermissionDeniedError, UsageError
from monitoring.errors import SignInError as SignInError  # re-exported: callers catch it here
from monitoring.roles import ROLES as ROLES  # re-exported: callers read them here
from monitoring.roles import Role as Role
from monitoring.store import Store
from monitoring.store import users as rows

Action = Literal["view", "acknowledge", "flag", "upload", "accounts"]

PERMISSIONS: dict[str, frozenset[str]] = {
    "view": frozenset(ROLES),
    "acknowledge": frozenset({"physician", "admin"}),
    "flag": frozenset({"physician", "admin"}),
    "upload": frozenset({"data_manager", "admin"}),
    "accounts": frozenset({"admin"}),
}
ACTION_WORDS: dict[str, str] = {
    "view": "view this page",
    "acknowledge": "acknowledge alerts",
    "flag": "flag patients",
    "upload": "upload data",
    "accounts": "manage accounts",
}

MAX_FAILED_ATTEMPTS = 5
LOCKOUT = timedelta(minutes=15)
SESSION_IDLE = timedelta(hours=8)
SESSION_TOUCH = timedelta(minutes=5)
MIN_PASSWORD_LENGTH = 8
_NAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a real password, used to even out timing")


WRONG_CREDENTIALS = "Unknown user name or wrong password."


@dataclass(frozen=True)
class Account:
    user_name: str
    role: str
    disabled: bool
    failed_attempts: int
    locked_until: datetime | None
    created_at: str


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _parse(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def allowed(role: str | None, action: str) -> bool:
    return role is not None and role in PERMISSIONS.get(action, frozenset())


def refusal(action: str) -> str:
    """The one sentence a refused page or action shows."""
    roles = [r for r in ROLES if r in PERMISSIONS.get(action, frozenset())]
    return (
        f"Your role may not {ACTION_WORDS.get(action, action)}; "
        f"this needs the role {' or '.join(roles)}."
    )


def require(account: Account | None, action: str) -> Account:
    """The account, or PermissionDeniedError with the refusal sentence."""
    if account is None or not allowed(account.role, action):
        raise PermissionDeniedError(refusal(action))
    return account


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise UsageError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UsageError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")


def _account(row: rows.UserRow) -> Account:
    return Account(
        user_name=row.user_name,
        role=row.role,
        disabled=row.disabled,
        failed_attempts=row.failed_attempts,
        locked_until=_parse(row.locked_until),
        created_at=row.created_at,
    )


def get_user(store: Store, user_name: str) -> Account | None:
    row = rows.read_user(store, user_name)
    return None if row is None else _account(row)


def add_user(store: Store, user_name: str, role: str, password: str, *, by: str = "cli") -> Account:
    """Create an account; UsageError when the name is taken or invalid."""
    if not _NAME.match(user_name):
        raise UsageError(
            f"user name {user_name!r} is not allowed: use 1–64 letters, digits, . _ @ -"
        )
    _check_role(role)
    _check_password(password)
    row = rows.UserRow(
        user_name=user_name,
        role=role,
        password_hash=_hasher.hash(password),
        disabled=False,
        failed_attempts=0,
        locked_until=None,
        created_at=_iso(_now(None)),
    )
    if not rows.insert_user(store, row, (by, "user_add", {"user": user_name, "role": role})):
        raise UsageError(f"user {user_name!r} already exists; use `ltfu user reset` instead")
    return _account(row)


def list_users(store: Store) -> pl.DataFrame:
    """Every account without its password hash."""
    return rows.list_users(store)


def _update_user(store: Store, user_name: str, by: str, action: str, **values: Any) -> None:
    audit = (by, action, {"user": user_name})
    ended = bool(values.get("disabled"))
    if not rows.update_user(store, user_name, values, [audit], end_sessions=ended):
        raise NotFoundError(f"no user {user_name!r}; see `ltfu user list`")


def disable_user(store: Store, user_name: str, *, by: str = "cli") -> None:
    """Refuse every later sign-in and end the user's sessions."""
    _update_user(store, user_name, by, "user_disable", disabled=True)


def enable_user(store: Store, user_name: str, *, by: str = "cli") -> None:
    _update_user(store, user_name, by, "user_enable", disabled=False)


def reset_password(store: Store, user_name: str, password: str, *, by: str = "cli") -> None:
    """Set a new password, clear the lockout and re-enable the account."""
    _check_password(password)
    _update_user(
        store,
        user_name,
        by,
        "user_reset",
        password_hash=_hasher.hash(password),
        failed_attempts=0,
        locked_until=None,
        disabled=False,
    )


def authenticate(
    store: Store, user_name: str, password: str, *, now: datetime | None = None
) -> Account:
    """The account when the password is right; otherwise SignInError (audited either way)."""
    moment = _now(now)
    row = rows.read_user(store, user_name)
    if row is None:
        _verify(_DUMMY_HASH, password)
        store.record_audit(user_name[:64] or "?", "sign_in_failed", {"reason": "unknown user"})
        raise SignInError(WRONG_CREDENTIALS)
    account = _account(row)
    if account.disabled:
        store.record_audit(user_name, "sign_in_refused", {"reason": "disabled"})
        raise SignInError("This account is disabled; ask an administrator.")
    if account.locked_until is not None and account.locked_until > moment:
        store.record_audit(user_name, "sign_in_refused", {"reason": "locked"})
        minutes = max(1, int((account.locked_until - moment).total_seconds() // 60) + 1)
        raise SignInError(
            f"Too many failed sign-ins: this account is locked for {minutes} more minute(s)."
        )
    if not _verify(row.password_hash, password):
        failed = account.failed_attempts + 1
        locked = failed >= MAX_FAILED_ATTEMPTS
        audits: list[rows.Audit] = [(user_name, "sign_in_failed", {"attempt": failed})]
        if locked:
            audits.append((user_name, "locked_out", {"minutes": LOCKOUT.seconds // 60}))
        rows.update_user(
            store,
            user_name,
            {
                "failed_attempts": 0 if locked else failed,
                "locked_until": _iso(moment + LOCKOUT) if locked else None,
            },
            audits,
        )
        if locked:
            raise SignInError(
                f"Too many failed sign-ins: this account is locked for "
                f"{LOCKOUT.seconds // 60} minutes."
            )
        raise SignInError(WRONG_CREDENTIALS)
    values: dict[str, Any] = {"failed_attempts": 0, "locked_until": None}
    if _hasher.check_needs_rehash(row.password_hash):
        values["password_hash"] = _hasher.hash(password)
    rows.update_user(store, user_name, values, [(user_name, "sign_in", {"role": account.role})])
    return get_user(store, user_name) or account


def _verify(password_hash: str, password: str) -> bool:
    try:
        return bool(_hasher.verify(password_hash, password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def create_session(store: Store, user_name: str, *, now: datetime | None = None) -> str:
    """A new random token for the user; only its sha256 is stored."""
    moment = _now(now)
    token = secrets.token_urlsafe(32)
    rows.insert_session(
        store, hash_token(token), user_name, _iso(moment), _iso(moment + SESSION_IDLE)
    )
    return token


def resolve_session(
    store: Store, token: str | None, *, now: datetime | None = None
) -> Account | None:
    """The signed-in account for a token, or None (unknown, expired, disabled user)."""
    if not token:
        return None
    moment = _now(now)
    digest = hash_token(token)
    session = rows.read_session(store, digest)
    if session is None:
        return None
    expires = _parse(session.expires_at)
    if session.user_disabled or expires is None or expires <= moment:
        end_session(store, token)
        return None
    if expires - moment < SESSION_IDLE - SESSION_TOUCH:
        rows.extend_session(store, digest, _iso(moment + SESSION_IDLE))
    return get_user(store, session.user_name)


def end_session(store: Store, token: str | None, *, user: str | None = None) -> None:
    """Forget the session (sign-out); audited when `user` is given."""
    if not token:
        return
    rows.delete_session(store, hash_token(token), [(user, "sign_out", {})] if user else [])


def role_from_claims(
    claims: Mapping[str, Any], claim: str, mapping: Mapping[str, str]
) -> str | None:
    """The LTFU role of an OpenID Connect identity: the first entry of `mapping` (in its order)
    whose key is among the values of `claims[claim]` (a string or a list). None: no role."""
    raw = claims.get(claim)
    values = {str(v) for v in raw} if isinstance(raw, list | tuple | set) else {str(raw)}
    for value, role in mapping.items():
        if value in values and role in ROLES:
            return role
    return None
