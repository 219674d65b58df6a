"""A CLI upload is read and typed in the same isolated worker (`read_typed`): the worker's time
limit covers the typing too, and a refusal there is the one sentence a plain read gives; the
next upload gets a fresh worker."""

from __future__ import annotations

import os
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


_ABORT_WHILE_TYPING = """
import os
import monitoring.ingest.validate as validate

_parse_file = validate.parse_file


def _aborting(raw, **kwargs):
    if raw.name == "abort-typing.csv":
        os.abort()  # as polars does when an allocation fails under the worker's memory limit
    return _parse_file(raw, **kwargs)


validate.parse_file = _aborting
"""


def test_a_worker_killed_while_typing_leaves_the_typing_to_the_caller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The read fitted the worker's limits; only the typing did not (pandera wording a broken
    rule over a large file needs more memory than the read). Before typing moved into the
    worker the caller typed such a file and reported its rows: it still does, instead of
    refusing the file as too large."""
    from monitoring.ingest import isolation
    from monitoring.ingest.read import RawTable, read_table
    from monitoring.ingest.validate import parse_file

    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(_ABORT_WHILE_TYPING)  # loaded by the worker only
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")]))
    path = tmp_path / "abort-typing.csv"
    path.write_bytes(b"patient_id,infusion_date\nP-1,2024-01-01\nP-2,2023-13-01\n")
    isolation._worker.stop()  # the next worker starts with the hook
    try:
        got = read_typed(path, kind="patients")
        assert isinstance(got, RawTable)
        want = parse_file(read_table(path), kind="patients")
        typed = parse_file(got, kind="patients")
        assert typed.frame.equals(want.frame) and typed.problems.equals(want.problems)
        assert typed.problems.height == 1  # the bad date is reported, not the file refused
    finally:
        isolation._worker.stop()  # the next test's worker starts without the hook
