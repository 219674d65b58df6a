"""A CLI upload is read and typed in the same isolated worker (`read_typed`): the worker's time
limit covers the typing too, and a refusal there is the one sentence a plain read gives; the
next upload gets a fresh worker."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitoring.config import config_override
from monitoring.errors import UnreadableFileError
from monitoring.ingest.read_typed import read_typed
from monitoring.ingest.validate import ParsedFile


def test_typed_read_time_limit_is_one_sentence_and_the_next_read_works(tmp_path: Path) -> None:
    slow = tmp_path / "slow.csv"
    rows = b"".join(b"P-%d,2024-02-02,CR\n" % i for i in range(300_000))
    slow.write_bytes(b"patient_id,visit_date,disease_status\n" + rows)
    with config_override(reader_timeout_seconds=0), pytest.raises(UnreadableFileError) as caught:
        read_typed(slow, kind="visits")
    message = str(caught.value)
    assert message.startswith("slow.csv: ") and "longer than ltfu's limit of 0 s" in message
    good = tmp_path / "good.csv"
    good.write_bytes(b"patient_id,infusion_date\nP-1,2024-01-01\n")
    typed = read_typed(good, kind="patients")
    assert isinstance(typed, ParsedFile) and typed.frame.height == 1
