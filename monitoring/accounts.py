"""Local accounts: argon2-hashed passwords, roles, sign-in throttling and server-side sessions.

    add_user / reset_password / disable_user          managed by `ltfu user …` (cli/accounts.py)
    authenticate(name, password, address) ─▶ Account  or SignInError (one sentence for every refusal)
    create_session(name) ─▶ token                     only sha256(token) is stored in `sessions`
    resolve_session(token) ─▶ Account | None          idle expiry slides; absolute lifetime does not
    allowed(role, action) / require(account, action)  the one place roles are decided
    set_sites(name, SiteScope) / Account.sites        site-scoped accounts: a store read through
                                                      `store.scoped(account.sites)` sees only
                                                      those sites' patients (store/site_scope.py)

Sign-in throttling instead of a hard lockout (the design; `store/sign_in.py` keeps the counts):
- Every attempt is counted before its password is verified, in one serialised write transaction
  (`sign_in.reserve_attempt`), so guesses sent in parallel are decided one after another: once the
  count calls for a delay, the others are refused without a verification, and no later write can
  take a failure back except the right password (`record_success`).
- Per name and client address: `ADDRESS_FREE_FAILURES` (3) failures in a row cost nothing, then
  each one doubles the wait before the next attempt from that address: 1 s, 2 s, 4 s … capped at
  `MAX_DELAY` (15 min). A guesser from one address gets about 100 guesses a day at the cap.
- Per name over all addresses: `ACCOUNT_FREE_FAILURES` (20), then the same doubling to the same
  cap, so that many addresses together gain little. This delay does not apply to an address that
  signed in to the name within `KNOWN_ADDRESS` (30 days): a guesser cannot keep the real user out
  of their usual workstation at all, and from a new address for at most 15 minutes per try (or
  until an administrator resets the password, which clears every count).
- Failures are forgotten after `FORGET_FAILURES` (24 h) without another.
- The same sentence for an unknown name, a wrong password and a disabled account, after the same
  work (one throttle transaction, one argon2 verification against the account's hash or a dummy,
  one audit write); the throttle keys names whether or not they exist, so its answer tells
  nothing either. The audit log records the true reason and the client address.
- Passwords: at least `MIN_PASSWORD_LENGTH` (8) characters, `MIN_ADMIN_PASSWORD_LENGTH` (12) for
  administrators, not one of the 10 000 most common passwords (data/common_passwords.txt, any
  case) and not the user name (any case, or the name with digits around it).
- Sessions end after `SESSION_IDLE` (8 h) without use and `SESSION_LIFETIME` (12 h) after
  sign-in, whichever comes first; the idle expiry is pushed forward at most once every
  `SESSION_TOUCH` (5 min) so that reading a page is not a write each time.
- The audit log never gets a password or a token.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any, Literal

import polars as pl
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from monitoring.errors import NotFoundError, PermissionDeniedError, UsageError
from monitoring.errors import SignInError as SignInError  # re-exported: callers catch it here
from monitoring.roles import ROLES as ROLES  # re-exported: callers read them here
from monitoring.roles import Role as Role
from monitoring.store import Store, sign_in
from monitoring.store import users as rows
from monitoring.store.sign_in import ThrottlePolicy
from monitoring.store.site_scope import SiteScope

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

ADDRESS_FREE_FAILURES = 3
ACCOUNT_FREE_FAILURES = 20
MAX_DELAY = timedelta(minutes=15)
FORGET_FAILURES = timedelta(hours=24)
KNOWN_ADDRESS = timedelta(days=30)
SESSION_IDLE = timedelta(hours=8)
SESSION_LIFETIME = timedelta(hours=12)
SESSION_TOUCH = timedelta(minutes=5)
MIN_PASSWORD_LENGTH = 8
MIN_ADMIN_PASSWORD_LENGTH = 12
UNKNOWN_ADDRESS = "unknown"
_NAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")

# OWASP's Password Storage Cheat Sheet: argon2id with 19 MiB of memory, 2 passes, 1 lane. The
# library's default (RFC 9106's low-memory profile: 64 MiB, 3 passes, 4 lanes) cost 0.6-0.9 s of
# wall time per sign-in on a busy 2-core server, against 0.14-0.18 s here; not to go lower.
# Hashes made with other parameters are re-made with these at their next sign-in.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, type=Type.ID)
# what an unknown name's password is verified against, so that it costs the same work as a
# real one: a constant with the hasher's parameters (tests/test_cli_startup.py checks them), not
# a hash made at import, which every command that imports this module paid for
_DUMMY_HASH = (
    "$argon2id$v=19$m=19456,t=2,p=1$DrHXIpAel2kBKXw1xFz73w$"
    "xZT6doaQGHpG6tGL1ylIugi+kLLbnXkLtz4JF5xfrSI"
)


WRONG_CREDENTIALS = "Unknown user name or wrong password."


def _doubling(free: int) -> Callable[[int], timedelta]:
    def delay(failures: int) -> timedelta:
        if failures < free:
            return timedelta(0)
        return min(MAX_DELAY, timedelta(seconds=2 ** min(failures - free, 20)))

    return delay


THROTTLE = ThrottlePolicy(
    address_delay=_doubling(ADDRESS_FREE_FAILURES),
    account_delay=_doubling(ACCOUNT_FREE_FAILURES),
    forget=FORGET_FAILURES,
    known_for=KNOWN_ADDRESS,
)


def throttled_sentence(wait_seconds: int) -> str:
    wait = f"{wait_seconds} s" if wait_seconds < 120 else f"{math.ceil(wait_seconds / 60)} min"
    return (
        f"Too many failed sign-ins for this user name from this address: wait {wait} and try again."
    )


@dataclass(frozen=True)
class Account:
    user_name: str
    role: str
    disabled: bool
    failed_attempts: int
    locked_until: datetime | None
    created_at: str
    sites: SiteScope = SiteScope()  # what the account may see: every site unless limited


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


@functools.cache
def common_passwords() -> frozenset[str]:
    """The shipped list of common passwords, lower-cased."""
    text = (resources.files("monitoring") / "data" / "common_passwords.txt").read_text("utf-8")
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line.strip() and line[0] != "#"
    )


def _check_password(password: str, user_name: str, role: str) -> None:
    minimum = MIN_ADMIN_PASSWORD_LENGTH if role == "admin" else MIN_PASSWORD_LENGTH
    if len(password) < minimum:
        who = "an administrator's password" if role == "admin" else "the password"
        raise UsageError(f"{who} must have at least {minimum} characters")
    lowered = password.lower()
    if lowered in common_passwords():
        raise UsageError(
            "this password is one of the 10 000 most common passwords; choose another "
            "(a few unrelated words make a good one)"
        )
    name = user_name.lower()
    if name and (lowered == name or lowered.strip("0123456789!._-@ ") == name):
        raise UsageError("the password must not be the user name; choose another")


def _account(row: rows.UserRow) -> Account:
    return Account(
        user_name=row.user_name,
        role=row.role,
        disabled=row.disabled,
        failed_attempts=row.failed_attempts,
        locked_until=_parse(row.locked_until),
        created_at=row.created_at,
        sites=row.sites,
    )


def get_user(store: Store, user_name: str) -> Account | None:
    row = rows.read_user(store, user_name)
    return None if row is None else _account(row)


def site_scope(sites: str | None) -> SiteScope:
    """The scope of a `--sites A,B` value (None: every site); UsageError when it names none."""
    if sites is None:
        return SiteScope.every()
    names = {name.strip() for name in sites.split(",") if name.strip()}
    if not names:
        raise UsageError("--sites names no site; give one or more site names separated by commas")
    return SiteScope.of(names)


def _check_scope(role: str, scope: SiteScope) -> None:
    # an administrator manages every account and reads the audit log, which names patients of
    # every site: an administrator limited to sites would be a limit in name only
    if role == "admin" and not scope.is_every_site:
        raise UsageError(
            "an administrator sees every site (accounts and the audit log are not per site); "
            "give this person another role to limit them to sites"
        )
    if scope.sites is not None and not scope.sites:
        raise UsageError("an account is limited to at least one site")


def add_user(
    store: Store,
    user_name: str,
    role: str,
    password: str,
    *,
    by: str = "cli",
    sites: SiteScope | None = None,
) -> Account:
    """Create an account (limited to `sites` when given); UsageError when the name is taken or
    invalid."""
    if not _NAME.match(user_name):
        raise UsageError(
            f"user name {user_name!r} is not allowed: use 1–64 letters, digits, . _ @ -"
        )
    _check_role(role)
    scope = sites or SiteScope.every()
    _check_scope(role, scope)
    _check_password(password, user_name, role)
    row = rows.UserRow(
        user_name=user_name,
        role=role,
        password_hash=_hasher.hash(password),
        disabled=False,
        failed_attempts=0,
        locked_until=None,
        created_at=_iso(_now(None)),
        sites=scope,
    )
    detail = {"user": user_name, "role": role, "sites": scope.describe()}
    if not rows.insert_user(store, row, (by, "user_add", detail)):
        raise UsageError(f"user {user_name!r} already exists; use `ltfu user reset` instead")
    return _account(row)


def list_users(store: Store) -> pl.DataFrame:
    """Every account without its password hash."""
    return rows.list_users(store)


def _update_user(store: Store, user_name: str, by: str, action: str, **values: Any) -> None:
    audit = (by, action, {"user": user_name})
    ended = bool(values.get("disabled"))
    clear = action == "user_reset"
    if not rows.update_user(
        store, user_name, values, [audit], end_sessions=ended, clear_throttle=clear
    ):
        raise NotFoundError(f"no user {user_name!r}; see `ltfu user list`")


def set_sites(store: Store, user_name: str, sites: SiteScope, *, by: str = "cli") -> None:
    """Limit the account to `sites` (or to every site); audited. Takes effect on the account's
    next page load: the scope is read with the account on every request."""
    account = get_user(store, user_name)
    if account is None:
        raise NotFoundError(f"no user {user_name!r}; see `ltfu user list`")
    _check_scope(account.role, sites)
    audit = (by, "user_sites", {"user": user_name, "sites": sites.describe()})
    if not rows.update_sites(store, user_name, sites, audit):
        raise NotFoundError(f"no user {user_name!r}; see `ltfu user list`")


def account_scope(store: Store, user_name: str) -> SiteScope:
    """The sites an account name may touch: its limit when it is a site-limited account, every
    site otherwise (the command line's own names, `cli`, an unlimited account)."""
    account = get_user(store, user_name)
    return SiteScope.every() if account is None else account.sites


def disable_user(store: Store, user_name: str, *, by: str = "cli") -> None:
    """Refuse every later sign-in and end the user's sessions."""
    _update_user(store, user_name, by, "user_disable", disabled=True)


def enable_user(store: Store, user_name: str, *, by: str = "cli") -> None:
    _update_user(store, user_name, by, "user_enable", disabled=False)


def reset_password(store: Store, user_name: str, password: str, *, by: str = "cli") -> None:
    """Set a new password, clear the sign-in throttle and re-enable the account."""
    account = get_user(store, user_name)
    if account is None:
        raise NotFoundError(f"no user {user_name!r}; see `ltfu user list`")
    _check_password(password, user_name, account.role)
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
    store: Store,
    user_name: str,
    password: str,
    *,
    address: str | None = None,
    now: datetime | None = None,
) -> Account:
    """The account when the password is right; otherwise SignInError (audited either way).

    `address` is the client's address (the dashboard passes the browser's); see the module
    docstring for the throttle."""
    moment = _now(now)
    where = (address or UNKNOWN_ADDRESS)[:64]
    name = user_name[:64]
    attempt = sign_in.reserve_attempt(store.engine, name, where, moment, THROTTLE)
    if not attempt.allowed:
        store.record_audit(
            name or "?", "sign_in_throttled", {"address": where, "wait_s": attempt.wait_seconds}
        )
        raise SignInError(throttled_sentence(attempt.wait_seconds))
    row = rows.read_user(store, user_name)
    # the same work whatever the outcome: one verification against a real or a dummy hash
    verified = _verify(_DUMMY_HASH if row is None else row.password_hash, password)
    if row is None or row.disabled or not verified:
        reason = "unknown user" if row is None else "disabled" if row.disabled else "wrong"
        store.record_audit(
            name or "?",
            "sign_in_failed",
            {"reason": reason, "address": where, "attempt": attempt.failures},
        )
        raise SignInError(WRONG_CREDENTIALS)
    account = _account(row)
    sign_in.record_success(store.engine, name, where, moment)
    values: dict[str, Any] = {"failed_attempts": 0, "locked_until": None}
    if _hasher.check_needs_rehash(row.password_hash):
        values["password_hash"] = _hasher.hash(password)
    rows.update_user(
        store, user_name, values, [(user_name, "sign_in", {"role": account.role, "address": where})]
    )
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
    created = _parse(session.created_at)
    too_old = created is None or created + SESSION_LIFETIME <= moment
    if session.user_disabled or expires is None or expires <= moment or too_old:
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


def sites_from_claims(claims: Mapping[str, Any], claim: str | None, role: str) -> SiteScope | None:
    """The site scope of an OpenID Connect identity: every site when no `claim` is configured
    (or for an administrator), else the values of `claims[claim]` (a string or a list); None
    when the claim is configured but names no site (the identity is refused)."""
    if not claim or role == "admin":
        return SiteScope.every()
    raw = claims.get(claim)
    values = [raw] if isinstance(raw, str) else raw if isinstance(raw, list | tuple) else []
    sites = {str(v).strip() for v in values if str(v).strip()}
    return SiteScope.of(sites) if sites else None
