"""Condition facts: active (or recurring/relapsed), not refuted, matched to the knowledge's value sets."""

from __future__ import annotations

import functools
from typing import Any

from cds_hooks.clinical.facts.model import ConditionFact, Evidence, UnusableResult
from cds_hooks.clinical.knowledge import Knowledge
from cds_hooks.fhir.concept_memo import Memo, concept_key
from cds_hooks.fhir.json_access import codes, objects
from cds_hooks.fhir.resource_index import ResourceIndex

ACTIVE = frozenset({"active", "recurrence", "relapse"})
NOT_TRUE = frozenset({"refuted", "entered-in-error"})

# Value sets the rules ask about besides the autoimmune groups and other causes.
RULE_CONDITION_SETS = ("diabetes", "ataxia-telangiectasia", "type-b-insulin-resistance")


def condition_valueset_ids(knowledge: Knowledge) -> list[str]:
    ids = [*RULE_CONDITION_SETS, *sorted(knowledge.autoimmune_groups)]
    ids += [c.valueset for c in knowledge.other_causes if c.valueset]
    return [i for i in dict.fromkeys(ids) if i in knowledge.valuesets]


@functools.lru_cache(maxsize=8)
def condition_memo(knowledge: Knowledge) -> Memo[frozenset[str]]:
    """Condition concept → the value-set ids it matches, memoised per distinct concept."""
    valuesets = [knowledge.valuesets[i] for i in condition_valueset_ids(knowledge)]
    return Memo(lambda code: frozenset(vs.id for vs in valuesets if vs.matches_concept(code)))


def _name(code: dict[str, Any]) -> str:
    if isinstance(code.get("text"), str) and code["text"]:
        return code["text"]
    for coding in objects(code.get("coding")):
        if isinstance(coding, dict) and coding.get("display"):
            return str(coding["display"])
    return next(iter(sorted(codes(code))), "condition")


def collect_conditions(
    index: ResourceIndex, knowledge: Knowledge, unusable: list[UnusableResult] | None = None
) -> list[ConditionFact]:
    """Matched conditions; a relevant one that is not valid FHIR R4 goes to ``unusable`` instead."""
    memo = condition_memo(knowledge)
    facts: list[ConditionFact] = []
    for condition in index.of_type("Condition"):
        if not (codes(condition.get("clinicalStatus")) & ACTIVE):
            continue
        if codes(condition.get("verificationStatus")) & NOT_TRUE:
            continue
        code = condition.get("code")
        if not isinstance(code, dict):
            continue
        groups = memo.get(concept_key(code), code)
        if not groups:
            continue
        rid = condition.get("id")
        name = _name(code)
        invalid = index.rejection(condition)
        if invalid:
            if unusable is not None:
                ref = f"Condition/{rid}" if isinstance(rid, str) else ""
                unusable.append(UnusableResult("condition", invalid, Evidence(ref, name)))
            continue
        onset = condition.get("onsetDateTime") or condition.get("recordedDate")
        since = f", since {str(onset)[:10]}" if isinstance(onset, str) else ""
        facts.append(
            ConditionFact(
                groups=groups,
                name=name,
                evidence=Evidence(
                    reference=f"Condition/{rid}" if isinstance(rid, str) else "",
                    text=f"{name} (active condition{since})",
                ),
            )
        )
    return facts
