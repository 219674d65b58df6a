"""`make bench`: whole `ltfu` processes against a whole process that only reads the same CSVs.

Issue 14's targets are stated this way: each command is its own process (start-up, imports,
reading the store, computing, printing), timed from the outside, with its true peak RSS from
the kernel (`bench/launch.py`: `wait4` of a child forked from a small launcher, so no figure
starts from the bench's own size). Every ratio is given twice: wall-clock and CPU (user +
system). On a machine shared with other work the wall-clock ratio swings with the neighbours;
the CPU ratio is what the process itself costs.

Stages per cohort size: the raw read (floor), first ingest, durability (first read after a
commit, which builds the columnar snapshot, then with it), status (first of the day after the
ingest, then again), alerts JSON as of today, alerts JSON as of a date nobody evaluated (every
rule), then again; status after an acknowledgement, a delta upload of changed visits and status
after it, status on a new day (yesterday's evaluation of the same data kept), status with no
evaluation kept at all, --help.
Then a delta upload of 1 000 changed visits into stores of two sizes, and the dashboard in
Chromium (first page after sign-in, then a filter change) at the dashboard sizes.

    uv run python -m bench.processes [--sizes 10000,50000] [--delta-stores 1000,100000]
                                     [--dashboard-at 10000,100000] [--repeat 2]
    LTFU_BENCH_SIZES=10000,50000,200000 make bench     # the registry size takes long
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

AS_OF = "2026-06-30"
LTFU = [sys.executable, "-m", "monitoring.cli"]
LAUNCH = [sys.executable, "-S", str(Path(__file__).with_name("launch.py"))]
RAW_READ = "import sys, polars as pl\nfor path in sys.argv[1:]:\n    pl.read_csv(path, infer_schema=False)\n"
DELTA_VISITS = 1000

# (stage, what the table calls it, issue 14's target as × the raw read)
STAGES: tuple[tuple[str, str, str], ...] = (
    ("first_ingest", "`ltfu ingest` (first ingest)", "≤ 8"),
    (
        "durability_first_read",
        "`durability --endpoint efs --summary`, first read after a commit",
        "",
    ),
    ("durability", "`durability --endpoint efs --summary`", "≤ 3"),
    ("status_first", "`status`, first of the day after a commit", "≤ 2"),
    ("status", "`status`, again", "≤ 2"),
    ("alerts_json_today", "`alerts --format json` as of today, after `status`", "≤ 4"),
    (
        "alerts_json_first",
        f"`alerts --format json --as-of {AS_OF}`, first evaluation of that date",
        "≤ 4",
    ),
    ("alerts_json", f"`alerts --format json --as-of {AS_OF}`, again", "≤ 4"),
    ("status_after_ack", "`status` after an acknowledgement", "≤ 2"),
    ("delta_ingest", f"`ltfu ingest` of {DELTA_VISITS} changed visits (delta)", ""),
    ("status_after_delta", "`status` after that delta upload", "≤ 2"),
    (
        "status_next_day",
        "`status` on a new day: yesterday's evaluation of the same data kept",
        "≤ 2",
    ),
    ("status_new_day", "`status` with no evaluation kept at all", "≤ 2"),
    ("help", "`ltfu --help`", ""),
)
# untimed steps between stages (each its own process, against the bench's store)
_ACKNOWLEDGE = """
import sys
from monitoring.alert_queue import acknowledge, alerts_with_status
from monitoring.store import Store
store = Store.open("sqlite:///" + sys.argv[1])
acknowledge(store, alerts_with_status(store).row(0, named=True)["alert_id"], "bench", "seen")
"""
# what a new day finds: no evaluation of the day kept (in the database, or the old file cache)
_FORGET_EVALUATIONS = """
import pathlib, sqlite3, sys
db = sys.argv[1]
with sqlite3.connect(db) as conn:
    try:
        conn.execute("DELETE FROM alert_evaluations")
    except sqlite3.OperationalError:
        pass
for path in pathlib.Path(db + ".columnar").glob("alerts-*"):
    path.unlink()
"""


def run(argv: list[str], env: dict[str, str], ok: tuple[int, ...] = (0,)) -> dict[str, float]:
    """Wall seconds, CPU seconds and true peak RSS (MB) of one process; output discarded."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
        report = Path(tmp.name)
    try:
        done = subprocess.run(
            [*LAUNCH, str(report), *argv],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
        if done.returncode != 0 or not report.stat().st_size:
            raise RuntimeError(f"launcher failed: {done.stderr[-2000:]}")
        result: dict[str, float] = json.loads(report.read_text(encoding="utf-8"))
    finally:
        report.unlink(missing_ok=True)
    if result["exit"] not in ok:
        raise RuntimeError(f"{' '.join(argv[2:])} exited {result['exit']}: {done.stderr[-2000:]}")
    return result


def best(argv: list[str], env: dict[str, str], repeat: int) -> dict[str, float]:
    runs = [run(argv, env) for _ in range(repeat)]
    return min(runs, key=lambda r: r["cpu_s"])


def _env(db: Path) -> dict[str, str]:
    return {**os.environ, "LTFU_DATABASE_URL": f"sqlite:///{db}"}


def _cohort(n: int, folder: Path) -> list[str]:
    """patients.csv and visits.csv of the seeded synthetic cohort, made by its own process."""
    subprocess.run(
        [*LTFU, "demo", "--patients", str(n), "--seed", "11", "--out", str(folder)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return [str(folder / "patients.csv"), str(folder / "visits.csv")]


def _print_stage(n: int, name: str, s: dict[str, float]) -> None:
    ratio = f" ({s['x_wall']:5.2f}× / {s['x_cpu']:5.2f}×)" if "x_wall" in s else ""
    print(
        f"  {n:>7} {name:<22} {s['wall_s']:7.2f} s wall {s['cpu_s']:7.2f} s CPU{ratio}"
        f"  peak RSS {s['peak_rss_mb']:7.1f} MB",
        flush=True,
    )


def bench_commands(n: int, workdir: Path, repeat: int) -> dict[str, Any]:
    folder = workdir / f"cmd-{n}"
    paths = _cohort(n, folder)
    with open(paths[1], encoding="utf-8") as f:
        visits = sum(1 for _ in f) - 1
    out: dict[str, Any] = {"patients": n, "visits": visits, "store": str(folder / "store.db")}
    env = _env(folder / "store.db")
    stages: dict[str, dict[str, float]] = {}
    stages["raw_read"] = best([sys.executable, "-c", RAW_READ, *paths], env, repeat)
    stages["first_ingest"] = run([*LTFU, "ingest", *paths, "--user", "bench"], env)
    durability = [*LTFU, "durability", "--endpoint", "efs", "--summary", "--as-of", AS_OF]
    stages["durability_first_read"] = run(durability, env)  # builds the columnar snapshot
    stages["durability"] = best(durability, env, repeat)
    status = [*LTFU, "status"]
    stages["status_first"] = run(status, env)  # today: only the ingest may have evaluated
    stages["status"] = best(status, env, repeat)
    stages["alerts_json_today"] = run([*LTFU, "alerts", "--format", "json"], env)
    alerts = [*LTFU, "alerts", "--format", "json", "--as-of", AS_OF]
    stages["alerts_json_first"] = run(alerts, env)  # a date nobody evaluated: every rule
    stages["alerts_json"] = best(alerts, env, repeat)
    db = str(folder / "store.db")
    subprocess.run([sys.executable, "-c", _ACKNOWLEDGE, db], env=env, check=True)
    stages["status_after_ack"] = run(status, env)
    delta = _delta_file(paths[1], folder / "delta.csv", seed=99)
    stages["delta_ingest"] = run([*LTFU, "ingest", str(delta), "--user", "bench"], env)
    stages["status_after_delta"] = run(status, env)
    subprocess.run([sys.executable, "-c", _FORGET_EVALUATIONS, db], env=env, check=True)
    yesterday = (date.today() - timedelta(days=1)).isoformat()
    run([*LTFU, "alerts", "--format", "json", "--as-of", yesterday], env)  # untimed
    stages["status_next_day"] = run(status, env)
    subprocess.run([sys.executable, "-c", _FORGET_EVALUATIONS, db], env=env, check=True)
    stages["status_new_day"] = run(status, env)
    stages["help"] = best([*LTFU, "--help"], env, repeat)
    floor = stages["raw_read"]
    for name, s in stages.items():
        s["x_wall"] = round(s["wall_s"] / floor["wall_s"], 2)
        s["x_cpu"] = round(s["cpu_s"] / floor["cpu_s"], 2)
        _print_stage(n, name, s)
    out["stages"] = stages
    return out


def _delta_file(visits_csv: str, path: Path, seed: int) -> Path:
    """`DELTA_VISITS` stored visits of distinct patients with a changed comment."""
    import polars as pl

    visits = pl.read_csv(visits_csv, infer_schema=False)
    first = visits.group_by("patient_id", maintain_order=True).head(1)
    if first.height < DELTA_VISITS:
        first = visits
    first.sample(DELTA_VISITS, seed=seed).with_columns(
        comment=pl.lit("delta upload: value reviewed")
    ).write_csv(path)
    return path


def bench_delta(n: int, workdir: Path, repeat: int) -> dict[str, Any]:
    folder = workdir / f"delta-{n}"
    paths = _cohort(n, folder)
    db = folder / "store.db"
    env = _env(db)
    run([*LTFU, "ingest", *paths, "--user", "bench"], env)
    runs = []
    for attempt in range(repeat):
        delta = _delta_file(paths[1], folder / f"delta-{attempt}.csv", seed=attempt)
        runs.append(run([*LTFU, "ingest", str(delta), "--user", "bench"], env))
    result = min(runs, key=lambda r: r["cpu_s"])
    print(
        f"  delta {DELTA_VISITS} visits into {n:>7} patients: {result['wall_s']:6.2f} s wall "
        f"{result['cpu_s']:6.2f} s CPU  peak RSS {result['peak_rss_mb']:7.1f} MB",
        flush=True,
    )
    return {"store_patients": n, "store": str(db), **result}


def _store_of(n: int, results: dict[str, Any], workdir: Path) -> Path:
    for entry in [*results["commands"], *results["delta"]]:
        if n in (entry.get("patients"), entry.get("store_patients")):
            return Path(entry["store"])
    folder = workdir / f"dash-{n}"
    paths = _cohort(n, folder)
    run([*LTFU, "ingest", *paths, "--user", "bench"], _env(folder / "store.db"))
    return folder / "store.db"


def machine() -> str:
    cpu = ""
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}, "
        f"CPython {platform.python_version()}; load average at the end {load}"
    )


def main() -> None:
    env_sizes = os.environ.get("LTFU_BENCH_SIZES")
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default=env_sizes or "10000,50000")
    parser.add_argument("--delta-stores", default=os.environ.get("LTFU_BENCH_DELTA", "1000,100000"))
    parser.add_argument(
        "--dashboard-at", default=os.environ.get("LTFU_BENCH_DASHBOARD", "10000,100000")
    )
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--out", default="bench/processes.json")
    parser.add_argument("--markdown", default="bench/processes.md")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="ltfu-bench-proc-"))
    started = time.perf_counter()
    results: dict[str, Any] = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}
    try:
        results["commands"] = [
            bench_commands(int(n), workdir, args.repeat) for n in args.sizes.split(",") if n
        ]
        results["delta"] = [
            bench_delta(int(n), workdir, args.repeat) for n in args.delta_stores.split(",") if n
        ]
        if len(results["delta"]) == 2:
            small, large = results["delta"]
            results["delta_ratio_wall"] = round(large["wall_s"] / small["wall_s"], 2)
            results["delta_ratio_cpu"] = round(large["cpu_s"] / small["cpu_s"], 2)
        results["dashboard"] = []
        if args.dashboard_at:
            from bench.browser import dashboard_times

            for n in (int(x) for x in args.dashboard_at.split(",") if x):
                timing = dashboard_times(_store_of(n, results, workdir), n)
                results["dashboard"].append(timing)
                print(f"  dashboard {n}: {timing}", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results["machine"] = machine()
    results["bench_seconds"] = round(time.perf_counter() - started)
    for entry in [*results["commands"], *results["delta"]]:
        entry.pop("store", None)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    table = markdown(results)
    Path(args.markdown).write_text(table, encoding="utf-8")
    print("\n" + table)


def markdown(results: dict[str, Any]) -> str:
    """Issue 14's table: × the raw read (wall / CPU) and true peak RSS per stage and size."""
    sizes = results["commands"]
    head = " | ".join(f"{s['patients']:,} patients ({s['visits']:,} visits)" for s in sizes)
    lines = [
        f"Machine: {results['machine']}. Run {results['date']}, {results['bench_seconds']} s.",
        "",
        "× the raw read of the same CSVs (wall / CPU), true peak RSS of the process:",
        "",
        f"| command | target | {head} |",
        "|---|---|" + "---|" * len(sizes),
        "| raw read (`polars.read_csv`, whole process) | | "
        + " | ".join(
            f"{s['stages']['raw_read']['wall_s']} s / {s['stages']['raw_read']['cpu_s']} s, "
            f"{s['stages']['raw_read']['peak_rss_mb']:.0f} MB"
            for s in sizes
        )
        + " |",
    ]
    for key, label, target in STAGES:
        cells = []
        for s in sizes:
            st = s["stages"].get(key)
            cells.append(
                "–" if st is None else f"{st['x_wall']} / {st['x_cpu']}, {st['peak_rss_mb']:.0f} MB"
            )
        lines.append(f"| {label} | {target} | " + " | ".join(cells) + " |")
    if results.get("delta"):
        lines += ["", "Delta upload of 1 000 changed visits (`ltfu ingest delta.csv`):", ""]
        lines += ["| store | wall s | CPU s | peak RSS MB |", "|---|---|---|---|"]
        for d in results["delta"]:
            lines.append(
                f"| {d['store_patients']:,} patients | {d['wall_s']} | {d['cpu_s']} | "
                f"{d['peak_rss_mb']:.0f} |"
            )
    if "delta_ratio_cpu" in results:
        lines.append(
            f"\nLarge store / small store: {results['delta_ratio_wall']}× wall, "
            f"{results['delta_ratio_cpu']}× CPU (target ≤ 1.5×)."
        )
    if results.get("dashboard"):
        lines += [
            "",
            "Dashboard in Chromium (headless; seconds; targets at 100 000 patients: first page "
            "≤ 1.5 s, filter change ≤ 0.5 s):",
            "",
            "| patients | first page after sign-in: content shown | script done | "
            "filter change: script done | after a commit, once warmed: content / done / filter "
            "| commit → warmed |",
            "|---|---|---|---|---|---|",
        ]
        for d in results["dashboard"]:
            lines.append(
                f"| {d['patients']:,} | {d.get('first_content_s', '–')} | "
                f"{d.get('first_done_s', '–')} | {d.get('filter_done_s', '–')} | "
                f"{d.get('after_commit_s', '–')} | {d.get('commit_ready_s', '–')} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
