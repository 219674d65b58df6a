"""Site-configurable thresholds and windows (CONTRACT.md defaults).

One frozen dataclass, read once. A site overrides any field in a TOML file
(`ltfu.toml` in the working directory, or the path in `LTFU_CONFIG`):

    [thresholds]
    bcell_pct_recovery = 3.0
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from pathlib import Path

DAYS_PER_MONTH = 30.4375
LANDMARK_MONTHS: tuple[int, ...] = (6, 12, 24, 36, 60)


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
    # ingest
    max_upload_bytes: int = 200 * 1024 * 1024


_DEFAULT = Config()
_current: Config | None = None


def load_config(path: str | Path | None = None) -> Config:
    """Read a TOML override file; missing file means the contract defaults."""
    candidate = Path(path) if path else Path(os.environ.get("LTFU_CONFIG", "ltfu.toml"))
    if not candidate.is_file():
        return _DEFAULT
    raw = tomllib.loads(candidate.read_text(encoding="utf-8"))
    values = dict(raw.get("thresholds", {}))
    known = {f.name for f in fields(Config)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"{candidate}: unknown settings {sorted(unknown)}; known: {sorted(known)}")
    for key, value in values.items():
        if isinstance(value, list):
            values[key] = tuple(tuple(v) if isinstance(v, list) else v for v in value)
    return replace(_DEFAULT, **values)


def get_config() -> Config:
    global _current
    if _current is None:
        _current = load_config()
    return _current


@contextmanager
def config_override(**changes: object) -> Iterator[Config]:
    """Temporarily change settings (tests)."""
    global _current
    previous = _current
    _current = replace(get_config(), **changes)  # type: ignore[arg-type]
    try:
        yield _current
    finally:
        _current = previous
