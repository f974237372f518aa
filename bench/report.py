"""Targets (performance v3, issue 24: judged on the new-patient load), checked against a run's figures,
and the markdown tables printed."""

from __future__ import annotations

from typing import Any


def _target(
    tid: str, description: str, limit: str, measured: float | None, unit: str, ok: bool | None, note: str = ""
) -> dict[str, Any]:
    return {
        "id": tid,
        "description": description,
        "target": limit,
        "measured": measured,
        "unit": unit,
        "pass": ok,
        "note": note,
    }


def check_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with its measured value and PASS (True) / FAIL (False) / not measured (None)."""
    targets: list[dict[str, Any]] = []

    ratios = (results.get("http") or {}).get("ratios", {})
    new_c8, new_c1 = ratios.get("new patient,c=8") or {}, ratios.get("new patient,c=1") or {}
    ratio = new_c8.get("throughput_service_over_ceiling")
    runs = (results.get("http") or {}).get("runs", [])

    def row(app: str, load: str, c: int) -> dict[str, Any]:
        return next((r for r in runs if (r["app"], r.get("load"), r["concurrency"]) == (app, load, c)), {})

    targets.append(
        _target(
            "http_throughput_c8_n200",
            "Throughput at concurrency 8, new patient every request (N=200): service / ceiling",
            ">= 0.80",
            ratio,
            "ratio",
            None if ratio is None else ratio >= 0.80,
            note=f"{row('service', 'new patient', 8).get('throughput_rps')} vs "
            f"{row('ceiling', 'new patient', 8).get('throughput_rps')} req/s; server CPU "
            f"{row('service', 'new patient', 8).get('server_cpu_ms_per_request')} vs "
            f"{row('ceiling', 'new patient', 8).get('server_cpu_ms_per_request')} ms/request"
            if ratio is not None
            else "",
        )
    )
    p50_ratio = new_c1.get("p50_service_over_ceiling")
    targets.append(
        _target(
            "http_p50_c1_n200",
            "Single-connection p50, new patient every request (N=200): service / ceiling",
            "<= 1.5",
            p50_ratio,
            "x",
            None if p50_ratio is None else p50_ratio <= 1.5,
            note=f"{row('service', 'new patient', 1).get('p50_ms')} vs "
            f"{row('ceiling', 'new patient', 1).get('p50_ms')} ms"
            if p50_ratio is not None
            else "",
        )
    )

    inproc = results.get("in_process") or {}
    r200, r5000 = inproc.get("200") or {}, inproc.get("5000") or {}
    new = results.get("in_process_new_patients") or {}
    p50_new = new.get("p50_ms")
    targets.append(
        _target(
            "inprocess_p50_n200",
            f"In-process, a new {new.get('n', 200)}-resource patient, p50 (request JSON → cards)",
            "<= 1.5 ms",
            p50_new,
            "ms",
            None if p50_new is None else p50_new <= 1.5,
            note=f"decode {new['parse_p50_ms']} + evaluation {new['evaluate_p50_ms']} ms; CPU p50 "
            f"{new['cpu_p50_ms']} ms; the repeated record: {r200.get('p50_ms')} ms"
            if p50_new is not None
            else "",
        )
    )
    p50_200 = r200.get("p50_ms")
    p50_5000 = r5000.get("p50_ms")
    growth = round(p50_5000 / p50_200, 2) if p50_5000 and p50_200 else None
    targets.append(
        _target(
            "inprocess_linear_n5000",
            "In-process evaluation p50, N=5000 / N=200 (N grows 25x)",
            "<= 25",
            growth,
            "x",
            None if growth is None else growth <= 25.0,
            note=f"CPU time ratio {r5000['cpu_p50_ms'] / r200['cpu_p50_ms']:.2f}x" if growth else "",
        )
    )

    cold = ((results.get("cold_start") or {}).get("warm_up_on")) or {}
    cratio = cold.get("ratio_first_over_warm_p50")
    off = ((results.get("cold_start") or {}).get("warm_up_off")) or {}
    targets.append(
        _target(
            "cold_first_call",
            "First request of a fresh worker / its warm p50 (N=200, new patients)",
            "<= 2",
            cratio,
            "x",
            None if cratio is None else cratio <= 2.0,
            note=f"without warm-up {off.get('ratio_first_over_warm_p50')}x" if off else "",
        )
    )

    fallback = results.get("fallback") or {}
    concurrent, sekmet = fallback.get("concurrent") or {}, fallback.get("sekmet") or {}
    fratio = concurrent.get("ratio_all_over_one")
    targets.append(
        _target(
            "fallback_all_over_one",
            "FHIR fallback p50, concurrent FHIR server: all keys missing / slowest single key missing",
            "<= 1.3",
            fratio,
            "ratio",
            None if fratio is None else fratio <= 1.3,
            note=(
                f"one missing = {concurrent.get('slowest_single_key')}; against sekmet-fhir (serial): "
                f"{sekmet.get('ratio_all_over_one')}"
            )
            if fratio is not None
            else "",
        )
    )

    memory = results.get("memory") or {}
    mgrowth = memory.get("growth_pct")
    complete = memory.get("requests_done", 0) >= memory.get("requests_planned", 1)
    targets.append(
        _target(
            "memory_rss_growth",
            f"Worker RSS after {memory.get('requests_done', 50000)} new-patient requests (N="
            f"{memory.get('n', 200)}) vs after {memory.get('reference_requests', 1000)}",
            "within 10 %",
            mgrowth,
            "%",
            None if mgrowth is None else abs(mgrowth) <= 10.0,
            note="" if complete or mgrowth is None else "stopped early by the time limit",
        )
    )
    return targets


def _verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else "**PASS**" if ok else "**FAIL**"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def render(results: dict[str, Any]) -> str:
    """All figures as markdown tables."""
    meta = results["meta"]
    out = [
        f"## Benchmark — {meta['commit']}{' (dirty)' if meta['dirty'] else ''}, {meta['date']}",
        "",
        f"{meta['cpus']} CPUs, Python {meta['python']}, {meta['platform']}; run took {meta['seconds']} s; "
        f"load average (1/5/15 min) {meta['loadavg_start']} at start, {meta['loadavg_end']} at end.",
        "",
    ]
    if max(meta["loadavg_start"][0], meta["loadavg_end"][0]) > 0.5 * (meta["cpus"] or 1):
        out += [
            "> **The machine was busy with other work during this run**: latencies and req/s are "
            "pessimistic; the CPU ms/request columns are not affected.",
            "",
        ]
    gen = results["generator"]
    out += [
        "### Requests (seeded generator)",
        "",
        _table(
            ["N", "Observation", "Med.Statement", "Med.Request", "Condition", "body", "sha256", "cards"],
            [
                [
                    n,
                    row["by_type"].get("Observation", 0),
                    row["by_type"].get("MedicationStatement", 0),
                    row["by_type"].get("MedicationRequest", 0),
                    row["by_type"].get("Condition", 0),
                    f"{row['body_bytes'] / 1024:.0f} KiB",
                    row["sha256_16"],
                    len(row["cards"]),
                ]
                for n, row in gen["sizes"].items()
            ],
        ),
        "",
        f"Cards identical at every N: **{gen['cards_identical_across_sizes']}** "
        f"({', '.join(gen['expected_cards'])}); as expected: **{gen['cards_as_expected']}**.",
        "",
    ]
    inproc = results.get("in_process") or {}
    if inproc:
        base = (inproc.get("200") or {}).get("p50_ms")
        out += [
            "### In-process (request JSON → cards)",
            "",
            _table(
                [
                    "N",
                    "runs",
                    "p50 ms",
                    "p95 ms",
                    "CPU p50 ms",
                    "json.loads p50",
                    "evaluate p50",
                    "p50 / N=200",
                ],
                [
                    [
                        n,
                        r["repeats"],
                        r["p50_ms"],
                        r["p95_ms"],
                        r["cpu_p50_ms"],
                        r["parse_p50_ms"],
                        r["evaluate_p50_ms"],
                        f"{r['p50_ms'] / base:.2f}x" if base else "",
                    ]
                    for n, r in inproc.items()
                ],
            ),
            "",
        ]
    new = results.get("in_process_new_patients")
    if new:
        out += [
            f"In-process, a new patient every call ({new['patients']} pool patients, N={new['n']}): p50 "
            f"**{new['p50_ms']} ms** (p95 {new['p95_ms']}; CPU p50 {new['cpu_p50_ms']}), of which decoding "
            f"{new['parse_p50_ms']} ms and evaluation {new['evaluate_p50_ms']} ms (p95 "
            f"{new['evaluate_p95_ms']}); deferred whole-resource checks dropped: {new['deferred_dropped']}.",
            "",
        ]
    http = results.get("http")
    if http:
        rows = []
        for r in http["runs"]:
            ratio = http["ratios"][f"{r['load']},c={r['concurrency']}"]
            service = r["app"] == "service"
            rows.append(
                [
                    r["load"],
                    r["app"],
                    r["concurrency"],
                    r["requests"],
                    r["errors"],
                    r["p50_ms"],
                    r["p95_ms"],
                    r["throughput_rps"],
                    r["server_cpu_ms_per_request"],
                    r["client_cpu_ms_per_request"],
                    r.get("cache_hit_rate") if service else "",
                    ratio["throughput_service_over_ceiling"] if service else "",
                    ratio["p50_service_over_ceiling"] if service else "",
                ]
            )
        out += [
            f"### HTTP (`{http['setup']}`, loopback, closed loop, client {http.get('client')})",
            "",
            f"Loads: **new patient** (a different patient on every request: {http.get('pool_patients')} "
            f"distinct {http.get('pool_n', 200)}-resource patients, cycled), **repeated record** (one "
            "body again and again), "
            f"**chart session** ({http.get('chart_sessions')} other patients: patient-view, three "
            "order-selects, order-sign with the same record, in order). The ceiling gets the same bodies.",
            "",
            _table(
                [
                    "load",
                    "app",
                    "conc.",
                    "requests",
                    "errors",
                    "p50 ms",
                    "p95 ms",
                    "req/s",
                    "server CPU ms/req",
                    "client CPU ms/req",
                    "cache hit rate",
                    "req/s service/ceiling",
                    "p50 service/ceiling",
                ],
                rows,
            ),
            "",
        ]
    fallback = results.get("fallback")
    if fallback:
        for label in ("concurrent", "sekmet"):
            f = fallback[label]
            out += [
                f"### FHIR fallback (N={fallback['n']}, {f['fhir_server']}, sequential requests)",
                "",
                _table(
                    ["variant", "p50 ms", "p95 ms", "same cards as prefetch"],
                    [
                        [name, v["p50_ms"], v["p95_ms"], f["cards_match_prefetch"].get(name)]
                        for name, v in f["variants"].items()
                    ],
                ),
                "",
                f"All missing / one missing ({f['slowest_single_key']}, the slowest single key): "
                f"**{f['ratio_all_over_one']}**; vs the median single key: "
                f"{f['ratio_all_over_one_median_key']}; fetch time only (minus the `none` baseline): "
                f"{f['fetch_overhead_ratio']}. Estimates from the single-key runs: fetched one after "
                f"another {f['serial_estimate_ms']} ms, perfectly in parallel "
                f"{f['parallel_estimate_ms']} ms.",
                "",
            ]
            if "direct" in f:
                d = f["direct"]
                out += [
                    f"Direct from sekmet-fhir: sum of the searches {d['sum_of_singles_ms']} ms, slowest "
                    f"{d['max_single_ms']} ms, all at once {d['all_parallel_p50_ms']} ms (floor ratio "
                    f"{d['floor_ratio_parallel_over_max_single']}).",
                    "",
                ]
    cold = results.get("cold_start")
    if cold:
        out += [
            "### Cold start (first request of a fresh one-worker service, N=200, a new patient each request)",
            "",
            _table(
                ["warm-up", "starts", "first ms (each)", "warm p50 ms (each)", "first / warm p50"],
                [
                    [
                        "on" if c["warm_up"] else "off",
                        c["repeats"],
                        ", ".join(str(v) for v in c["first_ms"]),
                        ", ".join(str(v) for v in c["warm_p50_ms"]),
                        c["ratio_first_over_warm_p50"],
                    ]
                    for c in (cold["warm_up_on"], cold["warm_up_off"])
                ],
            ),
            "",
        ]
    memory = results.get("memory")
    if memory:
        out += [
            f"### Memory (`{memory['setup']}`, new patients, N={memory['n']})",
            "",
            _table(
                ["requests", "worker RSS MiB"],
                [[s["requests"], f"{s['rss_kib'] / 1024:.1f}"] for s in memory["samples"]],
            ),
            "",
        ]
    synthea = results.get("synthea")
    if synthea:
        out += [
            "### Screening Synthea adults (sekmet-fhir, `cds-hooks screen` defaults)",
            "",
            _table(
                [
                    "records",
                    "screened",
                    "deceased skipped",
                    "errors",
                    "screen s",
                    "patients/s",
                    "requests",
                    "same requests direct s",
                    "screen / direct",
                ],
                [
                    [
                        synthea["records"],
                        synthea["screened"],
                        synthea["skipped_deceased"],
                        synthea["errors"],
                        synthea["screen_s"],
                        synthea["patients_per_s"],
                        synthea["requests"],
                        synthea["direct_s"],
                        synthea["ratio_screen_over_direct"],
                    ]
                ],
            ),
            "",
        ]
    out += [
        "### Targets (performance v3, issue 24)",
        "",
        _table(
            ["target", "limit", "measured", "result"],
            [
                [
                    t["description"],
                    t["target"],
                    "" if t["measured"] is None else f"{t['measured']} {t['unit']}".strip(),
                    _verdict(t["pass"]) + (f" ({t['note']})" if t["note"] else ""),
                ]
                for t in results["targets"]
            ],
        ),
        "",
    ]
    return "\n".join(out)
