"""Condition facts: active (or recurring/relapsed), not refuted, matched to the knowledge's value sets.

Records carry a Condition per visit (issue 16): entries with the same codes (or, uncoded, the same text)
are one fact, shown once with the earliest onset and how many times it was recorded."""

from __future__ import annotations

import functools
from typing import Any

from cds_hooks.clinical.facts.model import ConditionFact, Evidence, UnusableResult
from cds_hooks.clinical.knowledge import Knowledge, union
from cds_hooks.fhir.concept_memo import Memo, concept_key
from cds_hooks.fhir.json_access import codes, objects, string
from cds_hooks.fhir.resource_index import ResourceIndex

ACTIVE = frozenset({"active", "recurrence", "relapse"})
NOT_TRUE = frozenset({"refuted", "entered-in-error"})

# Value sets the rules ask about besides the autoimmune groups and other causes.
RULE_CONDITION_SETS = (
    "diabetes",
    "ataxia-telangiectasia",
    "type-b-insulin-resistance",
    "acanthosis-nigricans",
    "adrenal-insufficiency",
    # the switch's hypoglycaemia risk and the groups it must not dose (issue 22 A1, A3)
    "impaired-hypoglycaemia-awareness",
    "ckd-severe",
    "dialysis",
    "pregnancy-current",
    "hypopituitarism",
)


def condition_valueset_ids(knowledge: Knowledge) -> list[str]:
    ids = [*RULE_CONDITION_SETS, *sorted(knowledge.autoimmune_groups)]
    ids += [c.valueset for c in knowledge.other_causes if c.valueset]
    return [i for i in dict.fromkeys(ids) if i in knowledge.valuesets]


@functools.lru_cache(maxsize=8)
def condition_memo(knowledge: Knowledge) -> Memo[frozenset[str]]:
    """Condition concept → the value-set ids it matches, memoised per distinct concept."""
    valuesets = [knowledge.valuesets[i] for i in condition_valueset_ids(knowledge)]
    any_of = union(valuesets)
    none: frozenset[str] = frozenset()
    return Memo(
        lambda code: (
            frozenset(vs.id for vs in valuesets if vs.matches_concept(code))
            if any_of.matches_concept(code)
            else none
        )
    )


def _name(code: dict[str, Any]) -> str:
    if isinstance(code.get("text"), str) and code["text"]:
        return code["text"]
    for coding in objects(code.get("coding")):
        if isinstance(coding, dict) and coding.get("display"):
            return str(coding["display"])
    return next(iter(sorted(codes(code))), "condition")


def _same_condition(code: dict[str, Any], name: str) -> Any:
    """What makes two entries the same condition: their codings, else their name."""
    codings = frozenset(
        (string(c.get("system")), string(c.get("code")))
        for c in objects(code.get("coding"))
        if isinstance(c, dict) and c.get("code")
    )
    return codings or name.strip().lower()


def collect_conditions(
    index: ResourceIndex, knowledge: Knowledge, unusable: list[UnusableResult] | None = None
) -> list[ConditionFact]:
    """Matched conditions, one per distinct code; a relevant one that is not valid FHIR R4 goes to
    ``unusable`` instead."""
    memo = condition_memo(knowledge)
    merged: dict[Any, list[tuple[str, dict[str, Any], frozenset[str]]]] = {}
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
        merged.setdefault(_same_condition(code, name), []).append((name, condition, groups))
    return [_fact(entries) for entries in merged.values()]


def _onset(condition: dict[str, Any]) -> str | None:
    onset = condition.get("onsetDateTime") or condition.get("recordedDate")
    return str(onset)[:10] if isinstance(onset, str) and onset else None


def _fact(entries: list[tuple[str, dict[str, Any], frozenset[str]]]) -> ConditionFact:
    """One fact for the entries of one condition: the earliest-onset entry stands for them all."""
    name, first, groups = min(entries, key=lambda e: (_onset(e[1]) is None, _onset(e[1]) or ""))
    onset = _onset(first)
    rid = first.get("id")
    since = f", since {onset}" if onset else ""
    times = f", recorded {len(entries)} times" if len(entries) > 1 else ""
    return ConditionFact(
        groups=groups,
        name=name,
        evidence=Evidence(
            reference=f"Condition/{rid}" if isinstance(rid, str) else "",
            text=f"{name} (active condition{since}{times})",
        ),
        onset=onset,
        count=len(entries),
    )
