"""Clinical vignettes: hand-written patients, each a CDS Hooks request with the exact set of cards it gets.

Every file in ``cases/`` is one patient (see README.md in this folder for the index). A case holds:

- ``expected_rules``: the exact set of rule ids (``card.source.topic.code``); ``[]`` means ``{"cards": []}``;
- ``expect_text`` (optional): rule id -> substrings (case-insensitive) that must appear in the card's
  summary or detail;
- ``forbid_text`` (optional): rule id -> substrings (case-insensitive) that must NOT appear there
  (exponent notation, a dose where a specialist team decides);
- ``expect_indicator`` (optional): rule id -> the card's indicator (``info``, ``warning``, ``critical``);
- ``expect_no_text`` (optional): rule id -> substrings (case-sensitive) that must NOT appear in the card's
  summary or detail (issue 22: hyperlipidaemia is not an "other cause"; no visible markdown escape);
- ``expect_suggestions`` (optional): rule id -> checks on the draft resources the card's suggestions create:
  ``includes_service_request_loinc`` (every listed LOINC code is requested),
  ``includes_any_service_request_loinc`` (at least one of the listed codes is requested),
  ``excludes_service_request_loinc`` (none of the listed codes is requested),
  ``includes_medication_request`` (true: a MedicationRequest is created; false: none is);
- ``expect_switch`` (optional): rule id -> checks on the switch to human insulin: ``actions`` (the action
  types of each switch suggestion, in order: the create always first), ``doses`` (the proposed units per
  administration, in order; ``[]``: no dose copied), ``stopped`` (ids of the prescriptions the update
  actions stop), ``note`` (substrings of the proposed order's note).

The cases are written from the clinical specification (issue 3), not from the rule code.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

CASES_DIR = Path(__file__).parent / "cases"
CASE_FILES = sorted(CASES_DIR.glob("*.json"))

RULE_IDS = (
    "animal-insulin-switch",
    "insulin-antibody-workup",
    "type-b-insulin-resistance",
    "ataxia-telangiectasia-ir",
    "glucocorticoid-hyperglycemia",
    "insulin-autoimmune-syndrome",
)
LOINC = "http://loinc.org"


def load_case(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        return json.load(fh)


def parse_now(text: str) -> datetime:
    now = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert now.tzinfo is not None, f"case 'now' must carry a timezone: {text!r}"
    return now


def created_resources(card: dict[str, Any]) -> list[dict[str, Any]]:
    """Every resource a card's suggestions would create."""
    out = []
    for suggestion in card.get("suggestions") or []:
        for action in suggestion.get("actions") or []:
            resource = action.get("resource")
            if action.get("type") == "create" and isinstance(resource, dict):
                out.append(resource)
    return out


def service_request_loincs(card: dict[str, Any]) -> set[str]:
    codes = set()
    for resource in created_resources(card):
        if resource.get("resourceType") != "ServiceRequest":
            continue
        for coding in (resource.get("code") or {}).get("coding") or []:
            if coding.get("system") == LOINC and coding.get("code"):
                codes.add(coding["code"])
    return codes


def describe(case: dict[str, Any], cards: list[dict[str, Any]]) -> str:
    lines = [f"case: {case['description']}", "cards returned:"]
    lines += [
        f"  - {card.get('source', {}).get('topic', {}).get('code')}: {card.get('summary')}" for card in cards
    ] or ["  (none)"]
    return "\n".join(lines)


def check_card_shape(card: dict[str, Any]) -> None:
    assert card.get("uuid"), f"card without uuid: {card.get('summary')}"
    summary = card.get("summary")
    assert isinstance(summary, str) and summary, "card summary missing"
    assert len(summary) < 140, f"summary is {len(summary)} characters: {summary!r}"
    assert card.get("indicator") in ("info", "warning", "critical"), card.get("indicator")
    source = card.get("source") or {}
    assert source.get("label"), f"card without source.label: {summary}"
    assert (source.get("topic") or {}).get("code"), f"card without source.topic.code: {summary}"
    assert isinstance(card.get("detail"), str) and card["detail"].strip(), f"card without detail: {summary}"
    suggestions = card.get("suggestions")
    if suggestions:
        assert card.get("selectionBehavior"), f"card with suggestions but no selectionBehavior: {summary}"
        for suggestion in suggestions:
            assert suggestion.get("uuid"), f"suggestion without uuid on card {summary!r}"
            assert suggestion.get("label"), f"suggestion without label on card {summary!r}"
            for action in suggestion.get("actions") or []:
                assert action.get("type"), f"action without type in suggestion {suggestion.get('label')!r}"
                assert action.get("description"), f"action without description in {suggestion.get('label')!r}"


@pytest.mark.parametrize("case_file", CASE_FILES, ids=[p.stem for p in CASE_FILES])
def test_vignette(case_file: Path) -> None:
    from cds_hooks.hooks.dispatch import evaluate_offline

    case = load_case(case_file)
    response = evaluate_offline(case["request"], now=parse_now(case["now"]))
    assert isinstance(response, dict) and "cards" in response, response
    cards = response["cards"]

    got = sorted(card["source"]["topic"]["code"] for card in cards)
    assert got == sorted(case["expected_rules"]), describe(case, cards)
    assert len(got) == len(set(got)), f"more than one card for a rule: {got}"

    for card in cards:
        check_card_shape(card)
    by_rule = {card["source"]["topic"]["code"]: card for card in cards}

    for rule_id, needles in (case.get("expect_text") or {}).items():
        card = by_rule[rule_id]
        text = f"{card.get('summary', '')}\n{card.get('detail', '')}".lower()
        for needle in needles:
            assert needle.lower() in text, f"{rule_id}: {needle!r} not in card text\n{text}"

    for rule_id, needles in (case.get("forbid_text") or {}).items():
        card = by_rule[rule_id]
        text = f"{card.get('summary', '')}\n{card.get('detail', '')}".lower()
        for needle in needles:
            assert needle.lower() not in text, f"{rule_id}: {needle!r} in card text\n{text}"

    for rule_id, indicator in (case.get("expect_indicator") or {}).items():
        assert by_rule[rule_id]["indicator"] == indicator, (
            f"{rule_id}: indicator {by_rule[rule_id]['indicator']!r}, expected {indicator!r}"
        )
    for rule_id, needles in (case.get("expect_no_text") or {}).items():
        card = by_rule[rule_id]
        text = f"{card.get('summary', '')}\n{card.get('detail', '')}"
        for needle in needles:
            assert needle not in text, f"{rule_id}: {needle!r} in card text\n{text}"

    for rule_id, checks in (case.get("expect_suggestions") or {}).items():
        card = by_rule[rule_id]
        requested = service_request_loincs(card)
        for code in checks.get("includes_service_request_loinc", []):
            assert code in requested, (
                f"{rule_id}: no ServiceRequest for LOINC {code}; requested {sorted(requested)}"
            )
        any_of = checks.get("includes_any_service_request_loinc")
        if any_of:
            assert requested & set(any_of), (
                f"{rule_id}: none of {any_of} requested; requested {sorted(requested)}"
            )
        for code in checks.get("excludes_service_request_loinc", []):
            assert code not in requested, f"{rule_id}: ServiceRequest for LOINC {code} despite a valid result"
        if "includes_medication_request" in checks:
            has_mr = any(r.get("resourceType") == "MedicationRequest" for r in created_resources(card))
            assert has_mr is checks["includes_medication_request"], (
                f"{rule_id}: MedicationRequest suggestion present={has_mr}, "
                f"expected {checks['includes_medication_request']}"
            )

    for rule_id, checks in (case.get("expect_switch") or {}).items():
        check_switch(rule_id, by_rule[rule_id], checks)


def switch_suggestions(card: dict[str, Any]) -> list[dict[str, Any]]:
    """The suggestions that propose a human-insulin MedicationRequest."""
    return [
        s
        for s in card.get("suggestions") or []
        if any(
            (a.get("resource") or {}).get("resourceType") == "MedicationRequest" and a["type"] == "create"
            for a in s.get("actions") or []
        )
    ]


def check_switch(rule_id: str, card: dict[str, Any], checks: dict[str, Any]) -> None:
    suggestions = switch_suggestions(card)
    if "actions" in checks:
        got = [[a["type"] for a in s["actions"]] for s in suggestions]
        assert got == checks["actions"], f"{rule_id}: switch actions {got}, expected {checks['actions']}"
    created = [s["actions"][0]["resource"] for s in suggestions]
    if "doses" in checks:
        doses = [
            entry["doseQuantity"]["value"]
            for resource in created
            for dosage in resource.get("dosageInstruction") or []
            for entry in dosage.get("doseAndRate") or []
        ]
        assert doses == checks["doses"], f"{rule_id}: proposed doses {doses}, expected {checks['doses']}"
    if "stopped" in checks:
        stopped = [
            a["resource"]["id"]
            for s in suggestions
            for a in s["actions"]
            if a["type"] == "update" and a["resource"]["status"] == "stopped"
        ]
        assert stopped == checks["stopped"], f"{rule_id}: stopped {stopped}, expected {checks['stopped']}"
    notes = " ".join(n["text"] for r in created for n in r.get("note") or [])
    for needle in checks.get("note", []):
        assert needle in notes, f"{rule_id}: {needle!r} not in the proposed order's note: {notes}"


def test_vignette_coverage() -> None:
    assert len(CASE_FILES) >= 40, f"only {len(CASE_FILES)} vignette files"
    counts: Counter[str] = Counter()
    empty = 0
    for path in CASE_FILES:
        case = load_case(path)
        expected = case["expected_rules"]
        assert set(expected) <= set(RULE_IDS), f"{path.name}: unknown rule id in {expected}"
        assert len(expected) == len(set(expected)), f"{path.name}: duplicate rule id"
        for key in (
            "expect_text",
            "forbid_text",
            "expect_no_text",
            "expect_indicator",
            "expect_suggestions",
            "expect_switch",
        ):
            assert set(case.get(key) or {}) <= set(expected), f"{path.name}: {key} names a rule not expected"
        counts.update(expected)
        empty += not expected
    for rule_id in RULE_IDS:
        assert counts[rule_id] >= 2, f"{rule_id} expected in only {counts[rule_id]} cases"
    assert empty >= 10, f"only {empty} cases expect no card"
