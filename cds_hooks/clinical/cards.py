"""Rule results → CDS Hooks 2.0 cards (O1–O6): uuid, summary, indicator, markdown detail with the
evidence, source with topic, suggestions as draft FHIR resources, override reasons, links.

No member is ever null or empty (J2): optional members are left out when there is nothing to say.
"""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass
from typing import Any

from cds_hooks.clinical.facts.model import MedicationUse, PatientFacts
from cds_hooks.clinical.findings import Findings
from cds_hooks.clinical.knowledge import Coding, Knowledge, WorkupTest
from cds_hooks.clinical.rules import RuleResult

RULE_SYSTEM = "https://immune-ir-cds.example.org/fhir/CodeSystem/rules"
OVERRIDE_SYSTEM = "https://immune-ir-cds.example.org/fhir/CodeSystem/override-reason"
SOURCE_PATH = "/sources/immune-insulin-resistance"
APP_LAUNCH_PATH = "/app/launch"  # the SMART app: timeline and "why this card" (docs/timeline.md)


@dataclass(frozen=True)
class CardContext:
    facts: PatientFacts
    findings: Findings
    knowledge: Knowledge
    base_url: str  # absolute URL of this service, for source/links


def _uuid() -> str:
    return str(uuid.uuid4())


def _concept(coding: Coding, text: str | None = None) -> dict[str, Any]:
    concept: dict[str, Any] = {"coding": [coding.as_fhir()]}
    if text:
        concept["text"] = text
    return concept


def _service_request(
    ctx: CardContext, concept: dict[str, Any], category: dict[str, Any], extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "proposal",
        "category": [category],
        "code": concept,
        "subject": {"reference": f"Patient/{ctx.facts.patient_id}"},
    }
    resource.update(extra or {})
    return resource


def _lab_order_actions(ctx: CardContext, tests: list[WorkupTest], description: str) -> list[dict[str, Any]]:
    """One create action per test: a draft laboratory ServiceRequest."""
    category = _concept(ctx.knowledge.lab_category)
    return [
        {
            "type": "create",
            "description": description.format(t.text),
            "resource": _service_request(ctx, _concept(t.code, t.text), category),
        }
        for t in tests
    ]


def workup_suggestion(ctx: CardContext, kinds: tuple[str, ...]) -> dict[str, Any] | None:
    """One suggestion ordering the listed tests (``RuleResult.workup``: already only those with no valid
    result in their window and not pending, see ``rules.tests_to_propose``)."""
    k = ctx.knowledge
    tests = [k.workup[kind] for kind in kinds if kind in k.workup]
    if not tests:
        return None
    actions = _lab_order_actions(ctx, tests, "Order {}")
    names = ", ".join(t.text for t in tests)
    label = f"Order workup: {names}"
    if len(label) > 120:
        label = f"Order the suggested workup ({len(tests)} tests)"
    return {"label": label, "uuid": _uuid(), "actions": actions}


def referral_suggestion(ctx: CardContext) -> dict[str, Any]:
    ref = ctx.knowledge.referral
    resource = _service_request(
        ctx, {"text": ref.text}, _concept(ref.category), {"performerType": _concept(ref.performer_type)}
    )
    return {
        "label": "Refer to endocrinology",
        "uuid": _uuid(),
        "actions": [
            {"type": "create", "description": "Create a referral to endocrinology", "resource": resource}
        ],
    }


def replacement_request(
    ctx: CardContext, med: MedicationUse, source: dict[str, Any] | None
) -> dict[str, Any]:
    """A draft MedicationRequest for recombinant human insulin of the same action profile, keeping the
    dosage instructions and adding a note to re-titrate."""
    wording = ctx.knowledge.wording
    replacement = wording.replacements.get(med.insulin_profile or "unknown", wording.replacements["unknown"])
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "status": "draft",
        "intent": "proposal",
        "medicationCodeableConcept": replacement.concept(),
        "subject": {"reference": f"Patient/{ctx.facts.patient_id}"},
        "note": [{"text": wording.re_titrate_note.format(medication=med.name)}],
    }
    if source is not None:
        dosage = source.get("dosageInstruction") or source.get("dosage")
        if isinstance(dosage, list) and dosage:
            resource["dosageInstruction"] = copy.deepcopy(dosage)
    return resource


def switch_suggestion(
    ctx: CardContext, meds: tuple[MedicationUse, ...], sources: dict[str, dict[str, Any]]
) -> dict[str, Any] | None:
    if not meds:
        return None
    actions = [
        {
            "type": "create",
            "description": f"Propose recombinant human insulin in place of {m.name}",
            "resource": replacement_request(ctx, m, sources.get(m.evidence.reference)),
        }
        for m in meds
    ]
    return {
        "label": "Switch to recombinant human insulin",
        "uuid": _uuid(),
        "actions": actions,
        "isRecommended": True,
    }


def replace_drafts_suggestion(
    ctx: CardContext, drafts: tuple[tuple[MedicationUse, dict[str, Any]], ...]
) -> dict[str, Any] | None:
    """Order hooks: delete each animal-insulin draft and create its human-insulin replacement, in one
    suggestion (actions are applied together, like a transaction)."""
    if not drafts:
        return None
    actions: list[dict[str, Any]] = []
    for med, draft in drafts:
        actions.append(
            {
                "type": "delete",
                "description": f"Remove the draft order for {med.name} (animal-derived insulin)",
                "resourceId": f"MedicationRequest/{draft.get('id')}",
            }
        )
        actions.append(
            {
                "type": "create",
                "description": f"Order recombinant human insulin in place of {med.name}",
                "resource": replacement_request(ctx, med, draft),
            }
        )
    return {
        "label": "Replace with recombinant human insulin",
        "uuid": _uuid(),
        "actions": actions,
        "isRecommended": True,
    }


def monitoring_suggestion(ctx: CardContext, kinds: tuple[str, ...]) -> dict[str, Any] | None:
    """Tests to monitor with (glucose while on a glucocorticoid), proposed even after a recent result."""
    k = ctx.knowledge
    tests = [k.workup[kind] for kind in kinds if kind in k.workup]
    if not tests:
        return None
    actions = _lab_order_actions(ctx, tests, "Order {} monitoring")
    return {
        "label": f"Order monitoring: {', '.join(t.text for t in tests)}",
        "uuid": _uuid(),
        "actions": actions,
    }


def _detail(ctx: CardContext, result: RuleResult, template: str) -> str:
    wording = ctx.knowledge.wording
    meds = ", ".join(result.medications) or "see evidence"
    parts = [template.replace("{medications}", meds)]
    # Pending tests are listed, not proposed again ("Pending: <test>, ordered <date>").
    lines = [*result.evidence, *(p.evidence for p in result.pending)]
    if lines:
        parts.append(f"**{wording.evidence_heading}**\n\n" + "\n".join(f"- {e.text}" for e in lines))
    shown = set(result.evidence)
    others = [e for e in ctx.findings.other_causes if e not in shown]
    if others:
        parts.append(f"**{wording.other_causes_heading}**\n\n" + "\n".join(f"- {e.text}" for e in others))
    if ctx.facts.unusable:
        parts.append(
            f"**{wording.unusable_heading}**\n\n"
            + "\n".join(f"- {u.evidence.text} ({u.reason})" for u in ctx.facts.unusable[:10])
        )
    parts.append(f"[{wording.source_link_label}]({ctx.base_url}{SOURCE_PATH})")
    return "\n\n".join(parts)


def render_card(ctx: CardContext, result: RuleResult, sources: dict[str, dict[str, Any]]) -> dict[str, Any]:
    wording = ctx.knowledge.wording
    card_wording = wording.cards[result.rule_id]
    variant = card_wording.variants[result.variant]
    card: dict[str, Any] = {
        "uuid": _uuid(),
        "summary": variant.summary,
        "indicator": result.indicator or card_wording.indicator,
        "detail": _detail(ctx, result, variant.detail),
        "source": {
            "label": wording.source_label,
            "url": f"{ctx.base_url}{SOURCE_PATH}",
            "topic": {"system": RULE_SYSTEM, "code": result.rule_id, "display": variant.summary},
        },
    }
    suggestions = [
        s
        for s in (
            replace_drafts_suggestion(ctx, result.replace_drafts),
            switch_suggestion(ctx, result.switch_from, sources),
            monitoring_suggestion(ctx, result.monitoring),
            workup_suggestion(ctx, result.workup),
            referral_suggestion(ctx) if result.referral else None,
        )
        if s is not None
    ]
    if suggestions:
        card["suggestions"] = suggestions
        # A lone suggestion replacing draft orders is an either/or choice; otherwise each stands alone.
        card["selectionBehavior"] = "at-most-one" if len(suggestions) == 1 else "any"
    card["overrideReasons"] = [
        {"system": OVERRIDE_SYSTEM, "code": code, "display": display}
        for code, display in wording.override_reasons
    ]
    card["links"] = [
        {"label": wording.source_link_label, "url": f"{ctx.base_url}{SOURCE_PATH}", "type": "absolute"},
        smart_link(ctx, result.rule_id, card["uuid"]),
    ]
    return card


def smart_link(ctx: CardContext, rule_id: str, card_uuid: str) -> dict[str, Any]:
    """The card's link to the SMART app: the EHR launches it with this rule and card as ``appContext``."""
    return {
        "label": ctx.knowledge.wording.timeline_link_label,
        "url": f"{ctx.base_url}{APP_LAUNCH_PATH}",
        "type": "smart",
        "appContext": json.dumps({"rule": rule_id, "card": card_uuid}, separators=(",", ":")),
    }
