"""The two steps a screen runs in Spark's executors, as plain Python (tested without Spark).

:func:`read_part` reads one part of an export and emits, per line, the kept record, or an issue; and at
the end the part's counts, so the driver reports what was read, kept and set aside without holding any
record. :func:`screen_patients` evaluates the grouped records of each patient.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

import orjson

from cds_hooks.bulk.ndjson import Issue, Part, Record, Unparsed, read_by_rules
from cds_hooks.bulk.ndjson import read_part as read_lines
from cds_hooks.bulk.patient import NO_PATIENT, PatientOutcome, evaluate_patient
from cds_hooks.bulk.prefilter import bounds, medication_reference
from cds_hooks.clinical.knowledge import KNOWLEDGE_DIR_ENV, THRESHOLD_ENV_PREFIX, Knowledge, load_knowledge
from cds_hooks.clinical.site_codes import SITE_CONCEPT_MAP_ENV

# Tags of what ``read_part`` emits.
RESOURCE, MEDICATION, NEEDS_MEDICATION, ISSUE, COUNTS = "R", "M", "N", "I", "C"


def knowledge_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The part of the environment the knowledge is loaded from, shipped to the executors."""
    return {
        k: v
        for k, v in environ.items()
        if k in (KNOWLEDGE_DIR_ENV, SITE_CONCEPT_MAP_ENV) or k.startswith(THRESHOLD_ENV_PREFIX)
    }


@functools.lru_cache(maxsize=4)
def _knowledge(env: tuple[tuple[str, str], ...]) -> Knowledge:
    return load_knowledge(env=dict(env))


def executor_knowledge(env: Mapping[str, str]) -> Knowledge:
    """The knowledge for ``env`` (from :func:`knowledge_env`), loaded once per Python worker."""
    return _knowledge(tuple(sorted(env.items())))


def read_part(
    part: Part, env: Mapping[str, str], now: datetime, max_line_bytes: int
) -> Iterator[tuple[Any, ...]]:
    """Tagged tuples for one part: ``(RESOURCE, patient, type, json, where)``, ``(MEDICATION, ref, json)``,
    ``(NEEDS_MEDICATION, ref, patient)``, ``(ISSUE, Issue)``, and last ``(COUNTS, Counter)``."""
    limits = bounds(executor_knowledge(env), now)
    counts: Counter[tuple[str, str]] = Counter()
    for line, parsed in read_lines(part, max_line_bytes, limits.raw_outside):
        if isinstance(parsed, Unparsed):
            counts["read", parsed.resource_type] += 1
            counts["outside what the rules read", parsed.resource_type] += 1
            continue
        if not isinstance(parsed, Record):
            counts["issues", parsed] += 1
            yield ISSUE, Issue(part.path, line, parsed, part.start)
            continue
        rtype, resource = parsed.resource_type, parsed.resource
        counts["read", rtype] += 1
        if not read_by_rules(rtype):
            counts["not read by the rules", rtype] += 1
            continue
        if not limits.keep(rtype, resource):
            counts["outside what the rules read", rtype] += 1
            continue
        counts["kept", rtype] += 1
        payload = orjson.dumps(resource)
        if rtype == "Medication":
            yield MEDICATION, f"Medication/{resource['id']}", payload
            continue
        yield RESOURCE, parsed.patient_id, rtype, payload, (part.path, part.start, line)
        if rtype in ("MedicationRequest", "MedicationStatement"):
            ref = medication_reference(resource)
            if ref is not None:
                counts["referenced", "Medication"] += 1
                yield NEEDS_MEDICATION, ref, parsed.patient_id
    yield COUNTS, counts


def screen_patients(
    groups: Iterable[tuple[str, Iterable[tuple[str, bytes, Any]]]],
    env: Mapping[str, str],
    now: datetime,
    include_deceased: bool,
    base_url: str,
) -> Iterator[PatientOutcome]:
    """Each patient's outcome, from ``(patient id, [(type, json, where), …])`` groups. A group without
    its Patient (resources whose subject the export does not hold) is not evaluated: its records are
    issues, with their file and line."""
    knowledge = executor_knowledge(env)
    for patient_id, group in groups:
        items = list(group)
        if not any(rtype == "Patient" for rtype, _, _ in items):
            orphans = tuple(
                Issue(where[0], where[2], "its subject is not a Patient of the export", where[1])
                for rtype, _, where in items
                if where is not None
            )
            yield PatientOutcome(patient_id, NO_PATIENT, resources=len(items), issues=orphans)
            continue
        yield evaluate_patient(
            patient_id,
            [(rtype, orjson.loads(payload)) for rtype, payload, _ in items],
            knowledge=knowledge,
            now=now,
            include_deceased=include_deceased,
            base_url=base_url,
        )
