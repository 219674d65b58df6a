"""Parse uploads in a worker process, so that a reader that still blows up kills the worker only.

    parse_isolated(data, name, sheet, limits) ─▶ (frame, native dates, decimal comma)

The readers under polars (calamine for XLSX, the CSV and Parquet readers) are native code: when
they fail to allocate they abort the whole process (an open upstream bug for XLSX extents), which
for `ltfu serve` would be the dashboard of every user. `limits.py` refuses the known shapes first;
this is the second wall for whatever is unknown.

One long-lived worker per process (`python -m monitoring.ingest.isolation`), started on first use
and restarted after it dies, so an upload costs a round trip rather than a Python start-up.
The worker caps its own data segment (RLIMIT_DATA, `Config.reader_memory_bytes`: it counts heap
and anonymous mappings, unlike RLIMIT_AS it is not exhausted by the address space native thread
pools reserve) and the size of any file it writes to the same figure (RLIMIT_FSIZE: the reply
below), and writes no core file; the parent kills it after `reader_timeout_seconds`. Requests are
serialised by a lock. Its stdout and stderr are discarded (a native backtrace is no use to a user
and no patient data goes to logs).

The bytes travel in memory files, not through a pipe: a pipe moves them 64 KiB at a time through
the kernel (a frame of text cells is several times its CSV: the visits of 50 000 patients are
36 MB of CSV and 176 MB of Arrow), which cost more CPU than the parse. Each request is one message
on a Unix socket pair (the header, with the upload's memory file attached); the answer is one
message back (status and text, with a memory file holding the frame as Arrow IPC). Neither file
has a name anywhere, and each is gone when its last descriptor closes, worker killed or not.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import polars as pl

from monitoring.config import get_config
from monitoring.errors import LtfuError, UnreadableFileError
from monitoring.ingest.limits import Limits

_OK, _ERROR = b"o", b"e"
_MESSAGE_BYTES = 1 << 20  # a request's header or an answer's text (the data go in memory files)


def _memory_file(data: bytes = b"") -> int:
    """A new nameless file in memory holding `data`; its descriptor (the caller closes it)."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("ltfu-reader", os.MFD_CLOEXEC)
    else:  # pragma: no cover - not Linux: an unlinked temporary file
        with tempfile.TemporaryFile() as unnamed:
            fd = os.dup(unnamed.fileno())
    if data:
        with open(fd, "wb", closefd=False) as stream:
            stream.write(data)
    return fd


def _read_file(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    with open(fd, "rb", closefd=False) as stream:
        return stream.read()


def _send(channel: socket.socket, message: bytes, fd: int | None) -> None:
    socket.send_fds(channel, [message], [] if fd is None else [fd])


def _receive(channel: socket.socket) -> tuple[bytes, int | None]:
    """One message and the descriptor attached to it; EOFError when the other side is gone."""
    message, fds, flags, _address = socket.recv_fds(channel, _MESSAGE_BYTES, 1)
    if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
        for fd in fds:
            os.close(fd)
        raise EOFError
    if not message:
        raise EOFError
    return message, fds[0] if fds else None


class _Worker:
    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.channel: socket.socket | None = None
        self.lock = threading.Lock()
        self.timed_out = False

    def start(self) -> subprocess.Popen[bytes]:
        if self.process is None or self.process.poll() is not None:
            self.stop()
            root = str(Path(__file__).resolve().parents[2])
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            try:
                self.process = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "monitoring.ingest.isolation",
                        str(get_config().reader_memory_bytes),
                        str(theirs.fileno()),
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    pass_fds=(theirs.fileno(),),
                    env=env,
                )
            except BaseException:
                ours.close()
                raise
            finally:
                theirs.close()  # the worker's end lives in the worker only: its death is our EOF
            self.channel = ours
        return self.process

    def stop(self) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait()
        if self.channel is not None:
            with contextlib.suppress(OSError):
                self.channel.close()
        self.process = None
        self.channel = None

    def _kill_for_time(self, process: subprocess.Popen[bytes]) -> None:
        self.timed_out = True
        process.kill()

    def request(self, header: bytes, data: bytes) -> tuple[bytes, bytes, int | None]:
        """(status, text, memory file of the frame or None) from the worker; the caller closes
        the file. Raises EOFError when the worker died on the way."""
        process = self.start()
        assert self.channel is not None
        self.timed_out = False
        watchdog = threading.Timer(
            get_config().reader_timeout_seconds, self._kill_for_time, (process,)
        )
        upload = _memory_file(data)
        watchdog.start()
        try:
            _send(self.channel, header, upload)
            os.close(upload)
            upload = -1
            message, frame = _receive(self.channel)
            return message[:1], message[1:], frame
        except OSError as exc:
            raise EOFError from exc
        finally:
            watchdog.cancel()
            if upload >= 0:
                os.close(upload)


_worker = _Worker()
atexit.register(_worker.stop)


def _read_frame(fd: int) -> pl.DataFrame:
    proc_path = f"/proc/self/fd/{fd}"
    if os.path.exists(proc_path):  # polars reads the file natively
        return pl.read_ipc(proc_path)
    return pl.read_ipc(_read_file(fd))  # pragma: no cover - no /proc


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
    try:
        if status == _ERROR or body is None:
            raise UnreadableFileError(text.decode("utf-8", "replace"))
        meta = json.loads(text)
        frame = _read_frame(body)
    finally:
        if body is not None:
            os.close(body)
    return frame, frozenset(meta["native_dates"]), bool(meta["decimal_comma"])


# ---- the worker ---------------------------------------------------------------------------------
def _answer(header: bytes, upload: int) -> tuple[bytes, bytes, int | None]:
    """(status, error sentence or meta JSON, a memory file holding the frame as Arrow IPC)."""
    from monitoring.ingest.parsers import parse_bytes

    request = json.loads(header)
    name = str(request["name"])
    data = _read_file(upload)
    os.close(upload)
    try:
        frame, native_dates, decimal_comma = parse_bytes(
            data, name, request["sheet"], Limits(**request["limits"])
        )
    except LtfuError as exc:
        return _ERROR, str(exc).encode(), None
    except MemoryError:
        return (
            _ERROR,
            (
                f"{name}: reading the file needed more memory than ltfu allows for one file; "
                "split it and upload again."
            ).encode(),
            None,
        )
    except Exception as exc:  # a reader's own failure: one sentence, no traceback
        text = f"{name}: the file could not be read ({type(exc).__name__})."
        return _ERROR, text.encode(), None
    del data  # the upload's bytes are not held while the answer is written
    fd = _memory_file()
    with open(fd, "wb", closefd=False) as stream:
        frame.write_ipc(stream)
    del frame
    meta = json.dumps(
        {"native_dates": sorted(native_dates), "decimal_comma": decimal_comma}
    ).encode()
    return _OK, meta, fd


def _serve(memory_bytes: int, channel_fd: int) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_DATA, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    channel = socket.socket(fileno=channel_fd)
    while True:
        try:
            header, upload = _receive(channel)
        except EOFError:
            return
        if upload is None:
            return
        status, text, frame = _answer(header, upload)
        _send(channel, status + text, frame)
        if frame is not None:
            os.close(frame)


if __name__ == "__main__":
    _serve(int(sys.argv[1]), int(sys.argv[2]))
