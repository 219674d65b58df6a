"""Run `ltfu ingest` announcing each piece it writes, so a test can kill it inside the write.

Announced: each chunk of rows written in the transaction (`chunk`), and on SQLite each batch
written to the scratch database before the transaction (`stage`) and each copy from it inside
the transaction (`copy`). Batches are small here so that a big test upload has several."""

from __future__ import annotations

import sys

from monitoring import cli
from monitoring.store import staging
from monitoring.store import store as store_module
from monitoring.store.store import Store

_original = Store._write_chunk
_original_copy = staging.copy_statement
_original_batch = staging.write_batch
_original_copy_batch = Store._copy_batch


def _announcing_write(conn, table_name, columns, rows):  # type: ignore[no-untyped-def]
    print(f"chunk {table_name} {len(rows)}", flush=True)
    _original(conn, table_name, columns, rows)


def _announcing_copy(table, *args, **kwargs):  # type: ignore[no-untyped-def]
    print(f"copy {table}", flush=True)
    return _original_copy(table, *args, **kwargs)


def _announcing_copy_batch(copy, batch):  # type: ignore[no-untyped-def]
    print(f"chunk {batch.height}", flush=True)
    _original_copy_batch(copy, batch)


def _announcing_batch(conn, name, batch):  # type: ignore[no-untyped-def]
    print(f"stage {name} {batch.height}", flush=True)
    _original_batch(conn, name, batch)


Store._write_chunk = staticmethod(_announcing_write)  # type: ignore[method-assign]
staging.copy_statement = _announcing_copy
staging._BATCH_ROWS = 5000
staging.write_batch = _announcing_batch
Store._copy_batch = staticmethod(_announcing_copy_batch)  # type: ignore[method-assign]
store_module._COPY_ROWS = 5000

if __name__ == "__main__":
    raise SystemExit(cli.main(sys.argv[1:]))
