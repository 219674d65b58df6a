"""The report as PDF: headless Chromium prints the HTML (`--print-to-pdf`), in a private
temporary folder that is removed afterwards. No Chromium → `ExportUnavailableError` (exit 2)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from monitoring.errors import ExportUnavailableError

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: how this project starts Chromium everywhere (the PDF here, the browser tests, the bench):
#: no sandbox (runs as root in CI), no GPU, and nothing that reaches the network on its own
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
FLAGS = ("--headless", *CHROMIUM_FLAGS, "--no-pdf-header-footer")
TIMEOUT_S = 180.0  # a cold Chromium on a busy two-core machine


def find_chromium() -> str | None:
    """The first Chromium-like browser on the PATH."""
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


def html_to_pdf(html: str, timeout_s: float = TIMEOUT_S) -> bytes:
    """The PDF Chromium prints from `html` (A4, as the page's print CSS lays it out)."""
    browser = find_chromium()
    if browser is None:
        raise ExportUnavailableError(
            "a PDF needs Chromium (no chromium on the PATH): install it, or write the HTML "
            "report with --out FILE.html and print it from a browser"
        )
    with tempfile.TemporaryDirectory(prefix="ltfu-report-") as folder:  # 0700
        source, target = Path(folder) / "report.html", Path(folder) / "report.pdf"
        source.write_text(html, encoding="utf-8")
        command = [
            browser,
            *FLAGS,
            f"--user-data-dir={Path(folder) / 'profile'}",
            f"--print-to-pdf={target}",
            source.as_uri(),
        ]
        try:
            done = subprocess.run(
                command,
                capture_output=True,
                timeout=timeout_s,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise ExportUnavailableError(
                f"Chromium did not print the PDF within {timeout_s:.0f} s"
            ) from None
        if not target.exists() or not target.stat().st_size:
            last = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
            raise ExportUnavailableError(
                f"Chromium did not write the PDF (exit status {done.returncode}) {last[0]}".strip()
            )
        return target.read_bytes()
