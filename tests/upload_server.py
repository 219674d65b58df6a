"""A stand-in for the dashboard's serving process in hostile-file tests: it answers each file path
on stdin through the dashboard's own upload path (`dashboard.data.dry_run`, the function the Data
page calls) with one JSON line: the outcome, the sentence, and this process's peak memory (VmHWM).
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path


def _peak_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return -1


def main() -> None:
    warnings.simplefilter("ignore")
    import logging

    logging.disable(logging.WARNING)  # Streamlit's "no runtime" notes in bare mode
    from dashboard import data
    from monitoring.errors import LtfuError
    from monitoring.store.site_scope import SiteScope

    # the Data page's upload as an unlimited data manager would make it (this bare process has
    # no signed-in session, whose scope would be "no site")
    data.current_scope = SiteScope.every  # type: ignore[attr-defined]

    print(json.dumps({"ready": True, "peak_kb": _peak_kb()}), flush=True)
    for line in sys.stdin:
        path = Path(line.strip())
        try:
            files = ((path.name, path.read_bytes()),)
            check = data.dry_run(data.version(), files, "ISO")
            outcome = "rejected" if check.rejected else "accepted"
            message = check.message
        except LtfuError as exc:
            outcome, message = type(exc).__name__, str(exc)
        del files
        print(
            json.dumps({"outcome": outcome, "message": message, "peak_kb": _peak_kb()}),
            flush=True,
        )


if __name__ == "__main__":
    main()
