"""Sign-in that holds (issue 16, item 2), on SQLite and PostgreSQL: parallel guessing is decided
one attempt at a time, a guesser cannot keep the real user out, refusals look alike, and
passwords are checked against the shipped common-password list and the user name."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from monitoring import accounts
from monitoring.errors import UsageError
from monitoring.store import Store, sign_in

PASSWORD = "correct horse battery"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
ATTACKER = "203.0.113.9"
USUAL_DESK = "198.51.100.7"


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2 at its lowest cost: these tests count verifications, they do not time them."""
    from argon2 import PasswordHasher

    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(accounts, "_hasher", cheap)
    monkeypatch.setattr(accounts, "_DUMMY_HASH", cheap.hash("dummy"))


def _count_verifications(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real: Callable[[str, str], bool] = accounts._verify

    def counting(password_hash: str, password: str) -> bool:
        calls.append(1)
        return real(password_hash, password)

    monkeypatch.setattr(accounts, "_verify", counting)
    return calls


def _try(store: Store, password: str, **kwargs: object) -> str:
    try:
        accounts.authenticate(store, "ana", password, **kwargs)  # type: ignore[arg-type]
    except accounts.SignInError as exc:
        return str(exc)
    return "signed in"


def test_fifty_parallel_guesses_then_the_right_password(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    accounts.add_user(store, "ana", "physician", PASSWORD)
    verified = _count_verifications(monkeypatch)
    start = threading.Barrier(50, timeout=60)
    answers: list[str] = []

    def guess(i: int) -> None:
        start.wait()
        answers.append(_try(store, f"guess number {i}", now=T0))

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(answers) == 50 and "signed in" not in answers
    # only the free attempts were verified; every other guess was refused unverified
    assert len(verified) == accounts.ADDRESS_FREE_FAILURES
    # the right password right after: refused too (the delay holds), nothing verified
    assert _try(store, PASSWORD, now=T0).startswith("Too many failed sign-ins")
    assert len(verified) == accounts.ADDRESS_FREE_FAILURES
    # the state the design says: three failures counted, the next attempt allowed 1 s later
    rows = {row.address: row for row in sign_in.state(store.engine, "ana")}
    assert rows[accounts.UNKNOWN_ADDRESS].failures == accounts.ADDRESS_FREE_FAILURES
    assert rows[accounts.UNKNOWN_ADDRESS].next_allowed_at == T0 + timedelta(seconds=1)
    assert rows[sign_in.ALL_ADDRESSES].failures == accounts.ADDRESS_FREE_FAILURES
    actions = store.audit_log(limit=1000)["action"].to_list()
    assert actions.count("sign_in_failed") == 3 and actions.count("sign_in_throttled") == 48
    # once the delay has passed the right password signs in, and the count starts afresh
    assert _try(store, PASSWORD, now=T0 + timedelta(seconds=1)) == "signed in"
    rows = {row.address: row for row in sign_in.state(store.engine, "ana")}
    assert rows[accounts.UNKNOWN_ADDRESS].failures == 0


def test_a_guesser_cannot_keep_the_real_user_out(store: Store) -> None:
    accounts.add_user(store, "ana", "physician", PASSWORD)
    assert _try(store, PASSWORD, address=USUAL_DESK, now=T0) == "signed in"
    moment = T0
    for i in range(40):  # a patient guesser: each guess as soon as it is allowed
        rows = {r.address: r for r in sign_in.state(store.engine, "ana")}
        allowed = rows.get(ATTACKER)
        if allowed is not None and allowed.next_allowed_at:
            moment = max(moment, allowed.next_allowed_at)
        assert _try(store, f"guess {i}", address=ATTACKER, now=moment).startswith("Unknown")
    rows = {r.address: r for r in sign_in.state(store.engine, "ana")}
    # from the guesser's address: at the cap, 15 minutes per guess
    assert rows[ATTACKER].next_allowed_at == moment + accounts.MAX_DELAY
    assert _try(store, PASSWORD, address=ATTACKER, now=moment).startswith("Too many")
    # the usual desk is not held back at all
    assert _try(store, PASSWORD, address=USUAL_DESK, now=moment) == "signed in"
    # a new address waits for the per-name delay, at most 15 minutes, then signs in
    refused = _try(store, PASSWORD, address="192.0.2.44", now=moment)
    assert refused.startswith("Too many failed sign-ins") and "min" in refused
    assert _try(store, PASSWORD, address="192.0.2.44", now=moment + accounts.MAX_DELAY) == (
        "signed in"
    )
    # failures are forgotten after a day without one: the guesser's count starts again at 1
    later = moment + accounts.FORGET_FAILURES + timedelta(hours=1)
    assert _try(store, "guess again", address=ATTACKER, now=later).startswith("Unknown")
    rows = {r.address: r for r in sign_in.state(store.engine, "ana")}
    assert rows[ATTACKER].failures == 1


def test_an_administrator_reset_clears_the_throttle(store: Store) -> None:
    accounts.add_user(store, "ana", "viewer", PASSWORD)
    for i in range(accounts.ADDRESS_FREE_FAILURES):
        _try(store, f"guess {i}", now=T0)
    assert _try(store, PASSWORD, now=T0).startswith("Too many")
    accounts.reset_password(store, "ana", "a brand new passphrase")
    assert _try(store, "a brand new passphrase", now=T0) == "signed in"


def test_unknown_wrong_and_disabled_get_the_same_answer_after_the_same_work(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    accounts.add_user(store, "ana", "viewer", PASSWORD)
    accounts.add_user(store, "bo", "viewer", PASSWORD)
    accounts.disable_user(store, "bo")
    verified = _count_verifications(monkeypatch)
    answers = []
    for name, password in (("nobody", PASSWORD), ("ana", "wrong one"), ("bo", PASSWORD)):
        before = len(verified)
        with pytest.raises(accounts.SignInError) as caught:
            accounts.authenticate(store, name, password, now=T0)
        answers.append(str(caught.value))
        assert len(verified) == before + 1, name  # one argon2 verification each
    assert answers == [accounts.WRONG_CREDENTIALS] * 3
    # throttling keys names whether or not they exist: an unknown name is throttled alike
    for name in ("nobody", "ana"):
        for i in range(accounts.ADDRESS_FREE_FAILURES):
            with pytest.raises(accounts.SignInError):
                accounts.authenticate(store, name, f"x{i}", now=T0 + timedelta(hours=1))
    refusals = set()
    for name in ("nobody", "ana"):
        with pytest.raises(accounts.SignInError) as caught:
            accounts.authenticate(store, name, "x", now=T0 + timedelta(hours=1))
        refusals.add(str(caught.value))
    assert len(refusals) == 1 and next(iter(refusals)).startswith("Too many")


@pytest.mark.parametrize(
    ("name", "role", "password", "words"),
    [
        ("ana", "viewer", "secret", "at least 8"),
        ("ana", "viewer", "password", "most common"),
        ("ana", "viewer", "iloveyou", "most common"),
        ("ana", "viewer", "Sunshine", "most common"),  # any case
        ("ana", "viewer", "1qaz2wsx3edc", "most common"),
        ("carlos", "viewer", "Carlos2026!", "user name"),
        ("carlos", "viewer", "CARLOS", "at least 8"),
        ("root", "admin", "a short one", "administrator's password must have at least 12"),
        ("root", "admin", "Root-2026-2026", "user name"),
    ],
)
def test_weak_passwords_are_refused(
    store: Store, name: str, role: str, password: str, words: str
) -> None:
    with pytest.raises(UsageError, match=words):
        accounts.add_user(store, name, role, password)


def test_the_shipped_list_is_thousands_of_passwords() -> None:
    common = accounts.common_passwords()
    assert len(common) >= 9000
    assert {"password", "123456", "qwerty", "letmein"} <= common


def test_a_good_admin_password_is_accepted_and_reset_checks_too(store: Store) -> None:
    accounts.add_user(store, "root", "admin", "plum kettle harbour")
    with pytest.raises(UsageError, match="most common"):
        accounts.reset_password(store, "root", "123QWEasdzxc")
