"""`ltfu user add|list|sites|disable|enable|reset` (CONTRACT.md §5, §6).

`--sites A,B` on `add`, and `ltfu user sites NAME A,B` / `--all-sites`, limit an account to
treating sites (every site when not limited); `ltfu user list` shows them.

Passwords come from standard input when it is not a terminal (one line), and are asked twice
without echo when it is. They are never printed or logged.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from monitoring.cli.common import (
    Handler,
    Subparsers,
    acting_user,
    add_command,
    open_store,
    write_table,
)
from monitoring.errors import UsageError
from monitoring.roles import ROLES


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


def cmd_user_add(args: argparse.Namespace) -> int:
    from monitoring import accounts

    with open_store(args) as store:
        scope = accounts.site_scope(args.sites)
        account = accounts.add_user(
            store, args.name, args.role, read_password(), by=acting_user(args, "by"), sites=scope
        )
    print(f"added user {account.user_name} with role {account.role} ({account.sites.describe()})")
    return 0


def cmd_user_sites(args: argparse.Namespace) -> int:
    from monitoring import accounts

    if (args.sites is None) == (not args.all_sites):
        raise UsageError("give the sites (A,B) or --all-sites, not both")
    scope = accounts.site_scope(None if args.all_sites else args.sites)
    with open_store(args) as store:
        accounts.set_sites(store, args.name, scope, by=acting_user(args, "by"))
    print(f"user {args.name} now sees {scope.describe()}")
    return 0


def cmd_user_list(args: argparse.Namespace) -> int:
    from monitoring import accounts

    with open_store(args) as store:
        frame = accounts.list_users(store)
    # sign-in throttling is kept per attempt (store/sign_in.py); the account's old lockout
    # columns stay in the table for old stores but are always 0 and empty now
    write_table(frame.drop("failed_attempts", "locked_until"), args.format)
    return 0


def cmd_user_disable(args: argparse.Namespace) -> int:
    from monitoring import accounts

    with open_store(args) as store:
        accounts.disable_user(store, args.name, by=acting_user(args, "by"))
    print(f"disabled user {args.name}; their sessions have ended")
    return 0


def cmd_user_enable(args: argparse.Namespace) -> int:
    from monitoring import accounts

    with open_store(args) as store:
        accounts.enable_user(store, args.name, by=acting_user(args, "by"))
    print(f"enabled user {args.name}")
    return 0


def cmd_user_reset(args: argparse.Namespace) -> int:
    from monitoring import accounts

    with open_store(args) as store:
        if accounts.get_user(store, args.name) is None:
            raise UsageError(f"no user {args.name!r}; see `ltfu user list`")
        password = read_password("New password: ")
        accounts.reset_password(store, args.name, password, by=acting_user(args, "by"))
    print(f"new password set for {args.name}; sign-in delays cleared")
    return 0


def register(sub: Subparsers[argparse.ArgumentParser]) -> None:
    user = add_command(
        sub, "user", cmd_user_list, "manage dashboard accounts (add, list, disable, reset)"
    )
    users = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")

    def action(name: str, handler: Handler, text: str) -> argparse.ArgumentParser:
        p = add_command(users, name, handler, text)
        p.add_argument("--by", help="who is making the change (audit log; default: $LTFU_USER)")
        return p

    p = action("add", cmd_user_add, "add an account; the password is read from stdin or asked")
    p.add_argument("name")
    p.add_argument("--role", required=True, choices=list(ROLES))
    p.add_argument(
        "--sites",
        metavar="A,B",
        help="limit the account to these treating sites (default: every site)",
    )
    p = action("list", cmd_user_list, "list accounts (never their passwords)")
    p.add_argument("--format", choices=["csv", "json"], default="csv")
    p = action("sites", cmd_user_sites, "limit an account to sites, or let it see every site")
    p.add_argument("name")
    p.add_argument("sites", nargs="?", metavar="A,B", help="the sites, separated by commas")
    p.add_argument("--all-sites", action="store_true", help="lift the limit: every site")
    p = action("disable", cmd_user_disable, "refuse further sign-ins and end sessions")
    p.add_argument("name")
    p = action("enable", cmd_user_enable, "allow sign-ins again")
    p.add_argument("name")
    p = action("reset", cmd_user_reset, "set a new password and clear a lockout")
    p.add_argument("name")
