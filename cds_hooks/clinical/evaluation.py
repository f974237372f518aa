"""The pure core for patient-view: resources → patient facts → findings → rule results → cards.

No Flask, no network: the caller has already gathered the resources into a :class:`ResourceIndex`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cds_hooks.clinical.cards.context import CardContext
from cds_hooks.clinical.cards.render import render_card
from cds_hooks.clinical.knowledge import Knowledge
from cds_hooks.clinical.rules import RuleInput, RuleResult, evaluate_rules, evaluate_until_valid, rule_input
from cds_hooks.fhir.resource_index import ResourceIndex

DEFAULT_BASE_URL = "http://localhost:8080"


def evaluate_index(
    index: ResourceIndex,
    *,
    patient_id: str,
    knowledge: Knowledge,
    now: datetime,
    base_url: str = DEFAULT_BASE_URL,
    shown: list[tuple[RuleResult, dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """Evaluate the patient-view rules over an index of the patient's resources."""

    def run() -> tuple[RuleInput, list[RuleResult]]:
        x = rule_input(index, knowledge, patient_id, now)
        return x, evaluate_rules(x)

    x, results = evaluate_until_valid(index, run)
    facts, findings = x.facts, x.findings
    ctx = CardContext(facts=facts, findings=findings, knowledge=knowledge, base_url=base_url.rstrip("/"))
    cards = [render_card(ctx, result) for result in results]
    if shown is not None:  # the caller remembers which rule result each card came from (card log)
        shown.extend(zip(results, cards, strict=True))
    return {"cards": cards}
