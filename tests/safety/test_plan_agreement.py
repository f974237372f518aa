"""Cards that fire together make one plan (issue 22 B7; hazard log H06): over every example patient and
every vignette, no two cards of one response propose the same test or the same order."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from tests.clinical.test_card_budget import CARDS


def _orders(card: dict[str, Any]) -> set[tuple[str, str]]:
    """What a card's suggestions would create: (resource type, code or medication text)."""
    out = set()
    for suggestion in card.get("suggestions") or []:
        for action in suggestion.get("actions") or []:
            resource = action.get("resource") or {}
            if action.get("type") != "create":
                continue
            concept = resource.get("code") or resource.get("medicationCodeableConcept") or {}
            codes = [f"{c.get('system')}|{c.get('code')}" for c in concept.get("coding") or []]
            out |= {(resource.get("resourceType", "?"), code) for code in codes or [concept.get("text", "")]}
    return out


def test_no_two_cards_of_one_patient_propose_the_same_test_or_order() -> None:
    """Issue 22 B7: a test or order proposed by two cards would be ordered twice when both are accepted."""
    by_case: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for name, card in CARDS:
        case, rule = name.rsplit(":", 1)
        by_case[case].append((rule, card))
    together = {case: cards for case, cards in by_case.items() if len(cards) > 1}
    assert len(together) >= 5  # the co-firing cases exist (ex24, ex25, ex26, vignettes 115, 116, ...)
    doubled = []
    for case, cards in together.items():
        seen: dict[tuple[str, str], str] = {}
        for rule, card in cards:
            for order in _orders(card):
                if order in seen and seen[order] != rule:
                    doubled.append((case, order, seen[order], rule))
                seen.setdefault(order, rule)
    assert doubled == []
