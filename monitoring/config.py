"""Site-configurable thresholds and windows (CONTRACT.md defaults).

One frozen dataclass, read once. A site overrides any field in a TOML file
(`ltfu.toml` in the working directory, or the path in `LTFU_CONFIG`):

    [thresholds]
    bcell_pct_recovery = 3.0

Every setting has a help text (`SETTING_HELP`) and is documented in docs/configuration.md. A
file that cannot be used (not TOML, an unknown key, a value of the wrong type) raises
`ConfigError` naming the file and the key; the command line exits 2 with that one sentence.
`use_config` / `config_override` change the settings for the current thread or task only (a
ContextVar: Streamlit serves every session on its own thread).
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from monitoring.errors import ConfigError
from monitoring.roles import ROLES

DAYS_PER_MONTH = 30.4375
LANDMARK_MONTHS: tuple[int, ...] = (6, 12, 24, 36, 60)
# the worklist's look-ahead for MRD windows that open soon (here, not in `worklist`, so that
# `ltfu --help` shows it without importing polars)
DEFAULT_WITHIN_DAYS = 14


@dataclass(frozen=True)
class Config:
    """Clinical thresholds. Defaults are CONTRACT.md §2 and §4; tests use the defaults."""

    mrd_flow_detected: float = 0.0001
    bcell_pct_recovery: float = 1.0
    bcell_per_ul_recovery: float = 50.0
    recovery_confirmations: int = 2
    car_loss_copies_per_ug: float = 50.0
    car_loss_confirmations: int = 2
    response_window_days: int = 90
    relapse_bm_blasts_pct: float = 5.0
    bcell_window_start_day: int = 28
    visit_min_days_before_infusion: int = 60
    # alert thresholds
    mrd_rising_factor: float = 10.0
    mrd_with_aplasia_lookback_days: int = 30
    early_bcell_recovery_last_day: int = 183
    bcell_recovery_last_day: int = 365
    car_loss_last_day: int = 365
    hypogammaglobulinemia_igg_mg_dl: float = 400.0
    mrd_early_windows: tuple[tuple[int, int], ...] = ((21, 35), (76, 104))
    mrd_assessment_windows: tuple[tuple[int, int], ...] = (
        (21, 35),
        (76, 104),
        (152, 213),
        (244, 305),
        (335, 395),
    )
    followup_overdue_days: int = 425
    # ingest: limits checked before a reader allocates anything (monitoring/ingest/limits.py)
    max_upload_bytes: int = 200 * 1024 * 1024
    max_rows: int = 5_000_000
    max_columns: int = 5_000
    max_cell_chars: int = 32_767  # Excel's own limit for one cell
    max_line_bytes: int = 1024 * 1024
    max_sheet_cells: int = 30_000_000  # rows × columns an XLSX sheet may claim
    max_unpacked_bytes: int = 512 * 1024 * 1024  # an XLSX's members, decompressed
    max_zip_ratio: int = 100  # decompressed ÷ compressed size of one XLSX member
    # the reader runs in a worker process with these limits (monitoring/ingest/isolation.py)
    reader_memory_bytes: int = 3 * 1024 * 1024 * 1024
    reader_timeout_seconds: int = 300
    # the centre's time zone (IANA name) for times shown to people; stored times are UTC
    centre_timezone: str = "UTC"
    # institution sign-in (OpenID Connect, monitoring/institution.py); off while the name is empty.
    # The client secret and cookie secret are never here: LTFU_OIDC_CLIENT_SECRET and
    # LTFU_OIDC_COOKIE_SECRET, or the owner-only file `institution_secrets_file`.
    institution_name: str = ""
    institution_metadata_url: str = ""
    institution_client_id: str = ""
    institution_redirect_uri: str = ""
    institution_user_claim: str = "email"
    institution_role_claim: str = "groups"
    institution_sites_claim: str = ""
    institution_roles: tuple[tuple[str, str], ...] = ()
    institution_secrets_file: str = ""
    # host names the dashboard is reached by (comma-separated), e.g. a TLS proxy's public name
    served_hosts: str = ""
    # how often the dashboard server looks for a new commit to precompute the first page (s)
    dashboard_warm_up_seconds: int = 2


SETTING_HELP: dict[str, str] = {
    "mrd_flow_detected": "flow MRD at or above this fraction is detected (0.0001 = 0.01 %)",
    "bcell_pct_recovery": "B cells at or above this percent of lymphocytes count as recovery",
    "bcell_per_ul_recovery": "B cells at or above this count per µL count as recovery",
    "recovery_confirmations": "consecutive B-cell results above threshold that confirm recovery",
    "car_loss_copies_per_ug": "CAR transgene below this many copies/µg DNA counts as loss",
    "car_loss_confirmations": "consecutive CAR results below threshold that confirm loss",
    "response_window_days": "days after infusion within which CR/CRi counts as response",
    "relapse_bm_blasts_pct": "marrow blasts at or above this percent after remission are relapse",
    "bcell_window_start_day": "first day after infusion on which B-cell recovery can count",
    "visit_min_days_before_infusion": "a visit more than this many days before infusion is "
    "rejected",
    "mrd_rising_factor": "an MRD rise by at least this factor raises `mrd_rising`",
    "mrd_with_aplasia_lookback_days": "a B-cell result at most this many days before a detected "
    "MRD shows aplasia for the MRD-with-aplasia alert",
    "early_bcell_recovery_last_day": "last day after infusion of an early B-cell recovery",
    "bcell_recovery_last_day": "last day after infusion of the B-cell recovery alert window",
    "car_loss_last_day": "last day after infusion on which CAR loss raises an alert",
    "hypogammaglobulinemia_igg_mg_dl": "IgG below this (mg/dL) raises `hypogammaglobulinemia`",
    "mrd_early_windows": "windows (first, last day) of the early marrow MRD assessments",
    "mrd_assessment_windows": "windows (first, last day) of every planned marrow MRD assessment",
    "followup_overdue_days": "days since last contact after which follow-up is overdue",
    "max_upload_bytes": "largest upload file accepted, in bytes",
    "max_rows": "most data rows one uploaded table may have",
    "max_columns": "most columns one uploaded table may have",
    "max_cell_chars": "most characters in one cell of an upload",
    "max_line_bytes": "longest line of a CSV upload, in bytes",
    "max_sheet_cells": "most cells (rows × columns) an XLSX sheet may claim in its dimension",
    "max_unpacked_bytes": "largest total size of an XLSX's members once decompressed, in bytes",
    "max_zip_ratio": "largest decompressed ÷ compressed size of one XLSX member",
    "reader_memory_bytes": "memory cap of the isolated worker process that parses an upload",
    "reader_timeout_seconds": "time cap of the isolated worker process that parses an upload",
    "centre_timezone": "the centre's time zone (IANA name, e.g. Europe/Berlin) for times shown "
    "to people; stored times stay UTC",
    "institution_name": 'the institution\'s name on the sign-in button ("Sign in with …"); '
    "empty turns institution sign-in (OpenID Connect) off",
    "institution_metadata_url": "the OpenID provider's discovery document "
    "(…/.well-known/openid-configuration)",
    "institution_client_id": "the client id the OpenID provider registered for this dashboard",
    "institution_redirect_uri": "the dashboard's own address followed by /oauth2callback, as "
    "registered at the provider (e.g. https://ltfu.example.org/oauth2callback)",
    "institution_user_claim": "the id_token claim whose value is the ltfu user name",
    "institution_role_claim": "the id_token claim whose value (or list of values) decides the role",
    "institution_sites_claim": 'the id_token claim listing the sites the person may see ("*": '
    "every site); empty: institution accounts are not limited to sites",
    "institution_roles": "role-claim value → ltfu role (viewer, physician, data_manager, admin), "
    "a TOML table; the first listed value the person has decides; no match: refused",
    "institution_secrets_file": "an owner-only (0600) TOML file with client_secret and "
    "cookie_secret, used when LTFU_OIDC_CLIENT_SECRET / LTFU_OIDC_COOKIE_SECRET are not set",
    "served_hosts": "host names (comma-separated) the dashboard is reached by besides IP "
    "addresses, localhost, this machine's name and the address it listens on, e.g. the public "
    "name behind a TLS proxy; a request naming any other host is refused (DNS rebinding)",
    "dashboard_warm_up_seconds": "how often (seconds) the dashboard server checks for a new "
    "commit and precomputes the first page after sign-in for it; 0 turns this off",
}
MAPPINGS = frozenset({"institution_roles"})  # settings written as a TOML table of text → role
SECTION = "thresholds"

_DEFAULT = Config()
_loaded: Config | None = None
_override: ContextVar[Config | None] = ContextVar("ltfu_config", default=None)


def _did_you_mean(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def _typed(path: Path, key: str, value: Any, default: Any) -> Any:
    """`value` as the type of the setting's default, or ConfigError naming key and file."""
    where = f"{path}: setting {key!r} in [{SECTION}]"
    if isinstance(default, bool) or isinstance(value, bool):
        if type(value) is not type(default):
            raise ConfigError(f"{where} must be {type(default).__name__}, not {value!r}.")
        return value
    if isinstance(default, int):
        if not isinstance(value, int):
            raise ConfigError(f"{where} must be a whole number, not {value!r}.")
        return value
    if isinstance(default, float):
        if not isinstance(value, int | float):
            raise ConfigError(f"{where} must be a number, not {value!r}.")
        return float(value)
    if key in MAPPINGS:
        return _role_table(where, value)
    if isinstance(default, tuple):  # windows: a list of [first, last] day pairs
        pairs = value if isinstance(value, list) else None
        if pairs is None or not all(
            isinstance(p, list) and len(p) == 2 and all(type(d) is int for d in p) for p in pairs
        ):
            raise ConfigError(
                f"{where} must be a list of [first, last] day pairs, e.g. [[21, 35], [76, 104]]; "
                f"not {value!r}."
            )
        return tuple(tuple(p) for p in pairs)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be text, not {value!r}.")
        return value
    raise ConfigError(f"{where} cannot be set in the file.")  # pragma: no cover


def _role_table(where: str, value: Any) -> tuple[tuple[str, str], ...]:
    """A TOML table of claim value → ltfu role, in the file's order."""
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ConfigError(
            f'{where} must be a table of claim value = role, e.g. {{ "ltfu-admins" = "admin" }}; '
            f"not {value!r}."
        )
    unknown = sorted({v for v in value.values() if v not in ROLES})
    if unknown:
        raise ConfigError(
            f"{where} maps to unknown role(s) {', '.join(map(repr, unknown))}; "
            f"the roles are {', '.join(ROLES)}."
        )
    return tuple((str(k), str(v)) for k, v in value.items())


def load_config(path: str | Path | None = None) -> Config:
    """Read a TOML override file; missing file means the contract defaults."""
    candidate = Path(path) if path else Path(os.environ.get("LTFU_CONFIG", "ltfu.toml"))
    if not candidate.is_file():
        return _DEFAULT
    try:
        raw = tomllib.loads(candidate.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{candidate}: not a valid TOML settings file ({exc}).") from None
    for table in raw:
        if table != SECTION:
            raise ConfigError(
                f"{candidate}: unknown section or key {table!r}; settings go under "
                f"[{SECTION}].{_did_you_mean(table, [SECTION])}"
            )
    values = raw.get(SECTION, {})
    if not isinstance(values, dict):
        raise ConfigError(f"{candidate}: [{SECTION}] must be a table of settings.")
    known = [f.name for f in fields(Config)]
    typed: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(
                f"{candidate}: unknown setting {key!r} in [{SECTION}].{_did_you_mean(key, known)} "
                "The settings are listed in docs/configuration.md."
            )
        typed[key] = _typed(candidate, key, value, getattr(_DEFAULT, key))
    return replace(_DEFAULT, **typed)


def get_config() -> Config:
    """The settings of this thread or task: an override (`use_config`), else the site file."""
    override = _override.get()
    if override is not None:
        return override
    global _loaded
    if _loaded is None:
        _loaded = load_config()
    return _loaded


@contextmanager
def use_config(config: Config) -> Iterator[Config]:
    """Use `config` in this thread or task until the block ends (other threads keep theirs)."""
    token = _override.set(config)
    try:
        yield config
    finally:
        _override.reset(token)


@contextmanager
def config_override(**changes: Any) -> Iterator[Config]:
    """Temporarily change some settings in this thread or task (tests)."""
    with use_config(replace(get_config(), **changes)) as config:
        yield config
