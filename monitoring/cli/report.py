"""`ltfu report`: the cohort report (issue 15, item 6) as a self-contained HTML file, and as PDF
through headless Chromium. An addition to the command line of CONTRACT §5 (which does not list
it); the dashboard's "Cohort report" button makes the same file."""

from __future__ import annotations

import argparse
from pathlib import Path

from monitoring.cli.common import Subparsers, acting_user, add_command, open_store, parse_date
from monitoring.errors import UsageError

HTML_SUFFIXES = (".html", ".htm")


def _targets(out: Path, pdf: bool) -> tuple[Path | None, Path | None]:
    """(HTML path, PDF path) that `--out` and `--pdf` ask for."""
    suffix = out.suffix.lower()
    if suffix == ".pdf":
        return None, out
    if suffix not in HTML_SUFFIXES:
        raise UsageError(f"--out {out}: the file name must end in .html or .pdf")
    return out, (out.with_suffix(".pdf") if pdf else None)


def cmd_report(args: argparse.Namespace) -> int:
    from monitoring.cohort_report import render_html, report_from_store
    from monitoring.store.private_files import write_private_bytes

    out = Path(args.out)
    html_path, pdf_path = _targets(out, args.pdf)
    with open_store(args) as store:
        report = report_from_store(store, args.as_of)
        html = render_html(report)
        pdf = None
        if pdf_path is not None:
            from monitoring.cohort_report.pdf import html_to_pdf

            pdf = html_to_pdf(html)  # before anything is written: no Chromium, no files
        written = []
        if html_path is not None:
            write_private_bytes(html_path, html.encode("utf-8"))
            written.append(html_path)
        if pdf_path is not None and pdf is not None:
            write_private_bytes(pdf_path, pdf)
            written.append(pdf_path)
        store.record_audit(
            acting_user(args),
            "export",
            {
                "what": "cohort report",
                "files": [str(path) for path in written],
                "filters": report.filters,
                "as_of": report.as_of.isoformat(),
                "data_version": report.data_version,
            },
        )
    print("wrote " + ", ".join(str(path) for path in written))
    return 0


def register(sub: Subparsers[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub,
        "report",
        cmd_report,
        "the cohort report as of a date (overview, every endpoint, relapse by CD19, alert "
        "burden, data completeness) as one self-contained HTML file, or PDF",
    )
    p.add_argument(
        "--out", required=True, metavar="FILE", help="FILE.html, or FILE.pdf (needs Chromium)"
    )
    p.add_argument("--pdf", action="store_true", help="also write the PDF beside FILE.html")
    p.add_argument("--as-of", type=parse_date, metavar="DATE", help="YYYY-MM-DD (default today)")
    p.add_argument("--user", metavar="NAME", help="who exports it, for the audit log")
