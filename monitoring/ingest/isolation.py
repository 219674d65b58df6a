"""Parse uploads in a worker process, so that a reader that still blows up kills the worker only.

    parse_isolated(data, name, sheet, limits) ─▶ (frame, native dates, decimal comma)
    type_isolated(…, kind, date_format)       ─▶ the same, with `validate.parse_file` run in the
                                                 worker: its typed frame and problems come back

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
message back (status and text, with memory files holding the frames as Arrow IPC). Neither file
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
from typing import TYPE_CHECKING, NoReturn

import polars as pl

from monitoring.config import get_config
from monitoring.errors import LtfuError, UnreadableFileError
from monitoring.ingest.limits import Limits

if TYPE_CHECKING:
    from monitoring.ingest.parse import DateFormat
    from monitoring.ingest.parsers import Cells
    from monitoring.ingest.validate import ParsedFile
    from monitoring.schemas import Kind

_OK, _ERROR = b"o", b"e"
_MOST_FRAMES = 2  # the text cells; or the typed frame and its problems
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


def _send(channel: socket.socket, message: bytes, fds: list[int]) -> None:
    socket.send_fds(channel, [message], fds)


def _receive(channel: socket.socket, most: int) -> tuple[bytes, list[int]]:
    """One message and the descriptors attached to it (at most `most`); EOFError when the other
    side is gone."""
    message, fds, flags, _address = socket.recv_fds(channel, _MESSAGE_BYTES, most)
    if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC) or not message:
        for fd in fds:
            os.close(fd)
        raise EOFError
    return message, fds


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

    def request(self, header: bytes, data: bytes) -> tuple[bytes, bytes, list[int]]:
        """(status, text, memory files of the frames) from the worker; the caller closes the
        files. Raises EOFError when the worker died on the way."""
        process = self.start()
        assert self.channel is not None
        self.timed_out = False
        watchdog = threading.Timer(
            get_config().reader_timeout_seconds, self._kill_for_time, (process,)
        )
        upload = _memory_file(data)
        watchdog.start()
        try:
            _send(self.channel, header, [upload])
            os.close(upload)
            upload = -1
            message, frames = _receive(self.channel, _MOST_FRAMES)
            return message[:1], message[1:], frames
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


@dataclasses.dataclass(frozen=True)
class _Typing:
    """How the worker is to type the upload (`validate.parse_file`'s arguments): sent in the
    request's JSON header as its fields."""

    kind: Kind | None
    date_format: DateFormat


@dataclasses.dataclass(frozen=True)
class Typed:
    """What `validate.parse_file` made of the upload in the worker: its kind, its typed frame
    (in the answer's `frame`) and its file-local problems."""

    kind: Kind
    problems: pl.DataFrame


def parse_isolated(
    data: bytes, name: str, sheet: str | None, limits: Limits
) -> tuple[pl.DataFrame, frozenset[str], bool]:
    """`parsers.parse_bytes` run in the worker process; one sentence when the worker dies."""
    frame, native_dates, decimal_comma, _typed = _ask(data, name, sheet, limits, None)
    return frame, native_dates, decimal_comma


def type_isolated(
    data: bytes,
    name: str,
    sheet: str | None,
    limits: Limits,
    kind: Kind | None,
    date_format: DateFormat,
) -> tuple[pl.DataFrame, frozenset[str], bool, Typed | None]:
    """`parse_isolated`, and `validate.parse_file` of its text cells in the same worker: the
    typed frame travels back instead of the text cells, which are several times larger (a
    registry's number cells are 16-byte string views against 8-byte floats). Typed is None when
    parse_file raised there (a table of unknown kind, say), or the worker was killed for memory
    and the read alone then fitted: the frame is then the text cells and the caller parses them
    itself, and so raises in its own order, as without the worker."""
    return _ask(data, name, sheet, limits, _Typing(kind, date_format))


def _ask(
    data: bytes, name: str, sheet: str | None, limits: Limits, typing: _Typing | None
) -> tuple[pl.DataFrame, frozenset[str], bool, Typed | None]:
    header = json.dumps(
        {
            "name": name,
            "sheet": sheet,
            "limits": dataclasses.asdict(limits),
            "typing": None if typing is None else dataclasses.asdict(typing),
        }
    ).encode()
    died_typing = False
    with _worker.lock:
        try:
            status, text, bodies = _worker.request(header, data)
        except EOFError:
            timed_out = _worker.timed_out
            _worker.stop()
            if typing is None or timed_out:
                _refuse(name, timed_out)
            died_typing = True
    if died_typing:
        # killed for memory while reading or typing: the read alone may fit, as it did before
        # typing moved here (pandera wording a broken rule over a large file needs more than
        # the read), and then the caller types the text cells; if the read alone does not fit,
        # this refuses the file as before
        return _ask(data, name, sheet, limits, None)
    try:
        if status == _ERROR or not bodies:
            raise UnreadableFileError(text.decode("utf-8", "replace"))
        meta = json.loads(text)
        frames = [_read_frame(body) for body in bodies]
    finally:
        for body in bodies:
            os.close(body)
    typed = None if meta["kind"] is None else Typed(meta["kind"], frames[1])
    return frames[0], frozenset(meta["native_dates"]), bool(meta["decimal_comma"]), typed


def _refuse(name: str, timed_out: bool) -> NoReturn:
    """The one sentence for an upload whose worker was killed (time or memory limit)."""
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


# ---- the worker ---------------------------------------------------------------------------------
def _answer(header: bytes, upload: int) -> tuple[bytes, bytes, list[int]]:
    """(status, error sentence or meta JSON, memory files holding the frames as Arrow IPC)."""
    from monitoring.ingest.parsers import read_cells

    request = json.loads(header)
    name = str(request["name"])
    data = _read_file(upload)
    os.close(upload)
    typing = None if request.get("typing") is None else _Typing(**request["typing"])
    try:
        # typing: the contract's number columns that read as floats are cast once, not trimmed
        cells = read_cells(
            data,
            name,
            request["sheet"],
            Limits(**request["limits"]),
            numbers=_number_columns() if typing is not None else (),
        )
    except LtfuError as exc:
        return _ERROR, str(exc).encode(), []
    except MemoryError:
        return (
            _ERROR,
            (
                f"{name}: reading the file needed more memory than ltfu allows for one file; "
                "split it and upload again."
            ).encode(),
            [],
        )
    except Exception as exc:  # a reader's own failure: one sentence, no traceback
        text = f"{name}: the file could not be read ({type(exc).__name__})."
        return _ERROR, text.encode(), []
    del data  # the upload's bytes are not held while the answer is written
    frame, native_dates, decimal_comma = cells.frame, cells.native_dates, cells.decimal_comma
    kind = None
    frames = [frame]
    if typing is not None:
        parsed = _parse(name, cells, typing)
        if parsed is not None:
            kind, frames = parsed.kind, [parsed.frame, parsed.problems]
    del frame, cells
    fds: list[int] = []
    try:
        while frames:
            fds.append(_memory_file())
            with open(fds[-1], "wb", closefd=False) as stream:
                frames.pop(0).write_ipc(stream)
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    meta = json.dumps(
        {"native_dates": sorted(native_dates), "decimal_comma": decimal_comma, "kind": kind}
    ).encode()
    return _OK, meta, fds


def _number_columns() -> frozenset[str]:
    """The names of the contract's number columns, of either table."""
    from monitoring.schemas import COLUMNS

    return frozenset(s.name for specs in COLUMNS.values() for s in specs if s.type == "number")


def _parse(name: str, cells: Cells, typing: _Typing) -> ParsedFile | None:
    """`validate.parse_file` of the text cells, or None when it raises (the caller parses them)."""
    from monitoring.ingest.parsers import RawTable
    from monitoring.ingest.validate import parse_file

    raw = RawTable(name, cells.frame, cells.native_dates, cells.decimal_comma, sha256="")
    try:
        return parse_file(
            raw, kind=typing.kind, date_format=typing.date_format, floats=cells.floats
        )
    except Exception:  # MemoryError included: the caller parses the text cells, as before
        return None


def _serve(memory_bytes: int, channel_fd: int) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_DATA, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    channel = socket.socket(fileno=channel_fd)
    while True:
        try:
            header, uploads = _receive(channel, 1)
        except EOFError:
            return
        if not uploads:
            return
        status, text, frames = _answer(header, uploads[0])
        _send(channel, status + text, frames)
        for frame in frames:
            os.close(frame)


if __name__ == "__main__":
    _serve(int(sys.argv[1]), int(sys.argv[2]))
