"""Saved mapping profiles: versioned, never overwritten, audited."""

from __future__ import annotations

import json

import pytest

from monitoring.errors import NotFoundError
from monitoring.store import Store
from monitoring.store.profiles import get_profile, latest_profiles, profile_versions, save_profile


def test_each_save_is_a_new_audited_version(store: Store) -> None:
    first = save_profile(store, "lab", "a = 1\n", user="dm")
    same = save_profile(store, "lab", "a = 1\n", user="dm")
    second = save_profile(store, "lab", "a = 2\n", user="admin")
    save_profile(store, "redcap", "b = 1\n", user="dm")
    assert (first.version, same.version, second.version) == (1, 1, 2)
    assert [p.text for p in profile_versions(store, "lab")] == ["a = 1\n", "a = 2\n"]
    assert [(p.name, p.version) for p in latest_profiles(store)] == [("lab", 2), ("redcap", 1)]
    assert get_profile(store, "lab", 1).text == "a = 1\n"
    saves = store.audit_log().filter(store.audit_log()["action"] == "profile_saved")
    details = [json.loads(d) for d in saves["detail"].to_list()]
    assert sorted((d["profile"], d["version"]) for d in details) == [
        ("lab", 1),
        ("lab", 2),
        ("redcap", 1),
    ]
    with pytest.raises(NotFoundError, match="no saved profile named 'x'"):
        get_profile(store, "x")
