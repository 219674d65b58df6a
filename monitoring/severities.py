"""Alert severities, apart from `alerts` so that the command line can offer them as choices
without importing the rules (and polars) for every command."""

from __future__ import annotations

from typing import Literal

Severity = Literal["critical", "high", "medium", "data"]
SEVERITIES: tuple[Severity, ...] = ("critical", "high", "medium", "data")
FLAG_SEVERITIES: tuple[str, ...] = ("critical", "high", "medium")
