"""Whole `ltfu` processes against a whole process that only reads the same CSVs with polars.

Issue 14's targets are stated this way: each command is its own process (start-up, imports,
reading the store, computing, printing), timed from the outside, with its peak RSS taken from
the kernel (`wait4`). Every ratio is given twice: wall-clock and CPU (user + system). On a
machine shared with other work the wall-clock ratio swings with the neighbours; the CPU ratio is
what the process itself costs.

    uv run python -m bench.processes [--sizes 10000,50000,200000] [--delta-stores 1000,100000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl

AS_OF = "2026-06-30"
LTFU = [sys.executable, "-m", "monitoring.cli"]
RAW_READ = (
    "import sys, polars as pl\n"
    "for path in sys.argv[1:]:\n"
    "    pl.read_csv(path, infer_schema=False)\n"
)
DELTA_VISITS = 1000


def run(argv: list[str], env: dict[str, str]) -> dict[str, float]:
    """Wall seconds, CPU seconds and peak RSS (MB) of one process; its output is discarded."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    stderr = proc.stderr.read() if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):  # 1: a rejected upload is a result too, but not in this bench
        raise RuntimeError(f"{' '.join(argv[2:])} exited {code}: {stderr[-2000:]}")
    return {
        "wall_s": round(wall, 3),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "exit": code,
    }


def best(argv: list[str], env: dict[str, str], repeat: int) -> dict[str, float]:
    runs = [run(argv, env) for _ in range(repeat)]
    return min(runs, key=lambda r: r["cpu_s"])


def _env(db: Path) -> dict[str, str]:
    return {**os.environ, "LTFU_DATABASE_URL": f"sqlite:///{db}", "PYTHONDONTWRITEBYTECODE": "1"}


def bench_commands(n: int, workdir: Path, repeat: int) -> dict[str, Any]:
    from monitoring.synthetic import make_cohort, write_csv

    folder = workdir / f"cmd-{n}"
    cohort = make_cohort(n, seed=11)
    paths = [str(p) for p in write_csv(cohort, folder)]
    out: dict[str, Any] = {"patients": n, "visits": cohort.visits.height}
    del cohort
    env = _env(folder / "store.db")
    stages: dict[str, dict[str, float]] = {}
    stages["raw_read"] = best([sys.executable, "-c", RAW_READ, *paths], env, repeat)
    stages["first_ingest"] = run([*LTFU, "ingest", *paths, "--user", "bench"], env)
    durability = [*LTFU, "durability", "--endpoint", "efs", "--summary", "--as-of", AS_OF]
    # the first read after a commit builds the columnar snapshot; later reads use it
    stages["durability_first_read"] = run(durability, env)
    stages["durability"] = best(durability, env, repeat)
    stages["alerts_json"] = best(
        [*LTFU, "alerts", "--format", "json", "--as-of", AS_OF], env, repeat
    )
    stages["status"] = best([*LTFU, "status"], env, repeat)
    stages["help"] = best([*LTFU, "--help"], env, repeat)
    floor = stages["raw_read"]
    for name, s in stages.items():
        s["x_wall"] = round(s["wall_s"] / floor["wall_s"], 2)
        s["x_cpu"] = round(s["cpu_s"] / floor["cpu_s"], 2)
        print(
            f"  {n:>7} {name:<22} {s['wall_s']:7.2f} s wall ({s['x_wall']:5.2f}×) "
            f"{s['cpu_s']:7.2f} s CPU ({s['x_cpu']:5.2f}×)  peak RSS {s['peak_rss_mb']:7.1f} MB",
            flush=True,
        )
    out["stages"] = stages
    shutil.rmtree(folder, ignore_errors=True)
    return out


def _delta_file(visits: pl.DataFrame, path: Path, seed: int) -> Path:
    """`DELTA_VISITS` stored visits of distinct patients with a changed comment."""
    first = visits.group_by("patient_id", maintain_order=True).head(1)
    if first.height < DELTA_VISITS:
        first = visits
    chosen = first.sample(DELTA_VISITS, seed=seed).with_columns(
        comment=pl.lit("delta upload: value reviewed")
    )
    chosen.write_csv(path)
    return path


def bench_delta(n: int, workdir: Path, repeat: int) -> dict[str, Any]:
    from monitoring.synthetic import make_cohort, write_csv

    folder = workdir / f"delta-{n}"
    cohort = make_cohort(n, seed=11)
    paths = [str(p) for p in write_csv(cohort, folder)]
    db = folder / "store.db"
    env = _env(db)
    run([*LTFU, "ingest", *paths, "--user", "bench"], env)
    runs = []
    for attempt in range(repeat):
        delta = _delta_file(cohort.visits, folder / f"delta-{attempt}.csv", seed=attempt)
        runs.append(run([*LTFU, "ingest", str(delta), "--user", "bench"], env))
    result = min(runs, key=lambda r: r["cpu_s"])
    print(
        f"  delta {DELTA_VISITS} visits into {n:>7} patients: {result['wall_s']:6.2f} s wall "
        f"{result['cpu_s']:6.2f} s CPU  peak RSS {result['peak_rss_mb']:7.1f} MB",
        flush=True,
    )
    shutil.rmtree(folder, ignore_errors=True)
    return {"store_patients": n, **result}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,50000,200000")
    parser.add_argument("--delta-stores", default="1000,100000")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--out", default="bench/processes.json")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="ltfu-bench-proc-"))
    try:
        results: dict[str, Any] = {
            "commands": [
                bench_commands(int(n), workdir, args.repeat) for n in args.sizes.split(",") if n
            ],
            "delta": [
                bench_delta(int(n), workdir, args.repeat) for n in args.delta_stores.split(",") if n
            ],
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if len(results["delta"]) == 2:
        small, large = results["delta"]
        results["delta_ratio_wall"] = round(large["wall_s"] / small["wall_s"], 2)
        results["delta_ratio_cpu"] = round(large["cpu_s"] / small["cpu_s"], 2)
        print(
            f"  delta into {large['store_patients']} vs {small['store_patients']}: "
            f"{results['delta_ratio_wall']}× wall, {results['delta_ratio_cpu']}× CPU",
            flush=True,
        )
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()


def markdown(results: dict[str, Any]) -> str:
    """The whole-process table of `results` (as written by `main`)."""
    names = ["first_ingest", "durability_first_read", "durability", "alerts_json", "status", "help"]
    lines = [
        "| patients | visits | raw read s (wall / CPU) | "
        + " | ".join(f"{n} ×raw (wall / CPU), peak RSS MB" for n in names)
        + " |",
        "|---" * (3 + len(names)) + "|",
    ]
    for size in results["commands"]:
        st = size["stages"]
        raw = st["raw_read"]
        cells = [
            f"{st[n]['x_wall']} / {st[n]['x_cpu']}, {st[n]['peak_rss_mb']:.0f}"
            for n in names
            if n in st
        ]
        lines.append(
            f"| {size['patients']:,} | {size['visits']:,} | {raw['wall_s']} / {raw['cpu_s']} | "
            + " | ".join(cells)
            + " |"
        )
    for delta in results.get("delta", []):
        lines.append(
            f"\nDelta upload of {DELTA_VISITS} changed visits into {delta['store_patients']:,} "
            f"patients: {delta['wall_s']} s wall, {delta['cpu_s']} s CPU, peak RSS "
            f"{delta['peak_rss_mb']} MB."
        )
    if "delta_ratio_cpu" in results:
        lines.append(
            f"\nDelta ratio (large store / small store): {results['delta_ratio_wall']}× wall, "
            f"{results['delta_ratio_cpu']}× CPU."
        )
    return "\n".join(lines) + "\n"
