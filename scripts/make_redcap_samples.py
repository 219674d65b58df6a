"""Regenerate the REDCap and lab samples of sample_data/ from the demo cohort (deterministic:
running it twice writes the same bytes; tests/test_redcap_samples.py checks the committed files).

    uv run --frozen python scripts/make_redcap_samples.py
"""

from __future__ import annotations

import datetime as dt
import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitoring.redcap_sample import (  # noqa: E402
    data_dictionary_csv,
    lab_sheet,
    redcap_exports,
    with_mistakes,
    with_not_detected_words,
)

SAMPLES = ROOT / "sample_data"


def lab_xlsx_bytes() -> bytes:
    import xlsxwriter

    sheet = lab_sheet(SAMPLES / "patients.csv", SAMPLES / "visits.csv")
    buffer = io.BytesIO()
    with xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_numbers": False}) as book:
        book.set_properties({"created": dt.datetime(2026, 6, 30), "author": "ltfu sample"})
        sheet.write_excel(book, worksheet="Results", autofit=False)
    return buffer.getvalue()


def build() -> dict[Path, bytes]:
    raw, label = redcap_exports(SAMPLES / "patients.csv", SAMPLES / "visits.csv")
    raw = with_not_detected_words(raw)
    mistakes, _what = with_mistakes(raw)
    redcap = SAMPLES / "redcap"
    return {
        redcap / "data_dictionary.csv": data_dictionary_csv().encode(),
        redcap / "export_raw.csv": raw.encode(),
        redcap / "export_labels.csv": label.encode(),
        redcap / "export_with_mistakes.csv": mistakes.encode(),
        SAMPLES / "lab" / "lab_results.xlsx": lab_xlsx_bytes(),
    }


def main() -> None:
    for path, content in build().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
