"""Run one command and report its own cost: `python -S bench/launch.py OUT.json ARGV...`.

The bench starts this small launcher, which starts the command. A child's `ru_maxrss` starts
from the size of the process it was forked from (the kernel carries the parent's high-water
mark across fork and exec), so forking the command straight from the bench, which holds a
generated cohort, would floor every figure at the bench's size. Forked from this launcher, the
figure is the command's true peak (plus a launcher's few MB). Nothing but the standard library.
"""

import json
import os
import sys
import time


def main() -> int:
    out, argv = sys.argv[1], sys.argv[2:]
    started = time.perf_counter()
    pid = os.posix_spawnp(argv[0], argv, os.environ)
    _pid, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(
            {
                "wall_s": round(wall, 3),
                "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
                "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
                "exit": code,
            },
            f,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
