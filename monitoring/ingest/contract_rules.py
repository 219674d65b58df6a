"""Does a typed upload break any rule of the pandera model? One polars pass to ask first.

Pandera (`schemas.schema_for`) is the contract's validation and words every problem it finds;
it costs an import of pandas and one query per check. Most uploads break no rule, so
`validate._pandera_problems` asks `breaks_rules` first and runs pandera only when it says yes.
It asks with the expressions pandera's polars backend evaluates for the same `ColumnSpec`s
(`ge`, `le`, `is_in`, `str.contains("^…")`, not null, the dtypes, no other column), all in
one select; then unique keys (`key_order.repeats_a_key`: rows already in key order need no
hashing). It may say yes where pandera finds nothing (pandera then runs and reports nothing),
never no where pandera would fail: `tests/test_contract_rules.py` holds it to pandera rule by
rule and on random frames.
"""

from __future__ import annotations

import polars as pl

from monitoring.key_order import repeats_a_key
from monitoring.schemas import COLUMNS, KEYS, PATIENT_ID_PATTERN, Kind


def _rule_breaks(kind: Kind) -> list[pl.Expr]:
    """One boolean per rule: true when some row breaks it."""
    breaks: list[pl.Expr] = []
    for spec in COLUMNS[kind]:
        column = pl.col(spec.name)
        if spec.required:
            breaks.append(column.is_null().any())
        if spec.codes:
            breaks.append((~column.is_in(list(spec.codes))).any())
        if spec.type == "number":
            # not a value the parser makes; where one came from, pandera has the last word
            breaks.append(column.is_nan().any())
        if spec.min is not None:
            breaks.append((~column.ge(spec.min)).any())
        if spec.max is not None:
            breaks.append((~column.le(spec.max)).any())
        if spec.name == "patient_id":
            breaks.append((~column.str.contains(PATIENT_ID_PATTERN)).any())
    return breaks


def breaks_rules(data: pl.DataFrame, kind: Kind) -> bool:
    """True when some row or column of `data` (typed, without the row column) may break a rule
    of `schemas.schema_for(kind)`; False only when pandera would pass it."""
    specs = COLUMNS[kind]
    if data.columns != [spec.name for spec in specs]:
        return True
    if any(data.schema[spec.name] != spec.dtype for spec in specs):
        return True
    if not data.height:
        return False
    breaks = [rule.alias(str(i)) for i, rule in enumerate(_rule_breaks(kind))]
    return any(bool(v) for v in data.select(breaks).row(0)) or repeats_a_key(data, KEYS[kind])
