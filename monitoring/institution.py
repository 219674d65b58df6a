"""Institution sign-in (OpenID Connect): from an id_token's claims to an ltfu session.

The dashboard lets Streamlit (`st.login`, Authlib) talk to the provider: discovery, the
redirect, the code exchange, the id_token's signature, issuer, audience and nonce. What comes
back is the token's claims; this module decides what they are worth here:

    settings_from(config) ─▶ InstitutionSettings | None     None: institution sign-in is off
    read_secrets(settings) ─▶ InstitutionSecrets            environment, or a 0600 file
    identity_from_claims(claims, settings, now) ─▶ Identity  or SignInError (one sentence)
    sign_in(store, identity) ─▶ session token                audited; refused ones too
    sign_out(store, token, identity)                         audited

Rules:
- The user name is the claim `institution_user_claim` (email by default); a local password
  account of the same name is never taken over (refused).
- The role is the first value of `institution_roles` (in the file's order) that the person's
  `institution_role_claim` holds; none: refused with one sentence, audited, no session.
- Sites: with `institution_sites_claim` set, the claim must list the person's sites ("*" for
  every site); absent or empty: refused (a missing claim never widens access). They become the
  account's site scope (`SiteScope`, as `ltfu user add --sites`), rewritten at each sign-in;
  an administrator sees every site.
- An id_token turns into at most one session: its identity key (issuer, subject, issue time,
  nonce) is written into the sign-in's audit entry, and a key already in the log is not
  accepted again (the browser keeps Streamlit's identity cookie for 30 days; a copied cookie
  must not sign in again after sign-out). An id_token issued longer ago than the session's
  absolute lifetime is not accepted either.
- The session is an ordinary ltfu session (`monitoring.accounts`): the same idle and absolute
  lifetimes, ended server-side at sign-out, ended when an administrator disables the account.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitoring import accounts
from monitoring.config import Config
from monitoring.errors import ConfigError, SignInError
from monitoring.store import Store
from monitoring.store import institution_users as rows
from monitoring.store import users as user_rows
from monitoring.store.site_scope import SiteScope

CLIENT_SECRET_ENV = "LTFU_OIDC_CLIENT_SECRET"
COOKIE_SECRET_ENV = "LTFU_OIDC_COOKIE_SECRET"
ALL_SITES = "*"
VIA = "institution"

NO_ROLE = "Your institution account has no role in the LTFU monitor; ask an administrator."
NO_NAME = "Your institution did not send a user name for the LTFU monitor; ask an administrator."
NO_SITES = "Your institution account names no site in the LTFU monitor; ask an administrator."
LOCAL_NAME = (
    "Your institution user name belongs to a local LTFU account; sign in with its password."
)
DISABLED = "This institution account is disabled in the LTFU monitor; ask an administrator."


@dataclass(frozen=True)
class InstitutionSettings:
    name: str
    metadata_url: str
    client_id: str
    redirect_uri: str
    user_claim: str
    role_claim: str
    sites_claim: str
    roles: tuple[tuple[str, str], ...]
    secrets_file: str


@dataclass(frozen=True)
class InstitutionSecrets:
    client_secret: str
    cookie_secret: str


@dataclass(frozen=True)
class Identity:
    """A person the provider vouched for, as ltfu sees them."""

    user_name: str
    role: str
    sites: SiteScope
    subject: str
    key: str


def settings_from(config: Config) -> InstitutionSettings | None:
    """The institution sign-in settings, None when it is off; ConfigError when incomplete."""
    if not config.institution_name.strip():
        return None
    settings = InstitutionSettings(
        name=config.institution_name.strip(),
        metadata_url=config.institution_metadata_url.strip(),
        client_id=config.institution_client_id.strip(),
        redirect_uri=config.institution_redirect_uri.strip(),
        user_claim=config.institution_user_claim.strip(),
        role_claim=config.institution_role_claim.strip(),
        sites_claim=config.institution_sites_claim.strip(),
        roles=config.institution_roles,
        secrets_file=config.institution_secrets_file.strip(),
    )
    missing = [
        key
        for key, value in (
            ("institution_metadata_url", settings.metadata_url),
            ("institution_client_id", settings.client_id),
            ("institution_redirect_uri", settings.redirect_uri),
            ("institution_user_claim", settings.user_claim),
            ("institution_role_claim", settings.role_claim),
            ("institution_roles", settings.roles),
        )
        if not value
    ]
    if missing:
        raise ConfigError(
            f"institution sign-in is on (institution_name is set) but {', '.join(missing)} "
            "is not set in [thresholds]; see docs/configuration.md."
        )
    if not settings.redirect_uri.rstrip("/").endswith("/oauth2callback"):
        raise ConfigError(
            "institution_redirect_uri must be the dashboard's address followed by "
            f"/oauth2callback, not {settings.redirect_uri!r}."
        )
    return settings


def read_secrets(
    settings: InstitutionSettings, environ: Mapping[str, str] | None = None
) -> InstitutionSecrets:
    """The client secret and cookie secret: from the environment, else from the owner-only
    file `institution_secrets_file`; ConfigError with one sentence otherwise."""
    env = os.environ if environ is None else environ
    values = {
        "client_secret": env.get(CLIENT_SECRET_ENV, ""),
        "cookie_secret": env.get(COOKIE_SECRET_ENV, ""),
    }
    if not all(values.values()) and settings.secrets_file:
        values = {
            **_secrets_file(Path(settings.secrets_file)),
            **{k: v for k, v in values.items() if v},
        }
    missing = [k for k, v in values.items() if not v]
    if missing:
        raise ConfigError(
            f"institution sign-in needs {' and '.join(missing)}: set {CLIENT_SECRET_ENV} and "
            f"{COOKIE_SECRET_ENV}, or name an owner-only file in institution_secrets_file."
        )
    if len(values["cookie_secret"]) < 32:
        raise ConfigError("the institution sign-in cookie_secret must have at least 32 characters.")
    return InstitutionSecrets(values["client_secret"], values["cookie_secret"])


def _secrets_file(path: Path) -> dict[str, str]:
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot read the institution secrets file ({exc.strerror})."
        ) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{path}: the institution secrets file must be readable by its owner only "
            f"(chmod 600), not {stat.filemode(mode)}."
        )
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not a valid TOML file ({exc}).") from None
    return {k: str(raw.get(k) or "") for k in ("client_secret", "cookie_secret")}


def _values(raw: object) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, list | tuple | set):
        return [str(v) for v in raw if v is not None and str(v).strip()]
    text = str(raw).strip()
    return [text] if text else []


def identity_key(claims: Mapping[str, object]) -> str:
    parts = [str(claims.get(k, "")) for k in ("iss", "sub", "iat", "nonce")]
    return hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()


def issued_at(claims: Mapping[str, object]) -> datetime | None:
    value = claims.get("iat")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    return None


def is_current(claims: Mapping[str, object], now: datetime | None = None) -> bool:
    """Issued within the session's absolute lifetime (and not in the future beyond a minute)."""
    issued = issued_at(claims)
    moment = now or datetime.now(UTC)
    return issued is not None and moment - accounts.SESSION_LIFETIME < issued < moment + timedelta(
        minutes=1
    )


def identity_from_claims(claims: Mapping[str, object], settings: InstitutionSettings) -> Identity:
    """The ltfu identity of an id_token's claims, or SignInError with one sentence (its
    `reason` attribute says which rule refused, for the audit log)."""
    names = _values(claims.get(settings.user_claim))
    name = names[0][:64] if names else ""
    if not name:
        raise _refusal(NO_NAME, "no user name claim")
    held = set(_values(claims.get(settings.role_claim)))
    role = accounts.role_from_claims(
        {settings.role_claim: sorted(held)}, settings.role_claim, dict(settings.roles)
    )
    if role is None:
        raise _refusal(NO_ROLE, "unknown role")
    # the same scope as a local account's `--sites`; an administrator sees every site
    listed = _values(claims.get(settings.sites_claim)) if settings.sites_claim else []
    sites = (
        SiteScope.every()
        if ALL_SITES in listed
        else accounts.sites_from_claims(
            {"sites": listed}, "sites" if settings.sites_claim else None, role
        )
    )
    if sites is None:
        raise _refusal(NO_SITES, "no sites claim")
    return Identity(name, role, sites, str(claims.get("sub", "")), identity_key(claims))


class InstitutionRefusal(SignInError):
    def __init__(self, sentence: str, reason: str) -> None:
        super().__init__(sentence)
        self.reason = reason


def _refusal(sentence: str, reason: str) -> InstitutionRefusal:
    return InstitutionRefusal(sentence, reason)


def already_used(store: Store, user_name: str, key: str, claims: Mapping[str, object]) -> bool:
    """Whether this id_token already signed in (or was refused): its key is in the audit log."""
    issued = issued_at(claims)
    since = (issued - timedelta(minutes=5)).isoformat(timespec="seconds") if issued else None
    entries = store.audit_entries(user=user_name, since=since)
    return any(key in detail for detail in entries["detail"].to_list())


def refuse(
    store: Store, claims: Mapping[str, object], settings: InstitutionSettings, error: SignInError
) -> None:
    """Audit a refused institution sign-in (once per id_token)."""
    names = _values(claims.get(settings.user_claim))
    who = names[0][:64] if names else "?"
    key = identity_key(claims)
    if already_used(store, who, key, claims):
        return
    store.record_audit(
        who,
        "sign_in_refused",
        {
            "via": VIA,
            "reason": getattr(error, "reason", "refused"),
            "role_claim": _values(claims.get(settings.role_claim))[:20],
            "subject": str(claims.get("sub", ""))[:200],
            "identity": key,
        },
    )


def sign_in(store: Store, identity: Identity, *, now: datetime | None = None) -> str:
    """An ltfu session for the identity (the account created or its role updated), audited;
    SignInError when a local account has the name or the account is disabled (audited)."""
    moment = now or datetime.now(UTC)
    token = secrets.token_urlsafe(32)
    started = moment.isoformat(timespec="seconds")
    expires = (moment + accounts.SESSION_IDLE).isoformat(timespec="seconds")
    detail = {
        "via": VIA,
        "role": identity.role,
        "sites": identity.sites.describe(),
        "subject": identity.subject[:200],
        "identity": identity.key,
    }
    outcome = rows.provision(
        store,
        identity.user_name,
        identity.role,
        identity.sites,
        started,
        (accounts.hash_token(token), started, expires),
        (identity.user_name, "sign_in", detail),
    )
    if not outcome.ok:
        reason = "local account" if outcome.local else "disabled"
        store.record_audit(
            identity.user_name,
            "sign_in_refused",
            {"via": VIA, "reason": reason, "identity": identity.key},
        )
        raise _refusal(LOCAL_NAME if outcome.local else DISABLED, reason)
    return token


def session_from_claims(
    store: Store,
    claims: Mapping[str, object],
    settings: InstitutionSettings,
    *,
    now: datetime | None = None,
) -> tuple[Identity, str] | None:
    """The identity and a new session token for a fresh id_token; None when the token is stale
    or already used (show the sign-in page); SignInError (audited once) when refused."""
    if not is_current(claims, now):
        return None
    try:
        identity = identity_from_claims(claims, settings)
    except InstitutionRefusal as error:
        refuse(store, claims, settings, error)
        raise
    if already_used(store, identity.user_name, identity.key, claims):
        return None
    return identity, sign_in(store, identity, now=now)


def sign_out(store: Store, token: str | None, user_name: str) -> None:
    """End the institution session server-side; audited."""
    if not token:
        return
    user_rows.delete_session(
        store, accounts.hash_token(token), [(user_name, "sign_out", {"via": VIA})]
    )
