"""The measurements: in-process evaluation, HTTP against the ceiling, FHIR fallback, worker memory."""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cds_hooks.clinical.knowledge import Knowledge, default_knowledge
from cds_hooks.fhir import deferred_validation, json_codec
from cds_hooks.fhir.client import FhirClient, build_session
from cds_hooks.fhir.resource_index import DEFERRED
from cds_hooks.hooks.dispatch import evaluate_offline
from cds_hooks.hooks.prefetch import fill_template
from cds_hooks.hooks.registry import build_services
from cds_hooks.process.gc_tuning import tune_gc
from cds_hooks.testing.fhir_test_server import LocalFhirServer, ensure_installed

from . import wrk
from .generate import (
    EXPECTED_RULES,
    NOW,
    POOL_SIZE,
    PREFETCH_KEYS,
    SERVICE_ID,
    chart_session,
    count_by_type,
    digest,
    encode,
    generate,
    pool_patient,
    transaction_bundle,
)
from .loadgen import _Client, percentile, run_load
from .replay_fhir import ReplayFhirServer
from .servers import CEILING_APP, SERVICE_APP, Gunicorn, WorkerSetup, cpu_seconds, rss_kib

Log = Callable[[str], None]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def strip_uuids(value: Any) -> Any:
    """Cards without their random ``uuid`` members (and the SMART link's ``appContext``, which names the
    card's uuid), for comparing runs."""
    if isinstance(value, dict):
        return {k: strip_uuids(v) for k, v in value.items() if k not in ("uuid", "appContext")}
    if isinstance(value, list):
        return [strip_uuids(v) for v in value]
    return value


def topics(response: dict[str, Any]) -> list[str]:
    return [card["source"]["topic"]["code"] for card in response.get("cards", [])]


# ---------------------------------------------------------------------------------------------- generator


def check_generator(sizes: tuple[int, ...], seed: int, knowledge: Knowledge) -> dict[str, Any]:
    """Per N: resource counts, body size, digest, and the cards (identical at every N, as designed)."""
    rows: dict[str, Any] = {}
    reference: str | None = None
    identical = True
    for n in sizes:
        request = generate(n, seed=seed)
        body = encode(request)
        deterministic = encode(generate(n, seed=seed)) == body
        cards = evaluate_offline(json_codec.loads(body), now=NOW, knowledge=knowledge)
        canonical = json.dumps(strip_uuids(cards), sort_keys=True)
        reference = reference or canonical
        identical = identical and canonical == reference
        rows[str(n)] = {
            "resources": sum(count_by_type(request).values()),
            "by_type": count_by_type(request),
            "body_bytes": len(body),
            "sha256_16": digest(body),
            "deterministic": deterministic,
            "cards": topics(cards),
        }
    return {
        "seed": seed,
        "now": NOW.isoformat(),
        "expected_cards": list(EXPECTED_RULES),
        "sizes": rows,
        "cards_identical_across_sizes": identical,
        "cards_as_expected": all(r["cards"] == list(EXPECTED_RULES) for r in rows.values()),
    }


# ---------------------------------------------------------------------------------------------- in-process


@dataclass(frozen=True)
class InProcessPlan:
    """Round-robin sampling: each round runs every N ``per_round[N]`` times, so that whatever else the
    machine does affects every N alike. Stops after ``budget_s`` (at least ``min_rounds`` rounds)."""

    min_rounds: int
    max_rounds: int
    budget_s: float

    @staticmethod
    def per_round(n: int) -> int:
        return 10 if n <= 10 else 4 if n <= 200 else 1


def inprocess_plan(quick: bool) -> InProcessPlan:
    return InProcessPlan(3, 20, 1.0) if quick else InProcessPlan(10, 200, 30.0)


def inprocess(
    sizes: tuple[int, ...], seed: int, knowledge: Knowledge, plan: InProcessPlan, log: Log
) -> dict[str, Any]:
    """Request JSON bytes → cards (the service's decoder + ``evaluate_offline``, with the service's GC
    settings; the deferred whole-resource checks after the timed part, as after the service's
    response): wall and CPU time per N."""
    bodies = {n: encode(generate(n, seed=seed)) for n in sizes}
    tune_gc()  # as in every service process (create_app does the same)
    wall: dict[int, list[float]] = {n: [] for n in sizes}
    cpu: dict[int, list[float]] = {n: [] for n in sizes}
    parse: dict[int, list[float]] = {n: [] for n in sizes}
    for n in sizes:  # warm-up: imports, model classes, caches
        for _ in range(2):
            evaluate_offline(json_codec.loads(bodies[n]), now=NOW, knowledge=knowledge)
    started = time.perf_counter()
    rounds = 0
    while rounds < plan.max_rounds and (
        rounds < plan.min_rounds or time.perf_counter() - started < plan.budget_s
    ):
        for n in sizes:
            for _ in range(plan.per_round(n)):
                deferred_validation.begin_request()  # as in the service: see inprocess_new_patients
                c0, t0 = time.thread_time(), time.perf_counter()
                request = json_codec.loads(bodies[n])
                t1 = time.perf_counter()
                evaluate_offline(request, now=NOW, knowledge=knowledge)
                t2, c2 = time.perf_counter(), time.thread_time()
                deferred_validation.flush_after_response()
                DEFERRED.drain()
                del request  # freed before the next decode, as the service frees each request's objects
                wall[n].append(t2 - t0)
                parse[n].append(t1 - t0)
                cpu[n].append(c2 - c0)
        rounds += 1
    results: dict[str, Any] = {}
    for n in sizes:
        evaluate = [t - p for t, p in zip(wall[n], parse[n], strict=True)]
        results[str(n)] = {
            "repeats": len(wall[n]),
            "p50_ms": ms(percentile(wall[n], 50)),
            "p95_ms": ms(percentile(wall[n], 95)),
            "mean_ms": ms(statistics.fmean(wall[n])),
            "min_ms": ms(min(wall[n])),
            "cpu_p50_ms": ms(percentile(cpu[n], 50)),
            "parse_p50_ms": ms(percentile(parse[n], 50)),
            "evaluate_p50_ms": ms(percentile(evaluate, 50)),
            "body_bytes": len(bodies[n]),
        }
        log(
            f"in-process N={n}: p50 {results[str(n)]['p50_ms']} ms (CPU {results[str(n)]['cpu_p50_ms']} ms) "
            f"over {len(wall[n])} runs"
        )
    return results


def inprocess_new_patients(
    bodies: list[bytes], knowledge: Knowledge, log: Log, warm: int = 20
) -> dict[str, Any]:
    """Request JSON bytes → cards for a different patient every call (the pool), as the service sees
    them: each evaluation in a request scope whose deferred whole-resource checks run (and are waited
    for) after the timed part, as they run after the response in the service. The first ``warm``
    patients warm the process up and are not counted."""
    tune_gc()
    wall: list[float] = []
    cpu: list[float] = []
    parse: list[float] = []
    for i, body in enumerate(bodies):
        deferred_validation.begin_request()
        c0, t0 = time.thread_time(), time.perf_counter()
        request = json_codec.loads(body)
        t1 = time.perf_counter()
        evaluate_offline(request, now=NOW, knowledge=knowledge)
        t2, c2 = time.perf_counter(), time.thread_time()
        deferred_validation.flush_after_response()
        DEFERRED.drain()
        # Freed before the next decode, as the service frees a request's objects once it has answered:
        # kept alive, the next body decodes into fresh memory (page faults), ~1 ms more on this machine.
        del request
        if i >= warm:
            wall.append(t2 - t0)
            cpu.append(c2 - c0)
            parse.append(t1 - t0)
    evaluate = [t - p for t, p in zip(wall, parse, strict=True)]
    result = {
        "patients": len(wall),
        "p50_ms": ms(percentile(wall, 50)),
        "p95_ms": ms(percentile(wall, 95)),
        "cpu_p50_ms": ms(percentile(cpu, 50)),
        "parse_p50_ms": ms(percentile(parse, 50)),
        "evaluate_p50_ms": ms(percentile(evaluate, 50)),
        "evaluate_p95_ms": ms(percentile(evaluate, 95)),
        "deferred_dropped": DEFERRED.dropped,
    }
    log(
        f"in-process new patients: p50 {result['p50_ms']} ms (decode {result['parse_p50_ms']} + evaluate "
        f"{result['evaluate_p50_ms']}) over {len(wall)} patients"
    )
    return result


# ---------------------------------------------------------------------------------------------- HTTP


@dataclass(frozen=True)
class HttpPlan:
    sizes: tuple[int, ...]  # N of the repeated record (the new-patient and chart-session loads: sizes[0])
    concurrencies: tuple[int, ...]
    seconds: dict[int, float]  # per N
    max_requests: int
    warmup_per_thread: int
    pool_size: int = POOL_SIZE
    session_patients: int = 200


def http_plan(sizes: tuple[int, ...], quick: bool, seconds: float | None) -> HttpPlan:
    if quick:
        return HttpPlan(sizes, (1, 8), {n: seconds or 1.5 for n in sizes}, 200, 2, 20, 4)
    per_n = {n: seconds or (6.0 if n <= 200 else 4.0) for n in sizes}
    return HttpPlan(sizes, (1, 8), per_n, 50_000, 5)


def service_env(data_dir: Path) -> dict[str, str]:
    """The service's whole configuration (``Gunicorn`` drops every inherited ``CDS_HOOKS_*`` variable):
    defaults (card log, snooze look-ups, the audit trail in SQLite and the evaluation cache are on by
    default), plus metrics in prometheus-client's multiprocess mode as ``cds-hooks serve`` runs them, a
    temporary data directory, quiet logs, and the loopback FHIR server allowed: every per-request
    feature is on."""
    metrics_dir = data_dir / "metrics"
    metrics_dir.mkdir(parents=True, exist_ok=True)
    return {
        "CDS_HOOKS_METRICS": "true",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "CDS_HOOKS_DATA_DIR": str(data_dir),
        "CDS_HOOKS_LOG_LEVEL": "WARNING",
        "CDS_HOOKS_FHIR_ALLOW_PRIVATE": "true",
        "CDS_HOOKS_FHIR_ALLOW_HTTP": "true",
    }


NEW_PATIENT, REPEATED, CHART_SESSION = "new patient", "repeated record", "chart session"
SERVICE_PATH = f"/cds-services/{SERVICE_ID}"


def _pool_chunk(args: tuple[int, int, int, int, datetime]) -> list[bytes]:
    start, stop, n, seed, now = args
    return [encode(pool_patient(i, n, seed=seed, now=now)) for i in range(start, stop)]


def pool_bodies(size: int, n: int, seed: int, now: datetime, first: int = 0) -> list[bytes]:
    """Pool patients ``first`` .. ``first + size - 1``, encoded, generated on every core."""
    from concurrent.futures import ProcessPoolExecutor

    workers = max(1, min(4, os.cpu_count() or 1))
    step = max(1, -(-size // workers))
    chunks = [(i, min(i + step, first + size), n, seed, now) for i in range(first, first + size, step)]
    if len(chunks) == 1:
        return _pool_chunk(chunks[0])
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return [body for chunk in pool.map(_pool_chunk, chunks) for body in chunk]


def http_loads(plan: HttpPlan, seed: int, now: datetime) -> dict[str, list[wrk.Line]]:
    """The three loads' request lines: a different patient on every request; one record again and again;
    chart sessions of other patients (patient-view, three order-selects, order-sign, in order)."""
    n = plan.sizes[0]
    new = [(SERVICE_PATH, body) for body in pool_bodies(plan.pool_size, n, seed, now)]
    sessions: list[wrk.Line] = []
    for i in range(plan.pool_size, plan.pool_size + plan.session_patients):
        for service_id, request in chart_session(pool_patient(i, n, seed=seed, now=now)):
            sessions.append((f"/cds-services/{service_id}", encode(request)))
    loads = {NEW_PATIENT: new, CHART_SESSION: sessions}
    for size in plan.sizes:
        loads[_repeated(size)] = [(SERVICE_PATH, encode(generate(size, seed=seed, now=now)))]
    return loads


def _repeated(n: int) -> str:
    return REPEATED if n == 200 else f"{REPEATED} N={n}"


def cache_counts(base_url: str) -> dict[str, float]:
    """The service's evaluation-cache counters (``/metrics``, summed over the workers)."""
    import requests

    text = requests.get(f"{base_url}/metrics", timeout=10).text
    counts: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("cds_hooks_evaluation_cache_total{"):
            outcome = line.split('outcome="', 1)[1].split('"', 1)[0]
            counts[outcome] = float(line.rsplit(" ", 1)[1])
    return counts


def http_bench(
    plan: HttpPlan,
    setup: WorkerSetup,
    seed: int,
    knowledge: Knowledge,
    workdir: Path,
    log: Log,
    fallback: Callable[[str], dict[str, Any]] | None = None,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Service and ceiling under the same gunicorn setup, interleaved per (load, concurrency), with the
    same request bodies. wrk (``bench/cycle_bodies.lua``) when installed, else ``bench.loadgen``; each
    run continues the load's cycle where the last run to that server stopped, so the new-patient load
    sends no patient twice to the service while the pool lasts.

    ``fallback`` (if given) runs against the same service afterwards, and its result is returned too."""
    now = datetime.now(UTC)  # the service evaluates at its own wall clock
    started = time.perf_counter()
    loads = http_loads(plan, seed, now)
    log(
        f"http loads: {len(loads[NEW_PATIENT])} new patients, {len(loads[CHART_SESSION]) // 5} chart "
        f"sessions, generated in {time.perf_counter() - started:.1f} s; client: "
        f"{'wrk' if wrk.available() else 'bench.loadgen (wrk not installed)'}"
    )
    files = {
        name: wrk.write_lines(workdir / f"load-{i}.txt", lines)
        for i, (name, lines) in enumerate(loads.items())
    }
    expected = {
        name: [
            topics(_evaluate_line(path, body, now, knowledge))
            for path, body in lines[: 5 if name == CHART_SESSION else 1]
        ]
        for name, lines in loads.items()
    }
    ceiling = Gunicorn(CEILING_APP, setup, log_path=workdir / "ceiling.log")
    service = Gunicorn(
        SERVICE_APP, setup, env=service_env(workdir / "service-data"), log_path=workdir / "service.log"
    )
    runs: list[dict[str, Any]] = []
    fallback_result = None
    sent: dict[tuple[str, str], int] = {}
    try:
        ceiling.start()
        service.start()
        log(f"gunicorn up: service {service.base_url}, ceiling {ceiling.base_url} ({setup.describe()})")
        _check_cards(service.base_url, loads, expected)
        sent = {("service", name): len(want) for name, want in expected.items()}
        for name, lines in loads.items():
            n = (
                plan.sizes[0]
                if not name.startswith(REPEATED) or name == REPEATED
                else int(name.rsplit("=", 1)[1])
            )
            for c in plan.concurrencies:
                for app_name, server in (("ceiling", ceiling), ("service", service)):
                    workers = server.worker_pids()
                    before = cache_counts(server.base_url) if app_name == "service" else {}
                    server_cpu = cpu_seconds(workers)
                    offset = sent.get((app_name, name), 0)
                    result = wrk.run(
                        server.base_url,
                        files[name],
                        lines,
                        concurrency=c,
                        seconds=plan.seconds.get(n, 6.0),
                        offset=offset,
                        group=5 if name == CHART_SESSION else 1,
                    )
                    server_cpu = cpu_seconds(workers) - server_cpu
                    sent[(app_name, name)] = offset + result["sent"] + c
                    row = {"app": app_name, "load": name, "n": n, **result}
                    row["server_cpu_ms_per_request"] = round(
                        server_cpu * 1000 / max(result["requests"], 1), 3
                    )
                    row["client_cpu_ms_per_request"] = round(
                        result.pop("client_cpu_s") * 1000 / max(result["requests"], 1), 3
                    )
                    row.pop("client_cpu_s", None)
                    if app_name == "service":
                        after = cache_counts(server.base_url)
                        delta = {k: after.get(k, 0) - before.get(k, 0) for k in ("hit", "miss", "skip")}
                        total = sum(delta.values())
                        row["cache_hits"], row["cache_misses"] = int(delta["hit"]), int(delta["miss"])
                        row["cache_hit_rate"] = round(delta["hit"] / total, 3) if total else None
                        row["cards_ok"] = True  # checked before the runs (_check_cards)
                        row["patients_sent"] = (
                            min(result["sent"], len(lines)) if name == NEW_PATIENT else None
                        )
                    runs.append(row)
                    log(
                        f"http {app_name} {name} c={c}: {row['throughput_rps']} req/s, "
                        f"p50 {row['p50_ms']} ms, {row['errors']} errors, "
                        f"cache hit rate {row.get('cache_hit_rate', '-')}"
                    )
        if fallback is not None:
            fallback_result = fallback(service.base_url)
    finally:
        service.stop()
        ceiling.stop()
    ratios: dict[str, Any] = {}
    for name in loads:
        for c in plan.concurrencies:
            ceil = next(
                r for r in runs if r["app"] == "ceiling" and r["load"] == name and r["concurrency"] == c
            )
            svc = next(
                r for r in runs if r["app"] == "service" and r["load"] == name and r["concurrency"] == c
            )
            ratios[f"{name},c={c}"] = {
                "throughput_service_over_ceiling": round(svc["throughput_rps"] / ceil["throughput_rps"], 3)
                if ceil["throughput_rps"]
                else None,
                "p50_service_over_ceiling": round(svc["p50_ms"] / ceil["p50_ms"], 2)
                if ceil["p50_ms"]
                else None,
                "service_extra_ms_p50": round(svc["p50_ms"] - ceil["p50_ms"], 2),
                "server_cpu_ceiling_over_service": round(
                    ceil["server_cpu_ms_per_request"] / svc["server_cpu_ms_per_request"], 3
                )
                if svc["server_cpu_ms_per_request"]
                else None,
            }
    logs = {name: _tail(workdir / f"{name}.log") for name in ("service", "ceiling")}
    result = {
        "setup": setup.describe(),
        "client": "wrk" if wrk.available() else "bench.loadgen",
        "pool_patients": len(loads[NEW_PATIENT]),
        "pool_n": plan.sizes[0],
        "chart_sessions": len(loads[CHART_SESSION]) // 5,
        "runs": runs,
        "ratios": ratios,
        "server_log_tails": logs,
    }
    return result, fallback_result


def _evaluate_line(path: str, body: bytes, now: datetime, knowledge: Knowledge) -> dict[str, Any]:
    return evaluate_offline(json_codec.loads(body), now=now, knowledge=knowledge)


def _check_cards(
    base_url: str, loads: dict[str, list[wrk.Line]], expected: dict[str, list[list[str]]]
) -> None:
    """Each load's first request(s), from a fresh client: the service answers the expected cards. Sent
    to the service before the runs, so these requests are the ones each cycle skips (offset 0 is sent
    again only when a cycle wraps around)."""
    client = _Client(base_url, timeout=60)
    headers = {"Content-Type": "application/json"}
    try:
        for name, lines in loads.items():
            for (path, body), want in zip(lines, expected[name], strict=False):
                status, data = client.post(body, headers, path)
                got = topics(json.loads(data)) if status == 200 else [f"HTTP {status}"]
                if got != want:
                    raise RuntimeError(f"{name}: {path} answered {got}, expected {want}")
    finally:
        client.close()


def _tail(path: Path, size: int = 3000) -> str:
    """The end of a server log (warnings and errors only: gunicorn runs with --log-level warning)."""
    try:
        return path.read_text(errors="replace")[-size:]
    except OSError:
        return ""


# ---------------------------------------------------------------------------------------------- fallback


def fallback_bench(
    service_url: str,
    n: int,
    seed: int,
    repeats: int,
    knowledge: Knowledge,
    workdir: Path,
    log: Log,
    replay_delay_ms: float = 20.0,
) -> dict[str, Any]:
    """The patient on a real FHIR server; the service fetches the missing keys from it.

    Variants, interleaved round-robin, one request at a time: ``none`` (everything in prefetch: the
    baseline), ``all`` (no prefetch at all), and ``one:<key>`` (only that key missing). Measured twice:
    against sekmet-fhir itself (which serves one request at a time), and against a replay of its answers
    that serves requests concurrently after a fixed delay (``bench/replay_fhir.py``) — the target is
    judged on the second. The direct fetch times (the same searches from here, one by one and all at
    once) show what sekmet-fhir itself allows."""
    venv = ensure_installed()
    now = datetime.now(UTC)
    request = generate(n, seed=seed, now=now)
    services = build_services(knowledge)
    templates = services[SERVICE_ID].prefetch
    expected = strip_uuids(evaluate_offline(request, now=now, knowledge=knowledge))
    with LocalFhirServer(workdir / "fhir", tokens=None, venv=venv) as fhir:
        started = time.perf_counter()
        fhir.load_bundle(transaction_bundle(request))
        load_s = time.perf_counter() - started
        log(f"fallback: {n} resources loaded into sekmet-fhir in {load_s:.1f} s")
        sekmet = _fallback_variants(service_url, fhir.base_url, request, repeats, expected)
        sekmet["fhir_server"] = (
            "sekmet-fhir (one uvicorn process, SQLite, one request at a time), on loopback"
        )
        sekmet["direct"] = _direct_fetches(fhir.base_url, templates, request["context"], repeats)
        log(f"fallback vs sekmet-fhir: ratio all/one {sekmet['ratio_all_over_one']}")
        with ReplayFhirServer(fhir.base_url, delay_s=replay_delay_ms / 1000) as replay:
            concurrent = _fallback_variants(service_url, replay.base_url, request, repeats, expected)
        concurrent["fhir_server"] = (
            f"replay of sekmet-fhir's answers, concurrent, {replay_delay_ms:g} ms per request "
            "(bench/replay_fhir.py)"
        )
        log(f"fallback vs concurrent replay: ratio all/one {concurrent['ratio_all_over_one']}")
    return {
        "n": n,
        "repeats": repeats,
        "load_seconds": round(load_s, 2),
        "concurrent": concurrent,
        "sekmet": sekmet,
    }


def _fallback_variants(
    service_url: str, fhir_base: str, request: dict[str, Any], repeats: int, expected: dict[str, Any]
) -> dict[str, Any]:
    """p50 of each variant against the FHIR server at ``fhir_base``, and the all/one ratios."""

    def body(missing: tuple[str, ...]) -> bytes:
        variant = dict(request)
        variant["fhirServer"] = fhir_base
        variant["prefetch"] = {k: v for k, v in request["prefetch"].items() if k not in missing}
        return encode(variant)

    variants: dict[str, bytes] = {"none": body(()), "all": body(PREFETCH_KEYS)}
    for key in PREFETCH_KEYS:
        variants[f"one:{key}"] = body((key,))
    client = _Client(f"{service_url}/cds-services/{SERVICE_ID}", timeout=60)
    headers = {"Content-Type": "application/json"}
    latencies: dict[str, list[float]] = {v: [] for v in variants}
    cards_match: dict[str, bool] = {}
    try:
        for round_ in range(repeats + 2):  # two warm-up rounds
            for name, payload in variants.items():
                t0 = time.perf_counter()
                status, data = client.post(payload, headers)
                elapsed = time.perf_counter() - t0
                if status != 200:
                    raise RuntimeError(f"fallback variant {name}: HTTP {status}: {data[:300]!r}")
                if round_ == 0:
                    cards_match[name] = _same_cards(strip_uuids(json.loads(data)), expected)
                if round_ >= 2:
                    latencies[name].append(elapsed)
    finally:
        client.close()
    per_variant = {
        name: {"p50_ms": ms(percentile(values, 50)), "p95_ms": ms(percentile(values, 95)), "n": len(values)}
        for name, values in latencies.items()
    }
    singles = {k: per_variant[f"one:{k}"]["p50_ms"] for k in PREFETCH_KEYS}
    slowest_key = max(singles, key=lambda k: singles[k])
    all_p50 = per_variant["all"]["p50_ms"]
    none_p50 = per_variant["none"]["p50_ms"]
    one_p50 = singles[slowest_key]
    # What "all missing" would cost if the keys were fetched one after another, or perfectly in parallel.
    overheads = {k: max(v - none_p50, 0.0) for k, v in singles.items()}
    return {
        "variants": per_variant,
        "cards_match_prefetch": cards_match,
        "slowest_single_key": slowest_key,
        "all_missing_p50_ms": all_p50,
        "one_missing_p50_ms": one_p50,
        "ratio_all_over_one": round(all_p50 / one_p50, 3) if one_p50 else None,
        "ratio_all_over_one_median_key": round(all_p50 / statistics.median(singles.values()), 3),
        "fetch_overhead_ratio": round((all_p50 - none_p50) / (one_p50 - none_p50), 3)
        if one_p50 > none_p50
        else None,
        "serial_estimate_ms": round(none_p50 + sum(overheads.values()), 3),
        "parallel_estimate_ms": round(none_p50 + max(overheads.values()), 3),
    }


def _same_cards(got: dict[str, Any], expected: dict[str, Any]) -> bool:
    """Same cards apart from uuids, the service's own base URL in links and the SMART link's appContext."""

    def drop_urls(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: drop_urls(v) for k, v in value.items() if k != "url"}
        if isinstance(value, list):
            return [drop_urls(v) for v in value]
        if isinstance(value, str) and "/sources/" in value:
            return value[value.index("/sources/") :]
        return value

    return json.dumps(drop_urls(got), sort_keys=True) == json.dumps(drop_urls(expected), sort_keys=True)


def _direct_fetches(
    base_url: str, templates: dict[str, str], context: dict[str, Any], repeats: int
) -> dict[str, Any]:
    """The service's searches, sent from here with the same client code: each alone, then all at once."""
    session = build_session(pool_size=12, retries=0)
    client = FhirClient(base_url=base_url, session=session)
    paths = {key: fill_template(t, context) for key, t in templates.items()}

    def fetch(key: str) -> int:
        path = paths[key]
        return len(client.search(path)) if "?" in path else int(client.read(path) is not None)

    single: dict[str, list[float]] = {k: [] for k in paths}
    together: list[float] = []
    counts: dict[str, int] = {}
    with ThreadPoolExecutor(max_workers=len(paths)) as pool:
        for round_ in range(repeats + 1):
            for key in paths:
                t0 = time.perf_counter()
                counts[key] = fetch(key)
                if round_:
                    single[key].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            list(pool.map(fetch, paths))
            if round_:
                together.append(time.perf_counter() - t0)
    session.close()
    single_p50 = {k: ms(percentile(v, 50)) for k, v in single.items()}
    return {
        "resources_per_key": counts,
        "single_p50_ms": single_p50,
        "sum_of_singles_ms": round(sum(single_p50.values()), 3),
        "max_single_ms": max(single_p50.values()),
        "all_parallel_p50_ms": ms(percentile(together, 50)),
        "floor_ratio_parallel_over_max_single": round(
            percentile(together, 50) * 1000 / max(single_p50.values()), 3
        ),
    }


# ---------------------------------------------------------------------------------------------- cold start


def cold_start_bench(
    n: int, seed: int, repeats: int, warm_requests: int, workdir: Path, log: Log, warm_up: bool = True
) -> dict[str, Any]:
    """The first request a fresh worker serves, against the warm p50 of the same worker.

    A one-worker service is started ``repeats`` times; after gunicorn reports it ready (``/healthz``, as
    a load balancer checks), the first POST is timed, then ``warm_requests`` more give the warm p50."""
    setup = WorkerSetup(workers=1, threads=2)
    # New patients every request (other ones than the HTTP loads'): the first and the warm requests
    # alike bring content the worker has not seen.
    bodies = pool_bodies(repeats * (warm_requests + 1), n, seed, datetime.now(UTC), first=50_000)
    env_extra = {"CDS_HOOKS_WARM_UP": "true" if warm_up else "false"}
    firsts: list[float] = []
    warm_p50s: list[float] = []
    for i in range(repeats):
        data_dir = workdir / f"cold-{int(warm_up)}-{i}"
        service = Gunicorn(
            SERVICE_APP, setup, env={**service_env(data_dir), **env_extra}, log_path=workdir / "cold.log"
        )
        try:
            service.start()
            client = _Client(f"{service.base_url}/cds-services/{SERVICE_ID}", timeout=60)
            headers = {"Content-Type": "application/json"}
            mine = iter(bodies[i * (warm_requests + 1) : (i + 1) * (warm_requests + 1)])
            try:
                t0 = time.perf_counter()
                status, _ = client.post(next(mine), headers)
                firsts.append(time.perf_counter() - t0)
                if status != 200:
                    raise RuntimeError(f"cold start: HTTP {status}")
                warm: list[float] = []
                for body in mine:
                    t0 = time.perf_counter()
                    client.post(body, headers)
                    warm.append(time.perf_counter() - t0)
                warm_p50s.append(percentile(warm, 50))
            finally:
                client.close()
        finally:
            service.stop()
    first_ms = ms(statistics.median(firsts))
    warm_ms = ms(statistics.median(warm_p50s))
    log(f"cold start (warm-up {'on' if warm_up else 'off'}): first {first_ms} ms, warm p50 {warm_ms} ms")
    return {
        "n": n,
        "repeats": repeats,
        "warm_up": warm_up,
        "setup": setup.describe(),
        "first_ms": [ms(v) for v in firsts],
        "warm_p50_ms": [ms(v) for v in warm_p50s],
        "first_median_ms": first_ms,
        "warm_p50_median_ms": warm_ms,
        "ratio_first_over_warm_p50": round(first_ms / warm_ms, 2) if warm_ms else None,
    }


# ---------------------------------------------------------------------------------------------- memory


def memory_bench(
    n: int,
    checkpoints: tuple[int, ...],
    seed: int,
    threads: int,
    max_seconds: float,
    workdir: Path,
    log: Log,
    pool_size: int = POOL_SIZE,
) -> dict[str, Any]:
    """RSS of the only worker of a ``-w 1`` service after each checkpoint's cumulative request count."""
    setup = WorkerSetup(workers=1, threads=threads)
    now = datetime.now(UTC)
    # New patients: the pool cycled (POOL_SIZE patients), so memos and the evaluation cache fill as a
    # hospital's traffic would fill them.
    lines = [(SERVICE_PATH, body) for body in pool_bodies(pool_size, n, seed, now)]
    service = Gunicorn(
        SERVICE_APP, setup, env=service_env(workdir / "memory-data"), log_path=workdir / "memory.log"
    )
    samples: list[dict[str, Any]] = []
    done = 0
    errors = 0
    started = time.perf_counter()
    try:
        service.start()
        (worker,) = service.worker_pids()
        samples.append({"requests": 0, "rss_kib": rss_kib(worker)})
        for checkpoint in checkpoints:
            remaining = max_seconds - (time.perf_counter() - started)
            if remaining <= 0:
                break
            result = run_load(
                service.base_url,
                lines,
                concurrency=threads,
                max_requests=checkpoint - done,
                max_seconds=remaining,
                offset=done,
            )
            done += result.ok
            errors += result.errors
            samples.append({"requests": done, "rss_kib": rss_kib(worker)})
            log(f"memory: {done} requests, worker RSS {samples[-1]['rss_kib'] / 1024:.1f} MiB")
            if done < checkpoint:
                break
    finally:
        service.stop()
    # The reference is the first checkpoint at or past 1,000 requests: by then pools, caches and memos
    # have filled, so what grows after it is what a long-running worker keeps growing.
    reference = next((c for c in checkpoints if c >= 1000), checkpoints[0])
    first = next((s for s in samples if s["requests"] >= reference), None)
    last = samples[-1]
    growth = (
        round((last["rss_kib"] - first["rss_kib"]) / first["rss_kib"] * 100, 2)
        if first and last is not first
        else None
    )
    return {
        "n": n,
        "setup": setup.describe(),
        "samples": samples,
        "errors": errors,
        "requests_done": done,
        "requests_planned": checkpoints[-1],
        "reference_requests": first["requests"] if first else None,
        "rss_after_first_kib": first["rss_kib"] if first else None,
        "rss_after_last_kib": last["rss_kib"],
        "growth_pct": growth,
        "seconds": round(time.perf_counter() - started, 1),
    }


def knowledge() -> Knowledge:
    return default_knowledge()
