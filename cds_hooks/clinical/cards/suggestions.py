"""The suggestions a card makes besides the insulin switch: draft laboratory orders for a workup or for
monitoring, timed capillary glucose, and the referral to endocrinology."""

from __future__ import annotations

import uuid
from typing import Any

from cds_hooks.clinical.cards.context import CardContext
from cds_hooks.clinical.knowledge import Coding, WorkupTest
from cds_hooks.clinical.wording import TimedTest


def new_uuid() -> str:
    return str(uuid.uuid4())


SOURCES_PATH = "/sources"


def rule_page_url(ctx: CardContext, rule_id: str) -> str:
    return f"{ctx.base_url}{SOURCES_PATH}/{rule_id}"


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
    """One suggestion ordering the listed tests (``RuleResult.workup`` holds only those with no valid
    result in their window and not pending: ``rules.tests_to_propose``)."""
    k = ctx.knowledge
    tests = [k.workup[kind] for kind in kinds if kind in k.workup]
    if not tests:
        return None
    actions = _lab_order_actions(ctx, tests, "Order {}")
    names = ", ".join(t.text for t in tests)
    label = f"Order {names}"
    if len(label) > 120:
        label = f"Order the suggested tests ({len(tests)})"
    return {"label": label, "uuid": new_uuid(), "actions": actions}


def referral_suggestion(ctx: CardContext) -> dict[str, Any]:
    ref = ctx.knowledge.referral
    resource = _service_request(
        ctx, {"text": ref.text}, _concept(ref.category), {"performerType": _concept(ref.performer_type)}
    )
    return {
        "label": "Refer to endocrinology",
        "uuid": new_uuid(),
        "actions": [
            {"type": "create", "description": "Create a referral to endocrinology", "resource": resource}
        ],
    }


def timed_monitoring_suggestion(ctx: CardContext, test: TimedTest) -> dict[str, Any]:
    """A test repeated at set times of day (capillary glucose before lunch and the evening meal)."""
    concept = {
        "coding": [{"system": test.system, "code": test.code, "display": test.display}],
        "text": test.text,
    }
    resource = _service_request(
        ctx,
        concept,
        _concept(ctx.knowledge.lab_category),
        {"occurrenceTiming": {"repeat": {"when": list(test.when)}}},
    )
    return {
        "label": test.label,
        "uuid": new_uuid(),
        "actions": [{"type": "create", "description": f"Order {test.text.lower()}", "resource": resource}],
    }


def monitoring_suggestion(ctx: CardContext, kinds: tuple[str, ...]) -> dict[str, Any] | None:
    """Tests to monitor with, proposed even after a recent result."""
    k = ctx.knowledge
    tests = [k.workup[kind] for kind in kinds if kind in k.workup]
    if not tests:
        return None
    actions = _lab_order_actions(ctx, tests, "Order {} monitoring")
    return {
        "label": f"Order monitoring: {', '.join(t.text for t in tests)}",
        "uuid": new_uuid(),
        "actions": actions,
    }
