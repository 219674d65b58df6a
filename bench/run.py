"""`make bench`: ltfu's costs from clinic to registry scale, measured.

For synthetic cohorts of 1 000, 10 000 and 100 000 patients written as CSV, times and peak memory
(RSS) of every stage: read, parse, validate, write to the store, load from the store, derive
outcomes, all six endpoints, all alerts. Every stage is also given as a ratio to polars' plain
`read_csv` of the same files (the floor). The Durability and Alerts pages are rendered at 10 000
patients (first and repeated run). Where R is installed, the same Kaplan–Meier is timed with
`survfit`. Writes bench/results.json and bench/results.md.

    uv run python -m bench.run [--sizes 1000,10000,100000] [--out bench]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from monitoring.analysis_registry import ENDPOINTS

AS_OF = date(2026, 6, 30)


def _rss_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class PeakSampler:
    """Samples the process RSS every 5 ms; `peak` is the highest seen since `reset`."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_bytes())
            time.sleep(0.005)

    def reset(self) -> None:
        self.peak = _rss_bytes()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


@contextmanager
def stage(results: dict[str, Any], name: str, sampler: PeakSampler) -> Iterator[None]:
    gc.collect()
    sampler.reset()
    started = time.perf_counter()
    yield
    seconds = time.perf_counter() - started
    results[name] = {
        "seconds": round(seconds, 4),
        "peak_rss_mb": round(max(sampler.peak, _rss_bytes()) / 1e6, 1),
    }
    print(
        f"  {name:<22} {seconds:8.2f} s  peak RSS {results[name]['peak_rss_mb']:8.1f} MB",
        flush=True,
    )


def _best_of(fn: Callable[[], object], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def bench_size(n: int, workdir: Path, sampler: PeakSampler) -> dict[str, Any]:
    from monitoring.alerts import evaluate_alerts
    from monitoring.durability import durability_summary, durability_table
    from monitoring.ingest import ROW_COLUMN
    from monitoring.ingest.changes import compute_changes
    from monitoring.ingest.parse import parse_columns
    from monitoring.ingest.read import read_table
    from monitoring.ingest.validate import (
        ParsedFile,
        _file_rules,
        _file_warnings,
        _header_problems,
        _pandera_problems,
        cross_table_problems,
        detect_kind,
    )
    from monitoring.outcomes import derive_outcomes
    from monitoring.schemas import COLUMNS
    from monitoring.store import Store
    from monitoring.synthetic import make_cohort, write_csv

    print(f"\n{n} patients", flush=True)
    folder = workdir / str(n)
    started = time.perf_counter()
    cohort = make_cohort(n, seed=11)
    paths = write_csv(cohort, folder)
    generate_seconds = time.perf_counter() - started
    result: dict[str, Any] = {
        "patients": cohort.patients.height,
        "visits": cohort.visits.height,
        "csv_mb": round(sum(p.stat().st_size for p in paths) / 1e6, 1),
        "generate_seconds": round(generate_seconds, 2),
        "stages": {},
    }
    del cohort
    stages = result["stages"]
    floor = _best_of(lambda: [pl.read_csv(p, infer_schema=False) for p in paths])
    result["floor_read_csv_seconds"] = round(floor, 4)
    print(f"  floor: polars read_csv {floor:.3f} s", flush=True)

    with stage(stages, "read", sampler):
        raws = [read_table(p) for p in paths]
    with stage(stages, "parse", sampler):
        parsed_frames = []
        for raw in raws:
            kind = detect_kind(raw, None)
            typed, problems = parse_columns(
                raw.frame,
                COLUMNS[kind],
                native_dates=raw.native_dates,
                decimal_comma=raw.decimal_comma,
            )
            parsed_frames.append((raw, kind, typed, problems))
    db = folder / "store.db"
    if db.exists():
        db.unlink()
    store = Store.open(f"sqlite:///{db}")
    with stage(stages, "validate", sampler):
        files = []
        for raw, kind, typed, _problems in parsed_frames:
            _header_problems(raw, kind)
            _pandera_problems(typed, kind, raw.frame)
            _file_rules(typed, kind)
            _file_warnings(typed, kind)
            files.append(ParsedFile(raw.name, kind, raw.sha256, typed))
        _v, stored_p, stored_v = store.snapshot()
        cross = cross_table_problems(files, stored_p, stored_v, today=date.today())
        assert cross.filter(pl.col("severity") == "error").height == 0, cross.head()
    with stage(stages, "write", sampler):
        changes = [
            (
                f.name,
                f.sha256,
                compute_changes(
                    f.kind, f.frame.drop(ROW_COLUMN), stored_p if f.kind == "patients" else stored_v
                ),
            )
            for f in files
        ]
        store.apply_upload(changes, user="bench")
    del raws, parsed_frames, files, changes
    with stage(stages, "load", sampler):
        _version, patients, visits = store.snapshot()
    with stage(stages, "outcomes", sampler):
        outcomes = derive_outcomes(patients, visits, as_of=AS_OF)
    with stage(stages, "endpoints", sampler):
        for endpoint in ENDPOINTS:
            durability_table(patients, visits, endpoint, as_of=AS_OF, outcomes=outcomes)
            durability_summary(patients, visits, endpoint, as_of=AS_OF, outcomes=outcomes)
    with stage(stages, "alerts", sampler):
        alerts = evaluate_alerts(patients, visits, as_of=AS_OF, outcomes=outcomes)
    result["alerts"] = alerts.height
    store.close()

    ingest = sum(stages[s]["seconds"] for s in ("read", "parse", "validate", "write"))
    analysis = sum(stages[s]["seconds"] for s in ("outcomes", "endpoints", "alerts"))
    result["ingest_seconds"] = round(ingest, 3)
    result["analysis_seconds"] = round(analysis, 3)
    result["ingest_x_floor"] = round(ingest / floor, 1)
    result["analysis_x_floor"] = round(analysis / floor, 1)
    result["peak_rss_mb"] = max(s["peak_rss_mb"] for s in stages.values())
    for s in stages.values():
        s["x_floor"] = round(s["seconds"] / floor, 2)
    result["r_survfit"] = _r_peer(patients, visits, folder)
    return result


def _r_peer(patients: pl.DataFrame, visits: pl.DataFrame, folder: Path) -> dict[str, Any] | None:
    """The same KM (os) with R survfit, where R is installed."""
    from monitoring import survival
    from monitoring.endpoints import endpoint_frame
    from monitoring.outcomes import derive_outcomes

    rscript = shutil.which("Rscript")
    frame = endpoint_frame(derive_outcomes(patients, visits, as_of=AS_OF), "os")
    ours = _best_of(lambda: survival.km_table(frame["time_days"], frame["event"]), repeat=5)
    peer: dict[str, Any] = {"ltfu_km_seconds": round(ours, 4), "r_survfit_seconds": None}
    if not rscript:
        return peer
    data = folder / "os.csv"
    frame.select("time_days", pl.col("event").cast(pl.Int8)).write_csv(data)
    script = (
        "suppressMessages(library(survival)); d <- read.csv(commandArgs(TRUE)[1]);"
        "best <- Inf; for (i in 1:5) { t <- system.time(f <- survfit(Surv(time_days, event) ~ 1, data=d, conf.type='log-log'))[['elapsed']]; best <- min(best, t) };"
        "cat(best)"
    )
    out = subprocess.run(
        [rscript, "-e", script, str(data)], capture_output=True, text=True, check=False
    )
    if out.returncode == 0:
        peer["r_survfit_seconds"] = float(out.stdout.strip().split()[-1])
    return peer


def bench_pages(n: int, sampler: PeakSampler, workdir: Path) -> dict[str, Any]:
    """First and repeated render of the Durability and Alerts pages (Streamlit AppTest)."""
    try:
        from bench.pages import render_times
    except ImportError as exc:  # the dashboard is not there yet
        return {"skipped": str(exc)}
    return render_times(n, workdir)


def _one_size(n: int) -> None:
    import sys

    sampler = PeakSampler()
    workdir = Path(tempfile.mkdtemp(prefix="ltfu-bench-"))
    try:
        # a one-off cost per process, reported apart from the per-stage times
        started = time.perf_counter()
        import pandera.polars  # noqa: F401

        import_seconds = time.perf_counter() - started
        result = bench_size(n, workdir, sampler)
        result["pandera_import_seconds"] = round(import_seconds, 2)
    finally:
        sampler.close()
        shutil.rmtree(workdir, ignore_errors=True)
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")


def _size_in_subprocess(n: int) -> dict[str, Any]:
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--one", str(n)],
        capture_output=True,
        text=True,
        check=True,
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            print(
                "\n".join(x for x in proc.stdout.splitlines() if not x.startswith("RESULT ")),
                flush=True,
            )
            return dict(json.loads(line.removeprefix("RESULT ")))
    raise RuntimeError(f"bench of {n} patients printed no result:\n{proc.stderr[-2000:]}")


def _markdown(results: dict[str, Any]) -> str:
    stage_names = ["read", "parse", "validate", "write", "load", "outcomes", "endpoints", "alerts"]
    lines = [
        "# ltfu benchmark",
        "",
        f"Machine: {results['machine']}. Run: `make bench` ({results['date']}).",
        "",
        "| patients | visits | CSV MB | floor read_csv s | "
        + " | ".join(f"{s} s (×floor)" for s in stage_names)
        + " | ingest ×floor | analysis ×floor | peak RSS MB |",
        "|---" * (8 + len(stage_names)) + "|",
    ]
    for size in results["sizes"]:
        st = size["stages"]
        cells = [f"{st[s]['seconds']:.2f} ({st[s]['x_floor']:.1f})" for s in stage_names]
        lines.append(
            f"| {size['patients']:,} | {size['visits']:,} | {size['csv_mb']} | {size['floor_read_csv_seconds']:.3f} | "
            + " | ".join(cells)
            + f" | {size['ingest_x_floor']} | {size['analysis_x_floor']} | {size['peak_rss_mb']} |"
        )
    lines += [
        "",
        "Kaplan–Meier of `os` (best of 5):",
        "",
        "| patients | ltfu km_table s | R survfit s |",
        "|---|---|---|",
    ]
    for size in results["sizes"]:
        peer = size.get("r_survfit") or {}
        lines.append(
            f"| {size['patients']:,} | {peer.get('ltfu_km_seconds')} | {peer.get('r_survfit_seconds', 'R not installed')} |"
        )
    pages = results.get("pages", {})
    lines += [
        "",
        "Page renders (Streamlit AppTest):",
        "",
        "```",
        json.dumps(pages, indent=2),
        "```",
    ]
    if results.get("scaling"):
        lines += [
            "",
            "Scaling (10× data → × time):",
            "",
            "```",
            json.dumps(results["scaling"], indent=2),
            "```",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    # 200 000 patients ≈ 2.4 M visits: the registry row count the targets are stated for
    # (the calibrated cohort has about 12 visits per patient, not 25)
    parser.add_argument("--sizes", default="1000,10000,100000,200000")
    parser.add_argument("--out", default="bench")
    parser.add_argument("--pages-at", type=int, default=10000)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # one size, JSON on stdout
    args = parser.parse_args()
    if args.one:
        _one_size(args.one)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sampler = PeakSampler()
    workdir = Path(tempfile.mkdtemp(prefix="ltfu-bench-"))
    try:
        results: dict[str, Any] = {
            "date": date.today().isoformat(),
            "machine": f"{os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}, polars {pl.__version__}",
            # each size in a fresh process, so that its peak memory is its own
            "sizes": [_size_in_subprocess(n) for n in sizes],
        }
        scaling = {}
        for small, large in zip(results["sizes"], results["sizes"][1:], strict=False):
            key = f"{small['patients']}→{large['patients']}"
            scaling[key] = {
                "ingest": round(large["ingest_seconds"] / small["ingest_seconds"], 1),
                "analysis": round(large["analysis_seconds"] / small["analysis_seconds"], 1),
            }
        results["scaling"] = scaling
        results["pages"] = bench_pages(args.pages_at, sampler, workdir)
    finally:
        sampler.close()
        shutil.rmtree(workdir, ignore_errors=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (out / "results.md").write_text(_markdown(results), encoding="utf-8")
    print((out / "results.md").read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
