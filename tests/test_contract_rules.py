"""`contract_rules.breaks_rules` never says "no" where pandera would fail: rule by rule, and on
random frames. (It lets an upload that breaks no rule skip pandera and pandas.)"""

from __future__ import annotations

import random

import pandera.errors as pa_errors
import polars as pl
import pytest

from monitoring.ingest.contract_rules import breaks_rules
from monitoring.schemas import COLUMNS, KEYS, Kind, polars_schema, schema_for
from monitoring.synthetic import make_cohort

KINDS: tuple[Kind, ...] = ("patients", "visits")


@pytest.fixture(scope="module")
def clean() -> dict[Kind, pl.DataFrame]:
    cohort = make_cohort(40, seed=3)
    frames: dict[Kind, pl.DataFrame] = {"patients": cohort.patients, "visits": cohort.visits}
    return {k: f.select(list(polars_schema(k))).cast(polars_schema(k)) for k, f in frames.items()}


def pandera_fails(frame: pl.DataFrame, kind: Kind) -> bool:
    try:
        schema_for(kind).validate(frame, lazy=True)
    except pa_errors.SchemaErrors:
        return True
    return False


def _set(frame: pl.DataFrame, column: str, row: int, value: object) -> pl.DataFrame:
    dtype = frame.schema[column]
    values = frame[column].to_list()
    values[row] = value
    return frame.with_columns(pl.Series(column, values, dtype=dtype))


def broken_frames(frame: pl.DataFrame, kind: Kind) -> list[tuple[str, pl.DataFrame]]:
    """One frame per rule of the pandera model, each breaking that rule in one place."""
    out: list[tuple[str, pl.DataFrame]] = []
    for spec in COLUMNS[kind]:
        if spec.required:
            out.append((f"{spec.name} missing", _set(frame, spec.name, 1, None)))
        if spec.codes:
            out.append(
                (f"{spec.name} code", _set(frame, spec.name, 2, spec.codes[0].upper() + "x"))
            )
        if spec.min is not None:
            out.append((f"{spec.name} min", _set(frame, spec.name, 3, spec.min - 0.001)))
        if spec.max is not None:
            out.append((f"{spec.name} max", _set(frame, spec.name, 4, spec.max + 0.001)))
        if spec.name == "patient_id":
            out.append(("patient_id format", _set(frame, "patient_id", 5, "Jane Doe")))
    out.append(("duplicate key", pl.concat([frame, frame.head(1)])))
    out.append(("other column", frame.with_columns(pl.lit("x").alias("extra"))))
    out.append(("column missing", frame.drop(COLUMNS[kind][-1].name)))
    number = next(s.name for s in COLUMNS[kind] if s.type == "number")
    out.append(("wrong dtype", frame.with_columns(pl.col(number).cast(pl.String))))
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_a_clean_frame_passes_both(clean, kind: Kind):
    assert not pandera_fails(clean[kind], kind)
    assert not breaks_rules(clean[kind], kind)
    assert not breaks_rules(clean[kind].head(0), kind)


@pytest.mark.parametrize("kind", KINDS)
def test_every_rule_broken_is_seen(clean, kind: Kind):
    cases = broken_frames(clean[kind], kind)
    assert len(cases) > 10
    for label, frame in cases:
        assert pandera_fails(frame, kind), label  # the case really breaks a rule
        assert breaks_rules(frame, kind), label


@pytest.mark.parametrize("kind", KINDS)
def test_random_frames_never_pass_where_pandera_fails(clean, kind: Kind):
    rng = random.Random(14)
    frame = clean[kind]
    specs = COLUMNS[kind]
    pool: dict[str, list[object]] = {
        "number": [None, 0.0, -0.0, 1.0, 100.0, 100.5, -1e-9, 5000.0, 5000.1, float("nan"), 1e300],
        "code": [None, "", "cr", "CR", "BM", "bm", "F", "x", "negative", "marrow"],
        "text": [None, "", "A-1", "CART-00001", "a b", "é", "x" * 41, "ok.id_1"],
    }
    failing = 0
    for _ in range(60):
        broken = frame
        for _change in range(rng.randint(1, 3)):
            spec = rng.choice(specs)
            if spec.type not in pool:
                continue
            broken = _set(
                broken, spec.name, rng.randrange(broken.height), rng.choice(pool[spec.type])
            )
        if rng.random() < 0.2:
            key = list(KEYS[kind])
            broken = pl.concat(
                [broken, broken.sample(1, seed=rng.randrange(99)).select(broken.columns)]
            )
            assert broken.select(key).width == len(key)
        fails = pandera_fails(broken, kind)
        failing += fails
        if fails:
            assert breaks_rules(broken, kind)
    assert 5 < failing < 60  # both outcomes were exercised
