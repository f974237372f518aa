"""``python -m bench``: run the whole benchmark, print markdown tables, write the JSON results.

python -m bench                  # full run (< 5 min on 2 cores)
python -m bench --quick          # smoke mode: N=10, a few requests, no fallback, cold start or memory
python -m bench --out my.json    # results elsewhere (default bench/results/latest.json)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import scenarios, synthea
from .generate import DEFAULT_SEED, NOW, SIZES
from .report import check_targets, render
from .servers import REPO, WorkerSetup

DEFAULT_OUT = REPO / "bench" / "results" / "latest.json"


def _sizes(text: str) -> tuple[int, ...]:
    return tuple(int(s) for s in text.split(",") if s.strip())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick", action="store_true", help="tiny smoke run: N=10, few requests, no fallback/memory"
    )
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file (default: %(default)s)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--sizes", type=_sizes, help="in-process sizes (default 10,200,2000,5000)")
    p.add_argument("--http-sizes", type=_sizes, help="HTTP sizes (default 200,2000)")
    p.add_argument("--http-seconds", type=float, help="seconds per HTTP run (default 6 for N<=200, else 4)")
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers for service and ceiling")
    p.add_argument("--threads", type=int, default=2, help="gunicorn threads per worker")
    p.add_argument("--fallback-n", type=int, default=200)
    p.add_argument("--fallback-repeats", type=int, default=25)
    p.add_argument("--memory-n", type=int, default=200, help="resources per new patient in the memory run")
    p.add_argument(
        "--new-patients", type=int, default=300, help="pool patients evaluated in process (20 warm up)"
    )
    p.add_argument("--memory-requests", type=int, default=50_000)
    p.add_argument("--memory-seconds", type=float, default=720.0, help="time limit of the memory run")
    p.add_argument("--cold-repeats", type=int, default=3, help="fresh workers started for the cold-start run")
    p.add_argument(
        "--replay-delay-ms", type=float, default=20.0, help="per-request delay of the replay server"
    )
    p.add_argument("--no-http", action="store_true")
    p.add_argument("--no-fallback", action="store_true")
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--no-cold", action="store_true")
    p.add_argument("--no-synthea", action="store_true", help="skip screening the Synthea adults")
    p.add_argument(
        "--synthea-file",
        type=Path,
        default=synthea.DEFAULT_RECORDS,
        help="gzipped JSON list of Synthea transaction Bundles (default: the test suite's)",
    )
    return p.parse_args(argv)


def _git(*args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip()


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    quick = args.quick
    sizes = args.sizes or ((10,) if quick else SIZES)
    http_sizes = args.http_sizes or ((10,) if quick else (200, 2000))
    setup = WorkerSetup(workers=args.workers, threads=args.threads)
    knowledge = scenarios.knowledge()
    results: dict[str, Any] = {
        "meta": {
            "commit": _git("rev-parse", "--short", "HEAD") or "unknown",
            "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "loadavg_start": [round(x, 2) for x in os.getloadavg()],
            "command": " ".join(
                ["python -m bench", *(sys.argv[1:] if sys.argv[0].endswith("bench") else [])]
            ),
            "quick": quick,
            "seed": args.seed,
            "worker_setup": setup.describe(),
        }
    }
    log("checking the generator (determinism, identical cards at every N)")
    results["generator"] = scenarios.check_generator(sizes, args.seed, knowledge)
    results["in_process"] = scenarios.inprocess(
        sizes, args.seed, knowledge, scenarios.inprocess_plan(quick), log
    )
    new_n = 10 if quick else 200
    new_count = 25 if quick else args.new_patients
    results["in_process_new_patients"] = {
        "n": new_n,
        **scenarios.inprocess_new_patients(
            scenarios.pool_bodies(new_count, new_n, args.seed, NOW), knowledge, log, warm=5 if quick else 20
        ),
    }
    results["http"] = None
    results["fallback"] = None
    results["memory"] = None
    results["cold_start"] = None
    results["synthea"] = None
    workdir = Path(tempfile.mkdtemp(prefix="cds-bench-"))
    try:
        if not args.no_http:
            plan = scenarios.http_plan(http_sizes, quick, args.http_seconds)
            fallback = None
            if not (quick or args.no_fallback):

                def fallback(service_url: str) -> dict[str, Any]:
                    return scenarios.fallback_bench(
                        service_url,
                        args.fallback_n,
                        args.seed,
                        args.fallback_repeats,
                        knowledge,
                        workdir,
                        log,
                        replay_delay_ms=args.replay_delay_ms,
                    )

            results["http"], results["fallback"] = scenarios.http_bench(
                plan, setup, args.seed, knowledge, workdir, log, fallback
            )
        if not (quick or args.no_cold):
            results["cold_start"] = {
                "warm_up_on": scenarios.cold_start_bench(200, args.seed, args.cold_repeats, 30, workdir, log),
                "warm_up_off": scenarios.cold_start_bench(
                    200, args.seed, max(1, args.cold_repeats - 1), 30, workdir, log, warm_up=False
                ),
            }
        if not (quick or args.no_memory):
            checkpoints = tuple(
                c
                for c in (100, 1000, 5000, 10_000, 25_000, args.memory_requests)
                if c <= args.memory_requests
            )
            results["memory"] = scenarios.memory_bench(
                args.memory_n,
                tuple(sorted(set(checkpoints))),
                args.seed,
                args.threads,
                args.memory_seconds,
                workdir,
                log,
            )
        if not (quick or args.no_synthea):
            results["synthea"] = synthea.synthea_bench(args.synthea_file, knowledge, workdir, log)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results["targets"] = check_targets(results)
    results["meta"]["seconds"] = round(time.perf_counter() - started, 1)
    results["meta"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so every server started here is stopped by its ``finally``.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    results = run(args)
    print(render(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=2)
    args.out.write_text(text + "\n")
    if args.out.resolve() == DEFAULT_OUT.resolve():
        # Keep one file per run next to latest.json, for comparisons across commits.
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        (args.out.parent / f"{stamp}-{results['meta']['commit']}.json").write_text(text + "\n")
    log(f"results written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
