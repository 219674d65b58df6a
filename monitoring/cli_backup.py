"""`ltfu backup PATH` and `ltfu restore PATH`."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from monitoring.cli import _store, _user


def cmd_backup(args: argparse.Namespace) -> int:
    from monitoring.backup import backup

    store = _store(args)
    path = backup(store, args.path)
    store.record_audit(_user(args), "backup", {"path": str(path)})
    print(f"backup written: {path}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from monitoring.backup import restore

    store = _store(args)
    restore(store, args.path)
    store.record_audit(_user(args), "restore", {"path": str(args.path)})
    print(f"store restored from {args.path}")
    return 0


def register(sub: Any, add: Callable[..., argparse.ArgumentParser]) -> None:
    p = add("backup", cmd_backup, "write a consistent copy of the whole store")
    p.add_argument("path")
    p.add_argument("--user")
    p = add("restore", cmd_restore, "replace the store with a backup")
    p.add_argument("path")
    p.add_argument("--user")
