"""The client an audit entry comes from (issue 16, item 7): `cli` for the command line, the
browser's address in the dashboard, which registers how to find it once. Kept in the store layer
because every audit entry the store writes carries it."""

from __future__ import annotations

from collections.abc import Callable

CLI_CLIENT = "cli"
_client_source: Callable[[], str | None] | None = None


def set_client_source(source: Callable[[], str | None] | None) -> None:
    """Register how to find the current client's address (the dashboard does, once)."""
    global _client_source
    _client_source = source


def client_address() -> str:
    """The current client's address for an audit entry: `cli` outside the dashboard."""
    if _client_source is None:
        return CLI_CLIENT
    try:
        found = _client_source()
    except Exception:  # no request in this thread (a background job): say so, never fail
        found = None
    return found or "unknown"
