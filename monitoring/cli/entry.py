"""The `ltfu` process (the console script and `python -m monitoring.cli`): `main`, then the exit.

A command is a short process, so two of the interpreter's own costs are spared:

- Fewer garbage collections. Importing polars and SQLAlchemy makes several hundred thousand
  objects that live as long as the process; with the default thresholds (700, 10, 10) the young
  generation is collected 150 times during a first ingest, and each full collection walks them
  all. A command makes few short-lived cycles, so a larger young generation costs little memory.
- No teardown. Once `main` has returned, the output is flushed and the exit handlers run (the
  reader worker stopped, logging flushed), and the process ends without the interpreter freeing
  every module and object one by one (about 0.2 s of CPU after a first ingest of 50 000
  patients, for memory the operating system takes back anyway). The store is closed by then:
  every command closes it before `main` returns. As the interpreter would, the exit first waits
  for any thread that is not a daemon; output that cannot be flushed (a reader gone, `| head`)
  takes the interpreter's ordinary exit instead.

`ltfu serve` replaces this process with the dashboard's server (`os.execve`), which keeps the
interpreter's defaults. Tests call `main` in process; nothing here runs there.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
import threading
from typing import NoReturn

# young generation, then how many young (middle) collections before the next older one
_GC_THRESHOLDS = (50_000, 20, 10)
_FLUSH_FAILED = 120  # the interpreter's own exit status when its final flush fails


def run() -> NoReturn:
    gc.set_threshold(*_GC_THRESHOLDS)
    from monitoring.cli import main

    code = main()
    # what the interpreter's exit does first: wait for the threads it would wait for
    for thread in threading.enumerate():
        if not thread.daemon and thread is not threading.main_thread():
            thread.join()
    if not _flushed():
        raise SystemExit(code)  # a reader gone (`| head`): the ordinary exit, as before
    atexit._run_exitfuncs()
    os._exit(code if _flushed() else _FLUSH_FAILED)


def _flushed() -> bool:
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        return False
    return True
