"""Issue 22 B7: one plan for the cards of one answer — no two cards propose the same test or referral,
and a card that leaves a test to another card names that card."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cds_hooks.clinical.knowledge import default_knowledge
from cds_hooks.clinical.rules import RULES_BY_ID, RuleResult, share_out
from cds_hooks.clinical.rules.one_plan import REFERRAL
from tests.snapshots.test_card_snapshot import CURRENT


def _result(rule_id: str, **kw: Any) -> RuleResult:
    return RuleResult(rule_id=rule_id, variant="x", evidence=(), **kw)


def test_the_first_card_keeps_a_shared_test_and_the_later_one_names_it() -> None:
    first = _result("insulin-antibody-workup", workup=("insulin_antibody", "insulin", "c_peptide"))
    later = _result(
        "type-b-insulin-resistance",
        workup=("insulin", "c_peptide", "insulin_receptor_antibody"),
        referral=True,
    )
    kept, shared = share_out([first, later])
    assert kept == first
    assert shared.workup == ("insulin_receptor_antibody",)
    assert shared.referral is True  # the first card made no referral
    assert shared.deferred == (
        ("insulin", "insulin-antibody-workup"),
        ("c_peptide", "insulin-antibody-workup"),
    )


def test_a_monitoring_test_and_the_referral_are_shared_like_a_workup_test() -> None:
    at = _result("ataxia-telangiectasia-ir", workup=("hba1c", "insulin"))
    ias = _result("insulin-autoimmune-syndrome", referral=True)
    steroid = _result("glucocorticoid-hyperglycemia", monitoring=("hba1c", "glucose"))
    type_b = _result("type-b-insulin-resistance", referral=True, workup=("insulin",))
    _, _, s, b = share_out([at, ias, steroid, type_b])
    assert s.monitoring == ("glucose",) and s.deferred == (("hba1c", "ataxia-telangiectasia-ir"),)
    assert b.referral is False and b.workup == ()
    assert b.deferred == (("insulin", "ataxia-telangiectasia-ir"), (REFERRAL, "insulin-autoimmune-syndrome"))


def test_results_that_share_nothing_are_unchanged() -> None:
    results = [_result("animal-insulin-switch"), _result("type-b-insulin-resistance", workup=("ana",))]
    assert share_out(results) == results


def _proposals(card: dict[str, Any]) -> set[str]:
    """What a card's suggestions order or refer to, as comparable keys."""
    keys = set()
    for suggestion in card.get("suggestions", []):
        for action in suggestion.get("actions", []):
            resource = action.get("resource") or {}
            if resource.get("resourceType") != "ServiceRequest":
                continue
            keys.add(json.dumps([resource.get("code"), resource.get("performerType")], sort_keys=True))
    return keys


@pytest.mark.parametrize("case", sorted(k for k, cards in CURRENT.items() if len(cards) > 1))
def test_no_two_cards_of_an_answer_propose_the_same_order(case: str) -> None:
    """Over every example patient and vignette that gets several cards."""
    seen: dict[str, str] = {}
    for card in CURRENT[case]:
        rule = card["source"]["topic"]["code"]
        for key in _proposals(card):
            assert key not in seen, f"{case}: {rule} proposes {key} again (already on {seen[key]})"
            seen[key] = rule


def test_a_card_that_defers_names_the_card_that_proposes() -> None:
    """Vignette 043 (antibody workup and type B together): type B leaves insulin, C-peptide and insulin
    antibodies to the antibody card and says so; vignette 116: the steroid card leaves HbA1c to A-T."""
    wording = default_knowledge().wording
    antibody, type_b = CURRENT["vignette:043_r2_and_r3_past_pork_extreme_human_dose_sle"]
    name = wording.cards[RULES_BY_ID["insulin-antibody-workup"].id].name
    assert f"{wording.deferred_heading}**" in type_b["detail"]
    assert f"C-peptide: on the {name} card" in type_b["detail"]
    assert "C-peptide" in json.dumps(antibody["suggestions"])
    at, steroid = CURRENT["vignette:116_r4_and_r5_at_with_prednisolone_for_ild"]
    assert "Haemoglobin A1c: on the ataxia-telangiectasia card" in steroid["detail"]
    assert "A1c" not in json.dumps(steroid.get("suggestions", []))
    assert "A1c" in json.dumps(at["suggestions"])
