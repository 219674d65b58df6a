"""Shared fixtures: a fresh embedded store per test, and CSV writers for hand-made uploads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from monitoring.store import Store


@pytest.fixture(autouse=True)
def _client_source_restored() -> Iterator[None]:
    """Running the dashboard (AppTest) registers where audit entries find the client's address,
    process-wide; later tests of the command line must see `cli` again."""
    from monitoring.store import client

    before = client._client_source
    yield
    client.set_client_source(before)


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    from tests.postgres_server import available, postgres_server

    if not available():
        pytest.fail("PostgreSQL is not installed: `make test` installs it (scripts/system-deps.sh)")
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every store test runs on the embedded SQLite file and on a real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    from tests.postgres_server import fresh_database

    return fresh_database(request.getfixturevalue("postgres_admin_url"))


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = Store.open(store_url)
    yield s
    s.close()


def write_csv(
    path: Path, header: str, *rows: str, newline: str = "\n", encoding: str = "utf-8"
) -> Path:
    path.write_bytes((newline.join([header, *rows]) + newline).encode(encoding))
    return path


PATIENTS_HEADER = "patient_id,site,sex,age_at_infusion_years,product,infusion_date,hsct_date,death_date,death_cause"
VISITS_HEADER = "patient_id,visit_date,disease_status,bm_blasts_pct,mrd_sample,mrd_flow_fraction,bcell_pct_lymphocytes,igg_mg_dl,ivig_within_30d"


@pytest.fixture
def two_patients(tmp_path: Path) -> Path:
    return write_csv(
        tmp_path / "patients.csv",
        PATIENTS_HEADER,
        "P-001,A,F,7,tisagenlecleucel,2024-01-10,,,",
        "P-002,B,M,12.5,tisagenlecleucel,2024-02-10,,2024-09-01,relapse",
    )
