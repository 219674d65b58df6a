"""The `ltfu` process ends without the interpreter's teardown (monitoring/cli/entry.py), and
loses nothing by it: its output is whole, its exit status is `main`'s, its exit handlers run, and
the threads an ordinary exit waits for are waited for."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


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


def test_exit_handlers_run_and_threads_are_waited_for(tmp_path: Path):
    # in a process of its own: in a test worker, `run` would wait for every other test's
    # threads (a whole-suite run hung here on a server thread an earlier test left running)
    script = """
import atexit, threading
import monitoring.cli
from monitoring.cli import entry

def late_thread():
    threading.Event().wait(0.2)
    print("thread done", flush=True)

def fake_main():
    threading.Thread(target=late_thread).start()  # not a daemon: an exit waits for it
    return 3

monitoring.cli.main = fake_main
atexit.register(lambda: print("atexit", flush=True))
entry.run()
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert done.stdout.splitlines() == ["thread done", "atexit"], done.stderr
    assert done.returncode == 3


def test_output_that_cannot_be_flushed_takes_the_ordinary_exit(tmp_path: Path):
    # in a process of its own, as above
    script = """
import os, sys
import monitoring.cli
from monitoring.cli import entry

class Gone:
    def flush(self):
        raise BrokenPipeError

    def write(self, text):
        return len(text)

real_exit = os._exit

def quiet(code):
    sys.stderr.write("quiet exit taken\\n")
    sys.stderr.flush()
    real_exit(9)

monitoring.cli.main = lambda: 0
sys.stdout = Gone()
os._exit = quiet
try:
    entry.run()
except SystemExit as exc:
    sys.stderr.write(f"ordinary exit {exc.code}\\n")
    sys.stderr.flush()
    raise
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert "ordinary exit 0" in done.stderr, done.stderr
    assert "quiet exit taken" not in done.stderr
