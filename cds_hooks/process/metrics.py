"""Prometheus metrics (``GET /metrics``, off unless ``CDS_HOOKS_METRICS=true``).

Under gunicorn every worker is a process of its own: ``prometheus-client``'s multiprocess mode keeps
each worker's values in memory-mapped files in ``PROMETHEUS_MULTIPROC_DIR`` (``cds-hooks serve`` sets
it to a fresh directory under the data directory) and ``/metrics`` sums them. Without that variable
(``--dev``, tests) the values live in this process.

The recording functions are no-ops until ``enable()`` is called, and cost a few microseconds when on.
Label values are bounded: service ids and rule ids come from the knowledge, never from the request.
"""

from __future__ import annotations

import os
import threading
from typing import Any

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# JWT rejection reasons (free text in the security log) → a bounded label. First match wins.
_JWT_REASONS = (
    ("no Authorization header", "missing"),
    ("not 'Bearer", "malformed"),
    ("longer than", "malformed"),
    ("malformed", "malformed"),
    ("typ", "header"),
    ("no kid", "header"),
    ("allowlist [", "algorithm"),
    ("alg ", "algorithm"),
    ("issuer is not trusted", "untrusted_issuer"),
    ("jku", "key_not_found"),
    ("kid is not", "key_not_found"),
    ("ExpiredSignature", "expired"),
    ("ImmatureSignature", "not_yet_valid"),
    ("InvalidIssuedAt", "issued_at"),
    ("InvalidAudience", "audience"),
    ("InvalidIssuer", "issuer"),
    ("InvalidSignature", "signature"),
    ("MissingRequiredClaim", "missing_claim"),
    ("jti was already used", "replay"),
    ("jti", "missing_claim"),
    ("tenant", "tenant"),
    ("sub", "subject"),
    ("key unusable", "key_unusable"),
)

_lock = threading.Lock()
_metrics: dict[str, Any] = {}
_registry: Any = None


def enabled() -> bool:
    return bool(_metrics)


def enable() -> None:
    """Create the metrics once per process (idempotent; several apps in one process share them)."""
    global _registry
    with _lock:
        if _metrics:
            return
        from prometheus_client import CollectorRegistry, Counter, Histogram

        registry = CollectorRegistry(auto_describe=True)
        _metrics["requests"] = Counter(
            "cds_hooks_requests",
            "HTTP requests answered, by endpoint, service, hook and status.",
            ["endpoint", "service", "hook", "status"],
            registry=registry,
        )
        _metrics["latency"] = Histogram(
            "cds_hooks_request_duration_seconds",
            "Time to answer an HTTP request, by endpoint, service, hook and status.",
            ["endpoint", "service", "hook", "status"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        _metrics["cards"] = Counter(
            "cds_hooks_cards",
            "Cards returned, by service, rule and indicator.",
            ["service", "rule", "indicator"],
            registry=registry,
        )
        _metrics["suppressed"] = Counter(
            "cds_hooks_cards_suppressed",
            "Cards not returned because of a snooze or because order-select already showed them.",
            ["service", "rule", "reason"],
            registry=registry,
        )
        _metrics["fallback"] = Counter(
            "cds_hooks_fhir_fallback",
            "Requests that fetched missing prefetch data from the FHIR server, by outcome.",
            ["outcome"],
            registry=registry,
        )
        _metrics["fallback_latency"] = Histogram(
            "cds_hooks_fhir_fallback_duration_seconds",
            "Time spent fetching missing prefetch data from the FHIR server, by outcome.",
            ["outcome"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        _metrics["evaluation_cache"] = Counter(
            "cds_hooks_evaluation_cache",
            "Service calls by whether the record's facts and findings were reused from an earlier call "
            "(hit), computed and kept (miss) or not cached (skip).",
            ["outcome"],
            registry=registry,
        )
        _metrics["jwt"] = Counter(
            "cds_hooks_jwt_rejections",
            "Calls refused because their JWT failed a check, by reason.",
            ["reason"],
            registry=registry,
        )
        _metrics["feedback"] = Counter(
            "cds_hooks_feedback_items",
            "Feedback items received, by service and outcome.",
            ["service", "outcome"],
            registry=registry,
        )
        _registry = registry


def exposition() -> tuple[bytes, str]:
    """The metrics in the Prometheus text format, and its content type."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    directory = os.environ.get(MULTIPROC_ENV)
    if directory:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    if _registry is None:
        return b"", CONTENT_TYPE_LATEST
    return generate_latest(_registry), CONTENT_TYPE_LATEST


def mark_process_dead(pid: int) -> None:
    """gunicorn ``child_exit``: fold a dead worker's live gauges away (counters are kept)."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def observe_request(endpoint: str, service: str, hook: str, status: int, seconds: float) -> None:
    if _metrics:
        labels = (endpoint, service, hook, str(status))
        _metrics["requests"].labels(*labels).inc()
        _metrics["latency"].labels(*labels).observe(seconds)


def count_card(service: str, rule: str, indicator: str) -> None:
    if _metrics:
        _metrics["cards"].labels(service, rule, indicator).inc()


def count_suppressed(service: str, rule: str, reason: str) -> None:
    if _metrics:
        _metrics["suppressed"].labels(service, rule, reason).inc()


def observe_fallback(outcome: str, seconds: float) -> None:
    if _metrics:
        _metrics["fallback"].labels(outcome).inc()
        _metrics["fallback_latency"].labels(outcome).observe(seconds)


def count_evaluation_cache(outcome: str) -> None:
    if _metrics:
        _metrics["evaluation_cache"].labels(outcome).inc()


def count_jwt_rejection(reason: str) -> None:
    if _metrics:
        _metrics["jwt"].labels(jwt_reason_label(reason)).inc()


def count_feedback(service: str, outcome: str) -> None:
    if _metrics:
        _metrics["feedback"].labels(service, outcome).inc()


def jwt_reason_label(reason: str) -> str:
    for fragment, label in _JWT_REASONS:
        if fragment in reason:
            return label
    return "other"
