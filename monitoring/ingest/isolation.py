"""Parse uploads in a worker process, so that a reader that still blows up kills the worker only.

    parse_isolated(data, name, sheet, limits) ─▶ (frame, native dates, decimal comma)

The readers under polars (calamine for XLSX, the CSV and Parquet readers) are native code: when
they fail to allocate they abort the whole process (an open upstream bug for XLSX extents), which
for `ltfu serve` would be the dashboard of every user. `limits.py` refuses the known shapes first;
this is the second wall for whatever is unknown.

One long-lived worker per process (`python -m monitoring.ingest.isolation`), started on first use
and restarted after it dies, so an upload costs a pipe round trip rather than a Python start-up.
The worker caps its own data segment (RLIMIT_DATA, `Config.reader_memory_bytes`: it counts heap
and anonymous mappings, unlike RLIMIT_AS it is not exhausted by the address space native thread
pools reserve) and writes no core file; the parent kills it after `reader_timeout_seconds`. Requests
are serialised by a lock. Frames travel as Arrow IPC bytes over the worker's stdin/stdout; its
stderr is discarded (a native backtrace is no use to a user and no patient data goes to logs).
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import io
import json
import os
import struct
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

import polars as pl

from monitoring.config import get_config
from monitoring.errors import LtfuError, UnreadableFileError
from monitoring.ingest.limits import Limits

_LENGTH = struct.Struct(">Q")
_OK, _ERROR = b"o", b"e"


def _write_message(stream: IO[bytes], *parts: bytes | memoryview) -> None:
    for part in parts:
        stream.write(_LENGTH.pack(part.nbytes if isinstance(part, memoryview) else len(part)))
        stream.write(part)
    stream.flush()


def _read_part(stream: IO[bytes]) -> bytes:
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        raise EOFError
    (size,) = _LENGTH.unpack(head)
    body = stream.read(size)
    if len(body) < size:
        raise EOFError
    return body


class _Worker:
    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.lock = threading.Lock()
        self.timed_out = False

    def start(self) -> subprocess.Popen[bytes]:
        if self.process is None or self.process.poll() is not None:
            root = str(Path(__file__).resolve().parents[2])
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "monitoring.ingest.isolation",
                    str(get_config().reader_memory_bytes),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=env,
            )
        return self.process

    def stop(self) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait()
            for pipe in (self.process.stdin, self.process.stdout):
                if pipe is not None:
                    # a worker killed mid-send leaves unsent bytes: closing flushes them into
                    # a broken pipe, which must not escape the refusal of the file
                    with contextlib.suppress(OSError):
                        pipe.close()
        self.process = None

    def _kill_for_time(self, process: subprocess.Popen[bytes]) -> None:
        self.timed_out = True
        process.kill()

    def request(self, header: bytes, data: bytes) -> tuple[bytes, bytes, bytes]:
        """(status, text, frame) from the worker; raises EOFError when it died on the way."""
        process = self.start()
        assert process.stdin is not None and process.stdout is not None
        self.timed_out = False
        watchdog = threading.Timer(
            get_config().reader_timeout_seconds, self._kill_for_time, (process,)
        )
        watchdog.start()
        try:
            _write_message(process.stdin, header, data)
            status = _read_part(process.stdout)
            text = _read_part(process.stdout)
            frame = _read_part(process.stdout)
            return status, text, frame
        except (BrokenPipeError, OSError) as exc:
            raise EOFError from exc
        finally:
            watchdog.cancel()


_worker = _Worker()
atexit.register(_worker.stop)


def parse_isolated(
    data: bytes, name: str, sheet: str | None, limits: Limits
) -> tuple[pl.DataFrame, frozenset[str], bool]:
    """`parsers.parse_bytes` run in the worker process; one sentence when the worker dies."""
    header = json.dumps(
        {"name": name, "sheet": sheet, "limits": dataclasses.asdict(limits)}
    ).encode()
    with _worker.lock:
        try:
            status, text, body = _worker.request(header, data)
        except EOFError:
            timed_out = _worker.timed_out
            _worker.stop()
            config = get_config()
            if timed_out:
                raise UnreadableFileError(
                    f"{name}: reading the file took longer than ltfu's limit of "
                    f"{config.reader_timeout_seconds} s, so it was stopped; split the file and "
                    "upload again."
                ) from None
            raise UnreadableFileError(
                f"{name}: reading the file needed more than ltfu's limit of "
                f"{config.reader_memory_bytes / 2**30:.0f} GiB of memory, so it was stopped; "
                "split the file or remove what is not needed and upload again."
            ) from None
    if status == _ERROR:
        raise UnreadableFileError(text.decode("utf-8", "replace"))
    meta = json.loads(text)
    frame = pl.read_ipc(io.BytesIO(body))
    return frame, frozenset(meta["native_dates"]), bool(meta["decimal_comma"])


# ---- the worker ---------------------------------------------------------------------------------
def _answer(header: bytes, data: bytes) -> tuple[bytes, bytes, io.BytesIO]:
    """(status, error sentence or meta JSON, the frame as Arrow IPC)."""
    from monitoring.ingest.parsers import parse_bytes

    request = json.loads(header)
    name = str(request["name"])
    try:
        frame, native_dates, decimal_comma = parse_bytes(
            data, name, request["sheet"], Limits(**request["limits"])
        )
    except LtfuError as exc:
        return _ERROR, str(exc).encode(), io.BytesIO()
    except MemoryError:
        return (
            _ERROR,
            (
                f"{name}: reading the file needed more memory than ltfu allows for one file; "
                "split it and upload again."
            ).encode(),
            io.BytesIO(),
        )
    except Exception as exc:  # a reader's own failure: one sentence, no traceback
        text = f"{name}: the file could not be read ({type(exc).__name__})."
        return _ERROR, text.encode(), io.BytesIO()
    buffer = io.BytesIO()
    frame.write_ipc(buffer)
    del frame
    meta = json.dumps(
        {"native_dates": sorted(native_dates), "decimal_comma": decimal_comma}
    ).encode()
    return _OK, meta, buffer


def _serve(memory_bytes: int) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_DATA, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # the protocol gets its own copy of stdout; anything a library prints goes to stderr
    stdin, stdout = sys.stdin.buffer, os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    while True:
        try:
            header = _read_part(stdin)
            data = _read_part(stdin)
        except EOFError:
            return
        status, text, frame = _answer(header, data)
        del data
        # the IPC buffer is sent as it is, not copied into one message
        with frame.getbuffer() as view:
            _write_message(stdout, status, text, view)
        del frame


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
