"""``cds-hooks survey``: the lab and medication codes an export actually holds, ranked by count, and what
the rules make of each — read by its code, read only by its text, looking like one of the rules'
concepts by its name but not mapped, or nothing the rules need — with the units seen per concept.

The counting runs in Spark (the same parts as the screen); only the distinct codes reach the driver.
What a code "is" comes from the rules' own recognisers (the lab and medication classifiers); the
"looks like" hints are broad name patterns meant to catch local codes for a person to review.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain
from typing import Any

from cds_hooks.bulk.ndjson import Export, Part, Record, plan, read_part
from cds_hooks.bulk.stages import executor_knowledge
from cds_hooks.clinical.facts.labs import lab_classifier
from cds_hooks.clinical.facts.medications import NOT_RELEVANT, medication_classifier
from cds_hooks.clinical.knowledge import Knowledge
from cds_hooks.fhir.json_access import objects, string

LAB, MEDICATION = "lab", "medication"
READ_BY_CODE, READ_BY_TEXT, LOOKS_LIKE, OTHER = "read by code", "read by text only", "looks like", "other"
# Names that suggest one of the rules' concepts (checked on the display and text of unrecognised codes),
# and the lab kind (or medication value set) a mapping would target.
HINTS: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("insulin antibody", re.compile(r"insulin.*(antibod|\bab\b|\biaa\b)|\biaa\b", re.I), "insulin_antibody"),
    ("insulin receptor antibody", re.compile(r"receptor.*antibod", re.I), "insulin_receptor_antibody"),
    ("HbA1c", re.compile(r"a1c|glyc(at|osyl)ated|glycohaemoglobin|glycohemoglobin", re.I), "hba1c"),
    ("glucose", re.compile(r"glucose|\bglu\b|\bbgl\b|blood sugar", re.I), "glucose"),
    ("ANA", re.compile(r"antinuclear|anti-nuclear|\bana\b", re.I), "ana"),
    ("C-peptide", re.compile(r"c[- ]?peptide", re.I), "c_peptide"),
    ("insulin", re.compile(r"insulin|insulatard|actrapid|hypurin|humulin|novorapid|lantus", re.I), "insulin"),
)
MEDICATION_TARGETS = {"insulin": "insulin-any"}
# Distinct codes kept per kind: a survey is read by a person.
DEFAULT_TOP = 200
MAX_UNITS = 8


@dataclass(frozen=True)
class SurveyedCode:
    kind: str  # LAB or MEDICATION
    system: str
    code: str
    display: str
    count: int
    units: tuple[tuple[str, int], ...]
    status: str  # READ_BY_CODE, READ_BY_TEXT, LOOKS_LIKE, OTHER
    concept: str | None  # the rules' concept (lab kind) it is or looks like


def _concept_of(resource_type: str, resource: dict[str, Any]) -> dict[str, Any] | None:
    field = {"Observation": "code", "Medication": "code"}.get(resource_type, "medicationCodeableConcept")
    concept = resource.get(field)
    return concept if isinstance(concept, dict) else None


def count_part(
    part: Part, max_line_bytes: int
) -> Iterator[tuple[tuple[str, str, str, str], tuple[int, Counter[str]]]]:
    """``((kind, system, code, display), (1, units))`` per coding of each lab or medication concept."""
    for _, parsed in read_part(part, max_line_bytes):
        if not isinstance(parsed, Record) or parsed.resource_type not in (
            "Observation", "MedicationRequest", "MedicationStatement", "Medication",
        ):  # fmt: skip
            continue
        concept = _concept_of(parsed.resource_type, parsed.resource)
        if concept is None:
            continue
        kind = LAB if parsed.resource_type == "Observation" else MEDICATION
        unit = string((parsed.resource.get("valueQuantity") or {}).get("unit")) if kind == LAB else None
        units: Counter[str] = Counter([unit] if unit else [])
        text = string(concept.get("text")) or ""
        codings = [c for c in objects(concept.get("coding")) if isinstance(c, dict) and string(c.get("code"))]
        for coding in codings or [{"system": "", "code": "", "display": text}]:
            display = string(coding.get("display")) or text
            yield (
                (kind, string(coding.get("system")) or "", string(coding.get("code")) or "", display),
                (1, units),
            )


def _merge(a: tuple[int, Counter[str]], b: tuple[int, Counter[str]]) -> tuple[int, Counter[str]]:
    units = a[1] + b[1]
    return a[0] + b[0], Counter(dict(units.most_common(MAX_UNITS)))


def classify(knowledge: Knowledge, kind: str, system: str, code: str, display: str) -> tuple[str, str | None]:
    """What the rules make of one coding (with its display as the concept's only text)."""
    coded = {"coding": [{"system": system, "code": code}]} if code else {}
    named = {"text": display} if display else {}
    if kind == LAB:
        classifier = lab_classifier(knowledge)
        by_code = classifier.kind_of(coded) if coded else None
        if by_code:
            return READ_BY_CODE, by_code
        by_text = classifier.kind_of(named) if named else None
        if by_text:
            return READ_BY_TEXT, by_text
    else:
        classifier = medication_classifier(knowledge)
        if coded and classifier.classify([coded]) is not NOT_RELEVANT:
            return READ_BY_CODE, "insulin" if classifier.classify([coded]).insulin else "medication"
        if named and classifier.classify([named]) is not NOT_RELEVANT:
            return READ_BY_TEXT, "insulin" if classifier.classify([named]).insulin else "medication"
    for name, pattern, target in HINTS:
        if display and pattern.search(display) and (kind == LAB or target in MEDICATION_TARGETS):
            return LOOKS_LIKE, target if kind == LAB else name
    return OTHER, None


def survey(
    sc: Any,
    export: Export,
    env: Mapping[str, str],
    *,
    top: int = DEFAULT_TOP,
    part_bytes: int | None = None,
    max_line_bytes: int = 32 * 1024 * 1024,
) -> list[SurveyedCode]:
    """The ``top`` most frequent lab and medication codings of the export, each classified (``sc``: a
    SparkContext)."""
    parts = plan(export.files, part_bytes) if part_bytes else plan(export.files)
    counted = (
        sc.parallelize(parts, max(1, min(len(parts), sc.defaultParallelism * 4)))
        .mapPartitions(lambda items: chain.from_iterable(count_part(p, max_line_bytes) for p in items))
        .reduceByKey(_merge)
    )
    knowledge = executor_knowledge(env)
    found: list[SurveyedCode] = []
    for kind in (LAB, MEDICATION):
        best = counted.filter(lambda kv, k=kind: kv[0][0] == k).takeOrdered(top, key=lambda kv: -kv[1][0])
        for (_, system, code, display), (count, units) in best:
            status, concept = classify(knowledge, kind, system, code, display)
            found.append(
                SurveyedCode(
                    kind, system, code, display, count, tuple(units.most_common(MAX_UNITS)), status, concept
                )
            )
    return found


def surveyed_at() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
