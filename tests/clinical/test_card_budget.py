"""Issue 14 acceptance: every card of every example patient and every vignette reads in ten seconds.

Summary under 140 characters and carrying the patient's value when the card rests on a number; prose
before the evidence at most 60 words; at most 5 evidence lines per lab kind; no link and no raw HTML in
the markdown; no doubled words ("Positive (positive)"); units as clinicians write them.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from cds_hooks.clinical.evaluation import evaluate_index
from cds_hooks.clinical.knowledge import default_knowledge
from cds_hooks.fhir.resource_index import ResourceIndex
from cds_hooks.hooks.dispatch import evaluate_offline
from tests.clinical.card_reading import (
    CARD_TAGS,
    PLAIN_FIELD_TAGS,
    doubled_words,
    link_problems,
    prose,
    render,
    sections,
    tags,
    text_fields,
    words,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
VIGNETTES = REPO / "tests" / "vignettes" / "cases"
# A value with its unit: a card resting on one must show a number in its summary.
NUMERIC = re.compile(r"\d(?:[\d.]*)\s?(?:mg/dL|mmol/L|µIU/mL|pmol/L|%|U/day|mmol/mol|U/mL|nmol/L|ng/mL)")


def _example_cards() -> list[tuple[str, dict[str, Any]]]:
    manifest = json.loads((EXAMPLES / "manifest.json").read_text())
    now = datetime.fromisoformat(f"{manifest['anchor_date']}T12:00:00+00:00")
    cards = []
    for example in manifest["examples"]:
        index = ResourceIndex()
        for entry in json.loads((EXAMPLES / example["file"]).read_text())["entry"]:
            index.add(entry["resource"])
        response = evaluate_index(
            index, patient_id=example["patient_id"], knowledge=default_knowledge(), now=now
        )
        cards += [(f"{example['patient_id']}:{c['source']['topic']['code']}", c) for c in response["cards"]]
    return cards


def _vignette_cards() -> list[tuple[str, dict[str, Any]]]:
    cards = []
    for path in sorted(VIGNETTES.glob("*.json")):
        case = json.loads(path.read_text())
        now = datetime.fromisoformat(case["now"].replace("Z", "+00:00"))
        response = evaluate_offline(case["request"], now=now)
        cards += [(f"{path.stem}:{c['source']['topic']['code']}", c) for c in response["cards"]]
    return cards


CARDS = _example_cards() + _vignette_cards()


def test_every_rule_is_measured() -> None:
    rules = {name.split(":")[1] for name, _ in CARDS}
    assert len(CARDS) >= 100, len(CARDS)
    assert rules >= set(default_knowledge().wording.cards) - {"insulin-autoimmune-syndrome"}, rules


@pytest.mark.parametrize(("name", "card"), CARDS, ids=[n for n, _ in CARDS])
def test_card_reads_in_ten_seconds(name: str, card: dict[str, Any]) -> None:
    summary, detail = card["summary"], card["detail"]
    assert len(summary) < 140, summary
    evidence = sections(detail).get("Evidence", [])
    if any(NUMERIC.search(line) for line in evidence):
        assert re.search(r"\d", summary), f"{name}: the summary carries no value: {summary!r}"
    assert words(prose(detail)) <= 60, f"{name}: {words(prose(detail))} words of prose:\n{prose(detail)}"

    knowledge = default_knowledge()
    for kind in knowledge.labs.values():
        display = kind.display
        of_kind = [
            line
            for line in evidence
            if line.startswith(display + " ") or re.match(rf"\d+ {re.escape(display.lower())} results", line)
        ]
        assert len(of_kind) <= 5, f"{name}: {len(of_kind)} evidence lines for {display}"

    for where, text, markdown in text_fields(card):
        rendered = render(text)
        allowed = CARD_TAGS if markdown else PLAIN_FIELD_TAGS
        assert tags(rendered) <= allowed, f"{name} {where}: HTML tags {tags(rendered) - allowed}"
        assert not link_problems(rendered), f"{name} {where}: links {link_problems(rendered)}"
        assert not doubled_words(text), f"{name} {where}: doubled words {doubled_words(text)}"
        assert "uIU/mL" not in text, f"{name} {where}: write µIU/mL"
    # One link to the rule's page (issue 14 C17), plus the SMART timeline app (issue 12).
    absolute = [link for link in card["links"] if link["type"] == "absolute"]
    assert len(absolute) == 1 and absolute[0]["url"].endswith(f"/sources/{card['source']['topic']['code']}")
    assert [link["type"] for link in card["links"]] == ["absolute", "smart"]
