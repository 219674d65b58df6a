"""The registry of durability analyses (monitoring/analysis_registry.py) and the typed results:
the command line, the endpoints' checks and the page all read the one registry."""

from __future__ import annotations

import dataclasses
import json
from datetime import date

import pytest

from monitoring.analysis_registry import (
    ENDPOINT_BY_ID,
    ENDPOINT_SPECS,
    ENDPOINTS,
    KM_ENDPOINTS,
    OPTIONS,
    DurabilityRequest,
    as_request,
)
from monitoring.cli import build_parser
from monitoring.durability_results import (
    DurabilitySummary,
    GroupSummary,
    GroupTest,
    Landmark,
    Rmst,
)
from monitoring.endpoints import check_request
from monitoring.errors import UsageError


def test_every_endpoint_option_is_a_registered_option_and_a_request_field() -> None:
    fields = {f.name for f in dataclasses.fields(DurabilityRequest)}
    registered = {option.field for option in OPTIONS}
    for spec in ENDPOINT_SPECS:
        assert set(spec.options) <= registered, spec.id
    assert registered <= fields
    assert tuple(spec.id for spec in ENDPOINT_SPECS) == ENDPOINTS
    assert set(KM_ENDPOINTS) == {s.id for s in ENDPOINT_SPECS if not s.competing_risks}
    assert all(option.endpoints for option in OPTIONS), "an option no endpoint offers"


def test_the_command_line_offers_exactly_the_registry() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    durability = sub.choices["durability"]  # type: ignore[index]
    by_dest = {a.dest: a for a in durability._actions}
    assert tuple(by_dest["endpoint"].choices) == ENDPOINTS
    for option in OPTIONS:
        assert by_dest[option.field].option_strings == [option.flag]


def test_request_is_frozen_hashable_and_a_cache_key() -> None:
    a = DurabilityRequest("efs", by="product", as_of=date(2025, 1, 1))
    b = DurabilityRequest("efs", by="product", as_of=date(2025, 1, 1))
    assert a == b and hash(a) == hash(b) and len({a: 1, b: 2}) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.by = "site"  # type: ignore[misc]
    assert as_request("efs", {"by": "product", "as_of": date(2025, 1, 1)}) == a
    with pytest.raises(TypeError):
        as_request(a, {"by": "site"})


@pytest.mark.parametrize("option", OPTIONS, ids=lambda o: o.field)
def test_an_option_outside_its_endpoints_is_refused_naming_them(option) -> None:  # type: ignore[no-untyped-def]
    outside = next(e for e in ENDPOINTS if e not in option.endpoints)
    with pytest.raises(UsageError, match=f"{option.flag} applies to .*not {outside}"):
        check_request(DurabilityRequest(outside, **{option.field: True}))
    check_request(DurabilityRequest(option.endpoints[0], **{option.field: True}))


def test_endpoint_origins_and_labels() -> None:
    assert ENDPOINT_BY_ID["rfs"].origin == "remission onset"
    assert ENDPOINT_BY_ID["cir"].competing_risks and ENDPOINT_BY_ID["cir"].origin != "infusion"
    assert len({spec.label for spec in ENDPOINT_SPECS}) == len(ENDPOINT_SPECS)


def test_summary_json_leaves_out_parts_not_computed() -> None:
    landmark = Landmark(6, 0.5, 0.4, 0.6, 10)
    group = GroupSummary("all", 20, 9, 300.0, 200.0, None, (landmark,))
    summary = DurabilitySummary("os", 400.0, None, (group,))
    out = summary.to_json()
    assert list(out) == ["endpoint", "median_followup_days", "logrank_p", "groups"]
    assert list(out["groups"][0]) == [  # type: ignore[index]
        "group",
        "n",
        "events",
        "median_days",
        "median_ci_lower",
        "median_ci_upper",
        "landmarks",
    ]
    with_tests = dataclasses.replace(
        summary,
        groups=(dataclasses.replace(group, rmst=(Rmst(12, 300.5, 12.0),)),),
        tests=(GroupTest("logrank", None, 1.5, 1, 0.22),),
    )
    out = json.loads(json.dumps(with_tests.to_json()))
    assert out["tests"] == [
        {"method": "logrank", "cause": None, "statistic": 1.5, "df": 1, "p": 0.22}
    ]
    assert out["groups"][0]["rmst"] == [{"months": 12, "estimate": 300.5, "se": 12.0}]
    assert "pairwise" not in out and "hazard_ratios" not in out
