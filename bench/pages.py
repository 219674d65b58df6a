"""Render times of dashboard pages at a given cohort size (Streamlit AppTest, in process).

The first render includes loading the store and computing (cached on the data version); the
repeated renders are what a user waits for when moving around or changing a widget.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Any

PAGES = {
    "durability": "views/durability.py",
    "alerts": "views/alerts.py",
    "overview": "views/overview.py",
}
APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")


def render_times(n: int, workdir: Path, repeats: int = 5) -> dict[str, Any]:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from monitoring import accounts
    from monitoring.ingest import ingest_files
    from monitoring.store import Store
    from monitoring.synthetic import make_cohort, write_csv

    folder = workdir / f"pages-{n}"
    url = f"sqlite:///{folder / 'store.db'}"
    paths = write_csv(make_cohort(n, seed=11), folder)
    store = Store.open(url)
    ingest_files(store, list(paths), user="bench")
    accounts.add_user(store, "bench-admin", "admin", "a long bench password")
    os.environ["LTFU_DATABASE_URL"] = url
    results: dict[str, Any] = {"patients": n}
    try:
        for name, script in PAGES.items():
            st.cache_data.clear()
            st.cache_resource.clear()
            at = AppTest.from_file(APP, default_timeout=600)
            at.session_state["ltfu_token"] = accounts.create_session(store, "bench-admin")
            at.switch_page(script)
            started = time.perf_counter()
            at.run()
            first = time.perf_counter() - started
            assert not at.exception, [e.value for e in at.exception]
            repeated = []
            for _ in range(repeats):
                started = time.perf_counter()
                at.run()
                repeated.append(time.perf_counter() - started)
            results[name] = {
                "first_seconds": round(first, 3),
                "repeated_median_seconds": round(statistics.median(repeated), 3),
                "repeated_max_seconds": round(max(repeated), 3),
            }
            print(
                f"  page {name:<11} first {first:6.2f} s   repeated median {statistics.median(repeated):6.3f} s",
                flush=True,
            )
    finally:
        os.environ.pop("LTFU_DATABASE_URL", None)
        store.close()
    return results
