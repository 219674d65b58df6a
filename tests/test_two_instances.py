"""Two dashboard instances on one PostgreSQL: shared sign-ins, each other's commits at once.

An instance is a process with its own engine and connection pool (`Store.open(url)`) and nothing
else of its own: sessions live in the `sessions` table, the dashboard's caches are keyed on the
store's data version, and reads are one REPEATABLE READ snapshot. So a person signed in through
one instance is signed in on the other, and an upload through either is read by both at once.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from monitoring import accounts
from monitoring.ingest import ingest_files
from monitoring.store import Store
from tests.conftest import VISITS_HEADER, write_csv

pytestmark = pytest.mark.postgres
TODAY = date(2026, 11, 22)


@pytest.fixture
def pg_url(postgres_admin_url: str) -> str:
    from tests.postgres_server import fresh_database

    return fresh_database(postgres_admin_url)


def test_sign_in_through_one_upload_through_the_other_read_through_the_first(
    pg_url: str, tmp_path: Path, two_patients: Path
):
    first, second = Store.open(pg_url), Store.open(pg_url)
    try:
        accounts.add_user(first, "dm", "data_manager", "a long enough password 1")
        signed_in = accounts.authenticate(first, "dm", "a long enough password 1")
        assert signed_in is not None
        token = accounts.create_session(first, "dm")
        account = accounts.resolve_session(second, token)
        assert account is not None and account.role == "data_manager"

        ingest_files(second, [two_patients], today=TODAY, user=account.user_name)
        version = first.data_version()
        assert first.patients()["patient_id"].to_list() == ["P-001", "P-002"]
        visits = write_csv(
            tmp_path / "v.csv", VISITS_HEADER, "P-001,2024-02-07,CR,1,BM,0,0.1,450,no"
        )
        ingest_files(second, [visits], today=TODAY, user=account.user_name)
        assert first.data_version() == version + 1
        seen = first.visits().filter(pl.col("patient_id") == "P-001")
        assert seen["igg_mg_dl"].to_list() == [450.0]

        accounts.end_session(second, token, user="dm")  # signing out anywhere signs out everywhere
        assert accounts.resolve_session(first, token) is None
    finally:
        first.close()
        second.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_serve_processes_on_one_database_both_answer(pg_url: str):
    ports = [_free_port(), _free_port()]
    servers = [
        subprocess.Popen(
            [sys.executable, "-m", "monitoring.cli", "--db", pg_url, "serve", "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    try:
        for port in ports:
            deadline = time.monotonic() + 150
            while True:
                try:
                    with urllib.request.urlopen(
                        f"http://127.0.0.1:{port}/_stcore/health", timeout=5
                    ) as r:
                        assert r.read() == b"ok"
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(1)
    finally:
        for server in servers:
            server.terminate()
            server.wait(30)
