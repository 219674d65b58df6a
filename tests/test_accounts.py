"""Accounts: argon2 hashes, sessions with hashed tokens, roles, the `ltfu user` CLI."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from monitoring import accounts
from monitoring.cli import main
from monitoring.errors import NotFoundError, PermissionDeniedError, UsageError
from monitoring.store import Store

PASSWORD = "correct horse battery"
T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


def _hash_parameters(stored: str) -> dict[str, int]:
    """m, t, p of an encoded argon2 hash ($argon2id$v=19$m=19456,t=2,p=1$salt$hash)."""
    return {k: int(v) for k, v in (part.split("=") for part in stored.split("$")[3].split(","))}


def test_password_hash_meets_owasps_argon2id_minimum(store: Store) -> None:
    """Argon2id with at least OWASP's recommended 19 MiB, 2 passes (Password Storage Cheat
    Sheet); a hash made with other parameters (the library's default before) is re-made with
    these at the next sign-in."""
    from argon2 import PasswordHasher

    accounts.add_user(store, "ana", "physician", PASSWORD)
    with store.engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT password_hash FROM users").scalar()
    params = _hash_parameters(stored)
    assert stored.startswith("$argon2id$")
    assert params["m"] >= 19 * 1024 and params["t"] >= 2 and params["p"] >= 1
    old = PasswordHasher().hash(PASSWORD)  # 64 MiB, 3 passes, 4 lanes
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE users SET password_hash = :old"), {"old": old})
    accounts.authenticate(store, "ana", PASSWORD)
    with store.engine.connect() as conn:
        renewed = conn.exec_driver_sql("SELECT password_hash FROM users").scalar()
    assert renewed != old and _hash_parameters(renewed) == params
    accounts.authenticate(store, "ana", PASSWORD)  # the re-made hash verifies


def test_password_is_hashed_with_argon2_and_never_logged(store: Store) -> None:
    accounts.add_user(store, "ana", "physician", PASSWORD)
    with store.engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT password_hash FROM users").scalar()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    accounts.authenticate(store, "ana", PASSWORD)
    with pytest.raises(accounts.SignInError):
        accounts.authenticate(store, "ana", "wrong password")
    log = store.audit_log()
    assert {"user_add", "sign_in", "sign_in_failed"} <= set(log["action"].to_list())
    assert not any(PASSWORD in d or "wrong password" in d for d in log["detail"].to_list())


def test_add_refuses_duplicates_bad_roles_and_short_passwords(store: Store) -> None:
    accounts.add_user(store, "ana", "viewer", PASSWORD)
    with pytest.raises(UsageError, match="already exists"):
        accounts.add_user(store, "ana", "viewer", PASSWORD)
    with pytest.raises(UsageError, match="unknown role"):
        accounts.add_user(store, "bo", "superuser", PASSWORD)
    with pytest.raises(UsageError, match="at least"):
        accounts.add_user(store, "bo", "viewer", "short")
    with pytest.raises(UsageError, match="not allowed"):
        accounts.add_user(store, "bo b", "viewer", PASSWORD)


def test_unknown_user_and_wrong_password_say_the_same(store: Store) -> None:
    accounts.add_user(store, "ana", "viewer", PASSWORD)
    with pytest.raises(accounts.SignInError) as unknown:
        accounts.authenticate(store, "nobody", PASSWORD)
    with pytest.raises(accounts.SignInError) as wrong:
        accounts.authenticate(store, "ana", "not the password")
    assert str(unknown.value) == str(wrong.value)


def test_success_resets_the_failure_count(store: Store) -> None:
    accounts.add_user(store, "ana", "viewer", PASSWORD)
    for _ in range(accounts.ADDRESS_FREE_FAILURES - 1):
        with pytest.raises(accounts.SignInError):
            accounts.authenticate(store, "ana", "nope-nope", now=T0)
    accounts.authenticate(store, "ana", PASSWORD, now=T0)
    for _ in range(accounts.ADDRESS_FREE_FAILURES - 1):
        with pytest.raises(accounts.SignInError, match="wrong password"):
            accounts.authenticate(store, "ana", "nope-nope", now=T0)
    with pytest.raises(accounts.SignInError, match="wrong password"):
        accounts.authenticate(store, "ana", "nope-nope", now=T0)


def test_session_token_is_stored_hashed_and_expires_when_idle_or_old(store: Store) -> None:
    accounts.add_user(store, "ana", "physician", PASSWORD)
    token = accounts.create_session(store, "ana", now=T0)
    with store.engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT token_hash FROM sessions").scalar()
    assert stored == accounts.hash_token(token) and token not in stored
    account = accounts.resolve_session(store, token, now=T0 + timedelta(hours=7))
    assert account is not None and account.role == "physician"
    # use at 7 h slid the idle expiry to 15 h, but the absolute lifetime (12 h) ends it first
    assert accounts.resolve_session(store, token, now=T0 + timedelta(hours=11, minutes=59))
    assert accounts.resolve_session(store, token, now=T0 + timedelta(hours=12)) is None
    # idle: gone 8 h after the last use
    idle = accounts.create_session(store, "ana", now=T0)
    assert accounts.resolve_session(store, idle, now=T0 + timedelta(hours=2))
    assert accounts.resolve_session(store, idle, now=T0 + timedelta(hours=10, minutes=1)) is None
    assert accounts.resolve_session(store, "forged", now=T0) is None
    assert accounts.resolve_session(store, None) is None


def test_sign_out_and_disable_end_sessions(store: Store) -> None:
    accounts.add_user(store, "ana", "viewer", PASSWORD)
    token = accounts.create_session(store, "ana")
    accounts.end_session(store, token, user="ana")
    assert accounts.resolve_session(store, token) is None
    token = accounts.create_session(store, "ana")
    accounts.disable_user(store, "ana")
    assert accounts.resolve_session(store, token) is None
    with pytest.raises(accounts.SignInError) as disabled:
        accounts.authenticate(store, "ana", PASSWORD)
    assert str(disabled.value) == accounts.WRONG_CREDENTIALS  # no hint that the name exists
    accounts.reset_password(store, "ana", "another password")
    assert accounts.authenticate(store, "ana", "another password").user_name == "ana"
    with pytest.raises(NotFoundError):
        accounts.disable_user(store, "nobody")


@pytest.mark.parametrize(
    ("role", "ack", "upload", "admin"),
    [
        ("viewer", False, False, False),
        ("physician", True, False, False),
        ("data_manager", False, True, False),
        ("admin", True, True, True),
    ],
)
def test_roles(role: str, ack: bool, upload: bool, admin: bool) -> None:
    assert accounts.allowed(role, "view")
    assert accounts.allowed(role, "acknowledge") is ack
    assert accounts.allowed(role, "flag") is ack
    assert accounts.allowed(role, "upload") is upload
    assert accounts.allowed(role, "accounts") is admin
    assert not accounts.allowed(None, "view")
    account = accounts.Account(role, role, False, 0, None, "")
    if not upload:
        with pytest.raises(PermissionDeniedError, match="data_manager or admin"):
            accounts.require(account, "upload")


def test_cli_user_commands(tmp_path, monkeypatch, capsys) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["--db", db, "user", "add", "ana", "--role", "data_manager"]) == 0
    assert main(["--db", db, "user", "list"]) == 0
    out = capsys.readouterr().out
    assert "ana,data_manager,false" in out and PASSWORD not in out and "argon2" not in out
    # the columns of the old lockout (always 0 / empty since sign-in throttling) are not listed
    header = next(line for line in out.splitlines() if line.startswith("user_name"))
    assert header == "user_name,role,disabled,created_at,sites"
    monkeypatch.setattr("sys.stdin", io.StringIO("a brand new password\n"))
    assert main(["--db", db, "user", "reset", "ana"]) == 0
    assert main(["--db", db, "user", "disable", "ana"]) == 0
    assert main(["--db", db, "user", "disable", "nobody"]) == 2
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["--db", db, "user", "add", "bo", "--role", "viewer"]) == 2
    assert "no password" in capsys.readouterr().err


def test_serve_command_is_headless_without_usage_stats() -> None:
    from dashboard.server import settings
    from monitoring.cli.serve import serve_command

    command = serve_command("127.0.0.1", 8765)
    assert command[1:3] == ["-m", "dashboard.server"]  # the launcher that sets the options
    options = settings(200 * 1024 * 1024)
    assert options["server.headless"] is True and options["browser.gatherUsageStats"] is False


def test_role_from_oidc_claims_first_mapping_wins() -> None:
    mapping = {"ltfu-admins": "admin", "ltfu-physicians": "physician", "x": "superuser"}
    claim = "groups"
    assert (
        accounts.role_from_claims({"groups": ["staff", "ltfu-physicians"]}, claim, mapping)
        == "physician"
    )
    assert (
        accounts.role_from_claims({"groups": ["ltfu-physicians", "ltfu-admins"]}, claim, mapping)
        == "admin"
    )
    assert accounts.role_from_claims({"groups": "ltfu-admins"}, claim, mapping) == "admin"
    assert accounts.role_from_claims({"groups": ["x"]}, claim, mapping) is None  # not a role
    assert accounts.role_from_claims({}, claim, mapping) is None
