"""A small closed-loop HTTP load generator: C threads, one keep-alive connection each, loopback only.

Each thread sends the same POST body back to back, or (given ``(path, body)`` lines) the next line of a
shared cycle, so that every request can be a different patient. A run stops by itself at
``max_requests`` or after ``max_seconds``, whichever comes first, after an unrecorded warm-up.
"""

from __future__ import annotations

import contextlib
import http.client
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


@dataclass
class LoadResult:
    """Latencies (seconds) of the successful requests of a run, its wall time and its failures."""

    concurrency: int
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)
    statuses: dict[int, int] = field(default_factory=dict)
    wall: float = 0.0
    first_body: bytes = b""

    @property
    def ok(self) -> int:
        return len(self.latencies)

    @property
    def throughput(self) -> float:
        return self.ok / self.wall if self.wall > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "concurrency": self.concurrency,
            "requests": self.ok,
            "errors": self.errors,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "error_kinds": dict(self.error_kinds),
            "duration_s": round(self.wall, 3),
            "throughput_rps": round(self.throughput, 1),
            "p50_ms": round(percentile(self.latencies, 50) * 1000, 2),
            "p95_ms": round(percentile(self.latencies, 95) * 1000, 2),
            "max_ms": round(max(self.latencies, default=0.0) * 1000, 2),
        }


def percentile(values: list[float], p: float) -> float:
    """Linear-interpolated percentile (as numpy's default); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


class _Client:
    """One persistent HTTP/1.1 connection; reconnects after an error."""

    def __init__(self, url: str, timeout: float) -> None:
        parts = urlsplit(url)
        if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the load generator only targets the loopback interface")
        self.host, self.port, self.path = parts.hostname, parts.port or 80, parts.path or "/"
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None

    def post(self, body: bytes, headers: dict[str, str], path: str | None = None) -> tuple[int, bytes]:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            self.conn.request("POST", path or self.path, body=body, headers=headers)
            response = self.conn.getresponse()
            data = response.read()
            if response.will_close:
                self.close()
            return response.status, data
        except (OSError, http.client.HTTPException):
            self.close()
            raise

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def run_load(
    url: str,
    body: bytes | Sequence[tuple[str, bytes]],
    *,
    concurrency: int,
    max_requests: int,
    max_seconds: float,
    warmup_requests: int = 0,
    timeout: float = 60.0,
    offset: int = 0,
) -> LoadResult:
    """Closed loop: ``concurrency`` threads, each sending the next request when the last answered.

    ``body`` is one body for ``url``, or ``(path, body)`` lines on the server ``url`` sent in turn from
    line ``offset`` on (warm-up requests then send the first line)."""
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    lines: list[tuple[str | None, bytes]] = (
        [(None, body)] if isinstance(body, bytes) else [(path, data) for path, data in body]
    )
    result = LoadResult(concurrency=concurrency)
    lock = threading.Lock()
    issued = 0
    clock = {"start": 0.0, "deadline": 0.0}

    def open_gate() -> None:  # run once, before any thread passes the barrier
        clock["start"] = time.perf_counter()
        clock["deadline"] = clock["start"] + max_seconds

    barrier = threading.Barrier(concurrency + 1, action=open_gate)

    def worker() -> None:
        nonlocal issued
        client = _Client(url, timeout)
        try:
            for _ in range(warmup_requests):
                with contextlib.suppress(OSError, http.client.HTTPException):
                    client.post(lines[0][1], headers, lines[0][0])
            barrier.wait()
            while True:
                with lock:
                    if issued >= max_requests or time.perf_counter() >= clock["deadline"]:
                        return
                    path, data = lines[(offset + issued) % len(lines)]
                    issued += 1
                start = time.perf_counter()
                try:
                    status, data = client.post(data, headers, path)
                except (OSError, http.client.HTTPException) as exc:
                    with lock:
                        result.errors += 1
                        kind = f"{type(exc).__name__}: {exc}"[:120]
                        result.error_kinds[kind] = result.error_kinds.get(kind, 0) + 1
                    continue
                elapsed = time.perf_counter() - start
                with lock:
                    result.statuses[status] = result.statuses.get(status, 0) + 1
                    if status == 200:
                        result.latencies.append(elapsed)
                        if not result.first_body:
                            result.first_body = data
                    else:
                        result.errors += 1
        finally:
            client.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    barrier.wait()  # every thread has warmed up its connection
    for t in threads:
        t.join(max_seconds + timeout + 5)
    result.wall = time.perf_counter() - clock["start"]
    return result
