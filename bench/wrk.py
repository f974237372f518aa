"""Closed-loop HTTP load with wrk (C, one event loop per thread): every request the next pre-built body.

``bench/cycle_bodies.lua`` cycles through a file of ``<path> <JSON body>`` lines, so a run sends a
different patient on every request (the "new patient" load), one body again and again (the "repeated
record"), or chart sessions in order. wrk costs the shared two cores far less client CPU per request
than a Python client; where it is not installed (``apt-get install wrk``), ``bench.loadgen`` cycles
through the same bodies instead.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .loadgen import run_load

SCRIPT = Path(__file__).with_name("cycle_bodies.lua")

Line = tuple[str, bytes]  # (URL path, request body)


def available() -> str | None:
    """The wrk executable, if installed."""
    return shutil.which("wrk")


def write_lines(path: Path, lines: Sequence[Line]) -> Path:
    """The body file the Lua script reads: one ``<path> <body>`` per line."""
    with path.open("wb") as out:
        for url_path, body in lines:
            if b"\n" in body or " " in url_path:
                raise ValueError("a body line must be compact JSON and the path have no space")
            out.write(url_path.encode() + b" " + body + b"\n")
    return path


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(
    base_url: str,
    bodies_file: Path,
    lines: Sequence[Line],
    *,
    concurrency: int,
    seconds: float,
    offset: int = 0,
    group: int = 1,
) -> dict[str, Any]:
    """One closed-loop run; the figures of ``LoadResult.summary`` plus the client's CPU seconds.

    ``offset``: where in the file the run starts (the requests earlier runs sent); ``group``: lines that
    belong together (a chart session) and stay in order on one client thread."""
    exe = available()
    if exe is None:
        return _run_python(base_url, lines, concurrency=concurrency, seconds=seconds, offset=offset)
    threads = min(2, concurrency)
    env = {
        "BENCH_BODIES": str(bodies_file),
        "BENCH_OFFSET": str(offset),
        "BENCH_THREADS": str(threads),
        "BENCH_GROUP": str(group),
        "PATH": "/usr/bin:/bin",
    }
    cpu0 = _children_cpu()
    duration = f"{max(1, round(seconds))}s"  # wrk takes whole seconds
    done = subprocess.run(
        [exe, "-t", str(threads), "-c", str(concurrency), "-d", duration, "--timeout", "60s",
         "-s", str(SCRIPT), base_url],
        env=env, capture_output=True, text=True, timeout=seconds + 120, check=False,
    )  # fmt: skip
    client_cpu = _children_cpu() - cpu0
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr[-500:]} {done.stdout[-500:]}")
    raw = json.loads(line.removeprefix("BENCH_JSON "))
    wall = raw["duration_us"] / 1e6
    errors = sum(raw[k] for k in raw if k.startswith("errors_"))
    ok = raw["requests"] - raw["errors_status"]
    return {
        "client": "wrk",
        "concurrency": concurrency,
        "requests": ok,
        "errors": errors,
        "duration_s": round(wall, 3),
        "throughput_rps": round(ok / wall, 1) if wall else 0.0,
        "p50_ms": round(raw["p50_us"] / 1000, 2),
        "p95_ms": round(raw["p95_us"] / 1000, 2),
        "max_ms": round(raw["max_us"] / 1000, 2),
        "sent": raw["requests"],
        "client_cpu_s": client_cpu,
    }


def _run_python(
    base_url: str, lines: Sequence[Line], *, concurrency: int, seconds: float, offset: int
) -> dict[str, Any]:
    """The same cycling load from ``bench.loadgen`` (threads in this process)."""
    import time

    cpu0 = time.process_time()
    result = run_load(
        base_url, lines, concurrency=concurrency, max_requests=10**9, max_seconds=seconds, offset=offset
    )
    return {
        "client": "python",
        **result.summary(),
        "sent": result.ok + result.errors,
        "client_cpu_s": time.process_time() - cpu0,
    }
