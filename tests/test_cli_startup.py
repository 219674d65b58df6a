"""A small command starts fast: the command line imports only what the command it runs needs
(issue 14). `ltfu --help` imports no data library at all; `ltfu status` no statistics, no
validation and no password hashing (`monitoring.accounts` hashes once at import)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HEAVY = ("polars", "sqlalchemy", "numpy", "pandas", "scipy", "pandera", "lifelines", "argon2")

_IMPORTED_BY = """
import contextlib, io, json, sys
from monitoring.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main(sys.argv[1:])
    except SystemExit:
        pass
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def _imported_by(*argv: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", _IMPORTED_BY, *argv], capture_output=True, text=True, check=True
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_help_imports_no_data_library():
    assert _imported_by("--help") & set(HEAVY) == set()
    assert _imported_by("durability", "--help") & set(HEAVY) == set()


def test_status_imports_only_the_store_and_polars(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    imported = _imported_by("--db", url, "status")
    assert {"polars", "sqlalchemy"} <= imported  # it did run
    assert imported & {"scipy", "pandera", "lifelines", "argon2", "pandas"} == set()


def test_durability_summary_imports_no_statistics_library_it_does_not_use(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    imported = _imported_by("--db", url, "durability", "--endpoint", "efs", "--summary")
    assert "numpy" in imported  # the estimators ran
    # scipy only for a test between groups; lifelines, pandera and argon2 never
    assert imported & {"scipy", "pandera", "lifelines", "argon2", "pandas"} == set()


def test_importing_accounts_hashes_no_password():
    """`ltfu ingest` imports `monitoring.accounts` (the uploader's site scope); an argon2 hash
    at import cost every such command its CPU (0.4 s with the library's default parameters). The sign-in's stand-in hash for an unknown
    name is a constant with the hasher's own parameters, so the work stays the same."""
    code = (
        "import argon2\n"
        "calls = []\n"
        "real = argon2.PasswordHasher.hash\n"
        "argon2.PasswordHasher.hash = lambda self, *a, **k: calls.append(1) or real(self, *a, **k)\n"
        "import monitoring.accounts as accounts\n"
        "params = argon2.extract_parameters(accounts._DUMMY_HASH)\n"
        "h = accounts._hasher\n"
        "same = (params.time_cost, params.memory_cost, params.parallelism, params.hash_len,"
        " params.salt_len, params.type) == (h.time_cost, h.memory_cost, h.parallelism,"
        " h.hash_len, h.salt_len, h.type)\n"
        "print(len(calls), same)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["0", "True"]
