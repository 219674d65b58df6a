"""Run `ltfu ingest` announcing each chunk it writes, so a test can kill it inside the write."""

from __future__ import annotations

import sys

from monitoring import cli
from monitoring.store.store import Store

_original = Store._write_chunk


def _announcing_write(conn, table_name, columns, rows):  # type: ignore[no-untyped-def]
    print(f"chunk {table_name} {len(rows)}", flush=True)
    _original(conn, table_name, columns, rows)


Store._write_chunk = staticmethod(_announcing_write)  # type: ignore[method-assign]

if __name__ == "__main__":
    raise SystemExit(cli.main(sys.argv[1:]))
