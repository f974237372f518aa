"""The draft of a site's ConceptMap from a survey: every local code that looks like one of the rules'
concepts (or that the rules read only by its text) mapped to the standard code the knowledge lists
first for that concept. A draft for review: ``status`` is ``draft``, each mapping says why it was
proposed, and the service applies the file only once ``CDS_HOOKS_SITE_CONCEPT_MAP`` names it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cds_hooks.bulk.survey import LAB, LOOKS_LIKE, MEDICATION_TARGETS, READ_BY_TEXT, SurveyedCode, surveyed_at
from cds_hooks.clinical.knowledge import ATC, LOINC, RXNORM, Knowledge


def _target(knowledge: Knowledge, item: SurveyedCode) -> tuple[str, str] | None:
    """(system, code) the knowledge lists first for the concept the code is, or looks like."""
    if item.concept is None:
        return None
    if item.kind == LAB:
        lab = knowledge.labs.get(item.concept)
        codes = lab.valueset.codes(LOINC) if lab else []
        return (LOINC, codes[0]) if codes else None
    valueset = knowledge.valuesets.get(MEDICATION_TARGETS.get(item.concept, ""))
    for system in (RXNORM, ATC):
        codes = valueset.codes(system) if valueset else []
        if codes:
            return system, codes[0]
    return None


def draft_concept_map(knowledge: Knowledge, surveyed: Iterable[SurveyedCode], source: str) -> dict[str, Any]:
    """A FHIR R4 ConceptMap (one group per local system and target system)."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for item in surveyed:
        if item.status not in (LOOKS_LIKE, READ_BY_TEXT) or not item.code or not item.system:
            continue
        target = _target(knowledge, item)
        if target is None:
            continue
        why = (
            f"DRAFT: '{item.display}' looks like {item.concept} by its name"
            if item.status == LOOKS_LIKE
            else f"DRAFT: read by the rules only by its text ({item.concept})"
        )
        units = ", ".join(u for u, _ in item.units)
        groups.setdefault((item.system, target[0]), []).append(
            {
                "code": item.code,
                "display": item.display,
                "target": [
                    {
                        "code": target[1],
                        "equivalence": "equivalent",
                        "comment": f"{why}; {item.count} records"
                        + (f"; units seen: {units}" if units else ""),
                    }
                ],
            }
        )
    return {
        "resourceType": "ConceptMap",
        "status": "draft",
        "name": "SiteLocalCodes",
        "title": "A site's local lab and medication codes mapped for the immune insulin resistance rules",
        "date": surveyed_at(),
        "description": f"Drafted by `cds-hooks survey` from {source}. Review every mapping, remove the wrong "
        "ones, then name this file in CDS_HOOKS_SITE_CONCEPT_MAP.",
        "group": [
            {"source": system, "target": target, "element": elements}
            for (system, target), elements in sorted(groups.items())
        ],
    }
