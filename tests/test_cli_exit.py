"""The `ltfu` process ends without the interpreter's teardown (monitoring/cli/entry.py), and
loses nothing by it: its output is whole, its exit status is `main`'s, its exit handlers run, and
the threads an ordinary exit waits for are waited for."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from monitoring.cli import entry


def _ltfu(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitoring.cli", *argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
    )


def test_output_and_exit_status_are_mains(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    done = _ltfu("--db", url, "status", "--format", "json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["patients"] == 0  # buffered output flushed before the exit
    missing = _ltfu("--db", url, "ingest", str(tmp_path / "nothing.csv"), cwd=tmp_path)
    assert missing.returncode == 2
    assert missing.stderr.strip() == "ltfu: nothing.csv: no such file."


def test_exit_handlers_run_and_threads_are_waited_for(monkeypatch: pytest.MonkeyPatch):
    import threading

    calls: list[str] = []
    exited: list[int] = []
    finished = threading.Event()

    def late_thread() -> None:
        finished.wait(0.2)
        calls.append("thread done")

    def fake_main() -> int:
        threading.Thread(target=late_thread).start()  # not a daemon: an exit waits for it
        return 3

    monkeypatch.setattr("monitoring.cli.main", fake_main)
    monkeypatch.setattr(entry.atexit, "_run_exitfuncs", lambda: calls.append("atexit"))
    monkeypatch.setattr(entry.os, "_exit", lambda code: exited.append(code))
    monkeypatch.setattr(entry.gc, "set_threshold", lambda *_a: None)
    entry.run()  # (os._exit is stubbed, so it returns)
    assert calls == ["thread done", "atexit"]
    assert exited == [3]


def test_output_that_cannot_be_flushed_takes_the_ordinary_exit(monkeypatch: pytest.MonkeyPatch):
    class Gone:
        def flush(self) -> None:
            raise BrokenPipeError

    monkeypatch.setattr("monitoring.cli.main", lambda: 0)
    monkeypatch.setattr(entry.sys, "stdout", Gone())
    monkeypatch.setattr(entry.os, "_exit", lambda code: pytest.fail("quiet exit taken"))
    monkeypatch.setattr(entry.gc, "set_threshold", lambda *_a: None)
    with pytest.raises(SystemExit) as raised:
        entry.run()
    assert raised.value.code == 0
