"""Stored times are UTC ISO text; people read them in the centre's time zone (a setting)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from monitoring.config import get_config
from monitoring.errors import UsageError


def centre_zone(name: str | None = None) -> ZoneInfo:
    zone = name or get_config().centre_timezone
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(
            f"centre_timezone '{zone}' is not a time zone name; use one like 'Europe/Berlin'"
        ) from None


def local_time_text(utc_iso: str | None, zone: str | None = None) -> str:
    """ "2026-11-29T19:26:29+00:00" → "2026-11-29 20:26 CET" (a bare date stays as it is)."""
    if not utc_iso:
        return ""
    if len(utc_iso) == 10:
        return utc_iso
    moment = datetime.fromisoformat(utc_iso)
    local = moment.astimezone(centre_zone(zone))
    return local.strftime("%Y-%m-%d %H:%M ") + (local.tzname() or "")


__all__ = ["centre_zone", "local_time_text"]
