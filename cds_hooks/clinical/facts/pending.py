"""Pending tests: ordered or in progress, without a final result yet (issue 14 item 5).

A test counts as pending for a lab kind when an ``active``, ``on-hold`` or ``draft`` ServiceRequest for it
was authored (or, failing that, is to occur) within the kind's lookback window, or an Observation of it
has status ``registered`` or ``preliminary`` within that window. A ServiceRequest is matched to a kind by
the workup codes of knowledge/workup.toml (what this service proposes), then like a result (value sets).
An Observation that is registered has often no date yet: it still counts (it is the test in progress).
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from typing import Any

from cds_hooks.clinical.facts.labs import LabClassifier, lab_classifier, observation_date
from cds_hooks.clinical.facts.model import Evidence, PendingTest
from cds_hooks.clinical.knowledge import Knowledge
from cds_hooks.fhir.dates import format_date, parse_fhir_datetime
from cds_hooks.fhir.json_access import obj, objects, string
from cds_hooks.fhir.resource_index import ResourceIndex

REQUEST_PENDING = frozenset({"active", "on-hold", "draft"})
OBSERVATION_PENDING = frozenset({"registered", "preliminary"})


@functools.lru_cache(maxsize=8)
def _workup_codes(knowledge: Knowledge) -> dict[tuple[str, str], str]:
    """``(system, code)`` of every test the service proposes → its lab kind."""
    return {(t.code.system, t.code.code): kind for kind, t in knowledge.workup.items()}


def request_kind(code: Any, knowledge: Knowledge, classifier: LabClassifier) -> str | None:
    """The lab kind a ServiceRequest's code orders, or None when it orders nothing the rules read."""
    workup = _workup_codes(knowledge)
    for coding in objects(obj(code).get("coding")):
        kind = workup.get((string(coding.get("system")) or "", string(coding.get("code")) or ""))
        if kind:
            return kind
    return classifier.kind_of(code)


def _pending(
    knowledge: Knowledge, kind: str, resource: dict[str, Any], ordered: datetime | None, now: datetime
) -> PendingTest | None:
    lab = knowledge.labs[kind]
    if ordered is not None and ordered < now - timedelta(days=lab.lookback_days):
        return None
    rtype, rid, status = resource.get("resourceType"), resource.get("id"), str(resource.get("status"))
    when = f"ordered {format_date(ordered)}" if ordered else "order date unknown"
    return PendingTest(
        kind=kind,
        name=lab.display,
        ordered=ordered,
        status=status,
        evidence=Evidence(
            f"{rtype}/{rid}" if isinstance(rid, str) else "",
            f"Pending: {lab.display}, {when} ({rtype} {status})",
        ),
    )


def collect_pending(
    index: ResourceIndex, knowledge: Knowledge, now: datetime
) -> dict[str, list[PendingTest]]:
    """Pending tests per lab kind (see module docstring)."""
    classifier = lab_classifier(knowledge)
    found: list[PendingTest | None] = []
    for request in index.of_type("ServiceRequest"):
        if string(request.get("status")) not in REQUEST_PENDING:
            continue
        kind = request_kind(request.get("code"), knowledge, classifier)
        ordered = parse_fhir_datetime(request.get("authoredOn")) or parse_fhir_datetime(
            request.get("occurrenceDateTime")
        )
        if kind is not None and ordered is not None:
            found.append(_pending(knowledge, kind, request, ordered, now))
    for observation in index.of_type("Observation"):
        if string(observation.get("status")) not in OBSERVATION_PENDING:
            continue
        kind = classifier.kind_of(observation.get("code"))
        if kind is not None:
            found.append(_pending(knowledge, kind, observation, observation_date(observation), now))
    pending: dict[str, list[PendingTest]] = {}
    for test in found:
        if test is not None:
            pending.setdefault(test.kind, []).append(test)
    return pending
