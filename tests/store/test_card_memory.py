"""The two decisions over remembered cards, as pure functions: snooze (evidence subset, per rule, until
snooze_days) and no repeat at signing (every draft of the signing card acknowledged at order-select)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cds_hooks.clinical.facts.model import Evidence
from cds_hooks.hooks.card_memory import (
    IssuedCard,
    Snooze,
    draft_fingerprints,
    evidence_fingerprints,
    is_snoozed,
    shown_at_select,
)

NOW = datetime(2026, 12, 1, tzinfo=UTC)
PORK = Evidence("MedicationStatement/ms1", "Hypurin Porcine 20 units twice daily")
GLUCOSE = Evidence("Observation/g1", "Glucose 320 mg/dL on 2026-11-30")


def card(rule: str, variant: str, *evidence: Evidence, drafts: frozenset[str] = frozenset()) -> IssuedCard:
    return IssuedCard("u", rule, "warning", evidence_fingerprints(variant, evidence), drafts)


def test_snooze_holds_for_the_same_or_less_evidence_of_the_same_rule():
    snooze = Snooze(
        "animal-insulin-switch", card("animal-insulin-switch", "default", PORK, GLUCOSE).evidence, NOW
    )
    assert is_snoozed(card("animal-insulin-switch", "default", PORK), [snooze], 90, NOW)
    assert is_snoozed(card("animal-insulin-switch", "default", PORK, GLUCOSE), [snooze], 90, NOW)
    assert not is_snoozed(card("type-b-insulin-resistance", "default", PORK), [snooze], 90, NOW)


def test_a_new_resource_a_changed_value_or_another_variant_ends_the_snooze():
    snooze = Snooze("r", card("r", "default", PORK).evidence, NOW)
    assert not is_snoozed(card("r", "default", PORK, GLUCOSE), [snooze], 90, NOW)
    changed = Evidence(PORK.reference, "Hypurin Porcine 40 units twice daily")
    assert not is_snoozed(card("r", "default", changed), [snooze], 90, NOW)
    assert not is_snoozed(card("r", "likely", PORK), [snooze], 90, NOW)


def test_snooze_days_bound_the_snooze():
    snooze = Snooze("r", card("r", "default", PORK).evidence, NOW - timedelta(days=30))
    assert is_snoozed(card("r", "default", PORK), [snooze], 31, NOW)
    assert not is_snoozed(card("r", "default", PORK), [snooze], 30, NOW)


def test_draft_fingerprints_follow_the_cited_draft_and_its_content():
    draft = {
        "resourceType": "MedicationRequest",
        "id": "d1",
        "status": "draft",
        "dosageInstruction": [{"text": "a"}],
    }
    cited = Evidence("MedicationRequest/d1", "draft order")
    drafts = {"MedicationRequest/d1": draft, "MedicationRequest/d2": {"id": "d2"}}
    (fingerprint,) = draft_fingerprints([cited, PORK], drafts)
    assert fingerprint.startswith("MedicationRequest/d1#")
    changed = {**draft, "dosageInstruction": [{"text": "b"}]}
    assert draft_fingerprints([cited], {"MedicationRequest/d1": changed}) != {fingerprint}
    assert draft_fingerprints([cited], {"MedicationRequest/d1": dict(reversed(draft.items()))}) == {
        fingerprint
    }


def test_a_signing_card_is_left_out_only_when_all_its_drafts_were_acknowledged():
    a, b = "MedicationRequest/a#1", "MedicationRequest/b#2"
    selected = [
        IssuedCard("s1", "r", "info", frozenset(), frozenset({a})),
        IssuedCard("s2", "r", "info", frozenset(), frozenset({b})),
    ]
    assert shown_at_select(IssuedCard("x", "r", "warning", frozenset(), frozenset({a, b})), selected)
    assert not shown_at_select(
        IssuedCard("x", "r", "warning", frozenset(), frozenset({a, "MedicationRequest/c#3"})), selected
    )
    assert not shown_at_select(IssuedCard("x", "other", "warning", frozenset(), frozenset({a})), selected)
    assert not shown_at_select(IssuedCard("x", "r", "warning", frozenset(), frozenset()), selected)
