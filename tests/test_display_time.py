from __future__ import annotations

import pytest

from monitoring.config import config_override
from monitoring.display_time import local_time_text
from monitoring.errors import UsageError


def test_times_in_the_centre_zone() -> None:
    assert local_time_text("2026-11-29T19:26:29+00:00", "UTC") == "2026-11-29 19:26 UTC"
    assert local_time_text("2026-11-29T23:30:00+00:00", "Europe/Berlin") == "2026-11-30 00:30 CET"
    with config_override(centre_timezone="America/New_York"):
        assert local_time_text("2026-07-01T12:00:00+00:00") == "2026-07-01 08:00 EDT"
    assert local_time_text("2026-11-29") == "2026-11-29"
    assert local_time_text(None) == ""
    with pytest.raises(UsageError, match="not a time zone"):
        local_time_text("2026-11-29T19:26:29+00:00", "Mars/Base")
