"""`ltfu backup PATH` and `ltfu restore PATH`."""

from __future__ import annotations

import argparse

from monitoring.cli.common import Subparsers, acting_user, add_command, open_store


def cmd_backup(args: argparse.Namespace) -> int:
    from monitoring.backup import backup

    with open_store(args) as store:
        path = backup(store, args.path)
        store.record_audit(acting_user(args), "backup", {"path": str(path)})
    print(f"backup written: {path}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from monitoring.backup import restore

    with open_store(args) as store:
        restore(store, args.path)
        store.record_audit(acting_user(args), "restore", {"path": str(args.path)})
    print(f"store restored from {args.path}")
    return 0


def register(sub: Subparsers[argparse.ArgumentParser]) -> None:
    p = add_command(sub, "backup", cmd_backup, "write a consistent copy of the whole store")
    p.add_argument("path")
    p.add_argument("--user")
    p = add_command(sub, "restore", cmd_restore, "replace the store with a backup")
    p.add_argument("path")
    p.add_argument("--user")
