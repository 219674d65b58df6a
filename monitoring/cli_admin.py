"""`ltfu user add|list|disable|enable|reset` and `ltfu serve` (CONTRACT.md §5, §6).

Passwords come from standard input when it is not a terminal (one line), and are asked twice
without echo when it is. They are never printed or logged.
"""

from __future__ import annotations

import argparse
import getpass
import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path

from monitoring import accounts
from monitoring.errors import UsageError
from monitoring.store import Store
from monitoring.store.engine import resolve_url

Add = Callable[..., argparse.ArgumentParser]


def read_password(prompt: str = "Password: ") -> str:
    """One line from a pipe, or twice without echo from a terminal."""
    if not sys.stdin.isatty():
        line = sys.stdin.readline()
        password = line.rstrip("\r\n")
        if not password:
            raise UsageError("no password on standard input (write it as one line)")
        return password
    first = getpass.getpass(prompt)
    second = getpass.getpass("Repeat the password: ")
    if first != second:
        raise UsageError("the two passwords differ; nothing was changed")
    return first


def _actor(args: argparse.Namespace) -> str:
    return str(getattr(args, "by", None) or os.environ.get("LTFU_USER") or getpass.getuser())


def cmd_user_add(args: argparse.Namespace) -> int:
    store = Store.open(args.db)
    account = accounts.add_user(store, args.name, args.role, read_password(), by=_actor(args))
    print(f"added user {account.user_name} with role {account.role}")
    return 0


def cmd_user_list(args: argparse.Namespace) -> int:
    from monitoring.cli import write_table

    frame = accounts.list_users(Store.open(args.db))
    write_table(frame, args.format)
    return 0


def cmd_user_disable(args: argparse.Namespace) -> int:
    accounts.disable_user(Store.open(args.db), args.name, by=_actor(args))
    print(f"disabled user {args.name}; their sessions have ended")
    return 0


def cmd_user_enable(args: argparse.Namespace) -> int:
    accounts.enable_user(Store.open(args.db), args.name, by=_actor(args))
    print(f"enabled user {args.name}")
    return 0


def cmd_user_reset(args: argparse.Namespace) -> int:
    store = Store.open(args.db)
    if accounts.get_user(store, args.name) is None:
        raise UsageError(f"no user {args.name!r}; see `ltfu user list`")
    accounts.reset_password(store, args.name, read_password("New password: "), by=_actor(args))
    print(f"new password set for {args.name}; lockout cleared")
    return 0


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
    url = _absolute(resolve_url(args.db))
    Store.open(url).close()  # create or migrate before the first page asks
    env = {**os.environ, "LTFU_DATABASE_URL": url}
    command = serve_command(args.host, args.port)
    print(f"serving the dashboard at http://{args.host}:{args.port}", flush=True)
    os.execve(sys.executable, command, env)
    return 0  # pragma: no cover  (execve does not return)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], add: Add) -> None:
    user = add("user", cmd_user_list, "manage dashboard accounts (add, list, disable, reset)")
    users = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")

    def action(
        name: str, handler: Callable[[argparse.Namespace], int], text: str
    ) -> argparse.ArgumentParser:
        p = users.add_parser(name, help=text, description=text)
        p.set_defaults(handler=handler)
        p.add_argument("--by", help="who is making the change (audit log; default: $LTFU_USER)")
        return p

    p = action("add", cmd_user_add, "add an account; the password is read from stdin or asked")
    p.add_argument("name")
    p.add_argument("--role", required=True, choices=list(accounts.ROLES))
    p = action("list", cmd_user_list, "list accounts (never their passwords)")
    p.add_argument("--format", choices=["csv", "json"], default="csv")
    p = action("disable", cmd_user_disable, "refuse further sign-ins and end sessions")
    p.add_argument("name")
    p = action("enable", cmd_user_enable, "allow sign-ins again")
    p.add_argument("name")
    p = action("reset", cmd_user_reset, "set a new password and clear a lockout")
    p.add_argument("name")

    p = add("serve", cmd_serve, "start the dashboard")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8501)
