"""The benchmark runs (``python -m bench --quick``) and writes its JSON. No timing is asserted here:
the figures themselves are for people (docs/benchmark.md), never a pass/fail of the test suite."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.generate import EXPECTED_RULES, count_by_type, encode, generate

REPO = Path(__file__).resolve().parents[2]


def test_generator_is_deterministic_and_sized() -> None:
    for n in (10, 200):
        request = generate(n)
        assert encode(request) == encode(generate(n))
        assert sum(count_by_type(request).values()) == n
    assert encode(generate(200, seed=1)) != encode(generate(200, seed=2))


def test_quick_benchmark_runs_and_writes_the_json(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "### Targets" in done.stdout
    results = json.loads(out.read_text())
    assert set(results) >= {"meta", "generator", "in_process", "http", "fallback", "memory", "targets"}
    assert results["generator"]["cards_identical_across_sizes"] is True
    assert results["generator"]["sizes"]["10"]["cards"] == list(EXPECTED_RULES)
    assert set(results["in_process"]["10"]) >= {"repeats", "p50_ms", "p95_ms"}
    assert set(results["in_process_new_patients"]) >= {"patients", "p50_ms", "evaluate_p50_ms"}
    runs = results["http"]["runs"]
    loads = ("new patient", "chart session", "repeated record N=10")
    assert {(r["load"], r["app"], r["concurrency"]) for r in runs} == {
        (load, app, c) for load in loads for app in ("ceiling", "service") for c in (1, 8)
    }
    assert all(r["errors"] == 0 and r["requests"] > 0 for r in runs)
    assert all(r["cards_ok"] for r in runs if r["app"] == "service")
    # the chart session re-sends each record five times: the service reuses its evaluation
    chart = [r for r in runs if r["app"] == "service" and r["load"] == "chart session"]
    assert all(r["cache_hits"] > 0 for r in chart)
    assert results["fallback"] is None and results["memory"] is None and results["cold_start"] is None
    assert {t["id"] for t in results["targets"]} == {
        "http_throughput_c8_n200",
        "http_p50_c1_n200",
        "inprocess_p50_n200",
        "inprocess_linear_n5000",
        "cold_first_call",
        "fallback_all_over_one",
        "memory_rss_growth",
    }


def test_replay_fhir_server_serves_concurrently_and_rewrites_links(open_fhir_server) -> None:
    """The fallback target is judged against this stand-in (issue 13, target 4): it must answer requests
    at the same time, each after the fixed delay, with links pointing at itself."""
    import threading
    import time

    import requests

    from bench.replay_fhir import ReplayFhirServer

    upstream = open_fhir_server.base_url
    with ReplayFhirServer(upstream, delay_s=0.3) as replay:
        path = "/Patient?_count=1"
        first = requests.get(replay.base_url + path, timeout=10)  # fills the cache
        assert first.status_code == 200 and upstream not in first.text
        durations: list[float] = []

        def get() -> None:
            t0 = time.perf_counter()
            assert requests.get(replay.base_url + path, timeout=10).status_code == 200
            durations.append(time.perf_counter() - t0)

        threads = [threading.Thread(target=get) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(durations) == 4 and min(durations) >= 0.3  # the fixed delay is applied
    assert replay.max_in_flight >= 2  # served side by side, not one after another
    assert replay.requests_served == 5
