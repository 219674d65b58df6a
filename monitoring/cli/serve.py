"""`ltfu serve`: the dashboard, on the store the command line uses (CONTRACT.md §6)."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

from monitoring.cli.common import Subparsers, add_command
from monitoring.errors import UsageError


def _absolute(url: str) -> str:
    """A relative sqlite path made absolute, so the server finds the same file."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/"):
        path = url.removeprefix(prefix)
        if path and path != ":memory:":
            return prefix + str(Path(path).resolve())
    return url


def app_path() -> Path:
    spec = importlib.util.find_spec("dashboard")
    if spec is None or not spec.submodule_search_locations:
        raise UsageError("the dashboard package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "app.py"


def serve_command(host: str, port: int) -> list[str]:
    """The dashboard's launcher (`dashboard/server.py`): its settings come from the package,
    not from a .streamlit/config.toml in the working folder."""
    app_path()  # says so when the dashboard package is missing
    return [sys.executable, "-m", "dashboard.server", "--host", host, "--port", str(port)]


def cmd_serve(args: argparse.Namespace) -> int:
    from monitoring.store import Store
    from monitoring.store.engine import resolve_url

    url = _absolute(resolve_url(args.db))
    Store.open(url).close()  # create or migrate before the first page asks
    env = {**os.environ, "LTFU_DATABASE_URL": url}
    command = serve_command(args.host, args.port)
    print(f"serving the dashboard at http://{args.host}:{args.port}", flush=True)
    os.execve(sys.executable, command, env)
    return 0  # pragma: no cover  (execve does not return)


def register(sub: Subparsers[argparse.ArgumentParser]) -> None:
    p = add_command(sub, "serve", cmd_serve, "start the dashboard")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8501)
