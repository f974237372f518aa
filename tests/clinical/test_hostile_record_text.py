"""Issue 11 item 1: text from the record is data, never markup, in every card field it can reach.

Hostile strings (HTML, javascript:/data: URLs, markdown links and images, bare URLs, e-mail addresses,
line breaks that would start a list or heading, entities) are written into every record field a card can
show — medication names (statements, requests, draft orders), condition names, result strings and
units, dosage text — and the cards are rendered the way the CDS Hooks Sandbox renders them (markdown with
raw HTML enabled, GFM autolinks). No tag, no link and no image from the record may come out, and the
record text must still be readable (its letters and digits, in order, in the visible text).
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds_hooks.clinical.cards import record_text
from cds_hooks.hooks.dispatch import evaluate_offline
from tests.clinical.card_reading import (
    CARD_TAGS,
    PLAIN_FIELD_TAGS,
    link_problems,
    render,
    tags,
    text_fields,
    visible_text,
)

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
ATC = "http://www.whocc.no/atc"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"

ATTACKS = [
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    "[click](javascript:alert(2))",
    "![x](data:text/html;base64,PHNjcmlwdD4=)",
    "<javascript:alert(3)>",
    "<https://evil.example/x>",
    "https://evil.example/login",
    "www.evil.example",
    "mail me: a@evil.example",
    "\n\n# Heading\n\n- item",
    "&lt;b&gt;entity&lt;/b&gt;",
    "&#106;avascript:alert(4)",
    "`code` *bold* _em_ ~~strike~~ | a | b |",
    "[ref]: javascript:alert(5)",
    "<a href='javascript:alert(6)'>x</a>",
    "1. numbered\r\n2) list",
    "\\[escaped\\](javascript:x)",
    "<!-- comment --> <iframe src=//evil>",
]
hostile = st.one_of(
    st.sampled_from(ATTACKS),
    st.lists(
        st.one_of(st.sampled_from(ATTACKS), st.text(min_size=1, max_size=12)), min_size=1, max_size=4
    ).map(" ".join),
)


def _alnum(text: str) -> str:
    return re.sub(r"[\W_]+", "", text).lower()


def _subject(pid: str) -> dict[str, str]:
    return {"reference": f"Patient/{pid}"}


def _bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources]}


def _observation(pid: str, rid: str, code: str, **value: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": _subject(pid),
        "effectiveDateTime": "2026-05-20",
        **value,
    }


def _animal_insulin_patient(name: str, unit: str, dosage_text: str) -> dict[str, Any]:
    pid = "h1"
    statement = {
        "resourceType": "MedicationStatement",
        "id": "ms1",
        "status": "active",
        "subject": _subject(pid),
        "medicationCodeableConcept": {
            "coding": [{"system": ATC, "code": "A10AB03", "display": name}],
            "text": name,
        },
    }
    request = {
        "resourceType": "MedicationRequest",
        "id": "mr1",
        "status": "active",
        "intent": "order",
        "subject": _subject(pid),
        "medicationCodeableConcept": {
            "coding": [{"system": ATC, "code": "A10AC02"}],
            "text": "Bovine " + name,
        },
        "dosageInstruction": [
            {
                "text": dosage_text,
                "timing": {"code": {"text": "BID"}},
                "doseAndRate": [{"doseQuantity": {"value": 12, "unit": "U", "code": "[iU]"}}],
            }
        ],
    }
    glucose = _observation(pid, "g1", "2345-7", valueQuantity={"value": 9, "unit": unit})
    return _request(
        pid,
        medicationStatements=_bundle(statement),
        medicationRequests=_bundle(request),
        observations=_bundle(glucose),
    )


def _autoimmune_patient(condition: str, value_string: str, unit: str) -> dict[str, Any]:
    """SLE (hostile name), ANA with a hostile string, a positive insulin-receptor antibody with a hostile
    unit, markedly raised insulin off insulin: a type B card citing them all; a glucose with a hostile
    unit is listed as unusable."""
    pid = "h2"
    clinical = "http://terminology.hl7.org/CodeSystem/condition-clinical"
    sle = {
        "resourceType": "Condition",
        "id": "c1",
        "subject": _subject(pid),
        "clinicalStatus": {"coding": [{"system": clinical, "code": "active"}]},
        "code": {"coding": [{"system": SNOMED, "code": "55464009", "display": condition}], "text": condition},
        "onsetDateTime": "2019-01-01",
    }
    receptor = _observation(
        pid,
        "irab",
        "x",
        valueQuantity={"value": 30, "unit": unit},
        interpretation=[{"coding": [{"code": "H"}]}],
    )
    receptor["code"] = {"text": "Insulin receptor antibody"}
    observations = [
        _observation(pid, "ana", "8061-4", valueString="Positive " + value_string),
        _observation(pid, "ins", "20448-7", valueQuantity={"value": 180, "unit": "uIU/mL"}),
        receptor,
        _observation(pid, "g1", "2345-7", valueQuantity={"value": 9, "unit": unit}),
        # A feature obesity does not explain (issue 22 D10) that a hostile unit cannot make unusable: the
        # card fires even when the receptor antibody's unit is not a valid FHIR string ("" or "\x0b").
        _observation(pid, "bmi", "39156-5", valueQuantity={"value": 24, "unit": "kg/m2", "code": "kg/m2"}),
    ]
    return _request(pid, conditions=_bundle(sle), observations=_bundle(*observations))


def _request(pid: str, **prefetch: Any) -> dict[str, Any]:
    return {
        "hook": "patient-view",
        "hookInstance": "0f4f8e4c-61c5-4cbb-9f7e-8f2a6f2f7d11",
        "context": {"userId": "Practitioner/x", "patientId": pid},
        "prefetch": {"patient": {"resourceType": "Patient", "id": pid}, **prefetch},
    }


def _order_request(name: str, steroid: str) -> dict[str, Any]:
    pid = "h3"
    drafts = [
        {
            "resourceType": "MedicationRequest",
            "id": "d1",
            "status": "draft",
            "intent": "order",
            "subject": _subject(pid),
            "medicationCodeableConcept": {"coding": [{"system": ATC, "code": "A10AB03"}], "text": name},
            "dosageInstruction": [{"doseAndRate": [{"doseQuantity": {"value": 2, "unit": "{pill}"}}]}],
        },
        {
            "resourceType": "MedicationRequest",
            "id": "d2",
            "status": "draft",
            "intent": "order",
            "subject": _subject(pid),
            "medicationCodeableConcept": {"coding": [{"system": ATC, "code": "H02AB06"}], "text": steroid},
        },
    ]
    glucose = _observation(
        pid, "g1", "2345-7", valueQuantity={"value": 260, "unit": "mg/dL", "code": "mg/dL"}
    )
    request = _request(pid, observations=_bundle(glucose))
    request["hook"] = "order-sign"
    request["context"]["draftOrders"] = _bundle(*drafts)
    return request


def _check(response: dict[str, Any], texts: list[str]) -> None:
    cards = response["cards"]
    assert cards, "the hostile record must still produce cards"
    shown = ""
    for card in cards:
        for where, text, markdown in text_fields(card):
            rendered = render(text)
            allowed = CARD_TAGS if markdown else PLAIN_FIELD_TAGS
            assert tags(rendered) <= allowed, f"{where}: tags {tags(rendered) - allowed} in {rendered!r}"
            assert not link_problems(rendered), f"{where}: links {link_problems(rendered)} in {rendered!r}"
        shown += _alnum(visible_text(render(card["detail"])))
    for text in texts:
        assert _alnum(text) in shown, f"record text {text!r} is no longer readable on the card"


# 1,000 examples in CI (issue 11); HOSTILE_TEXT_EXAMPLES sets another number for a quick local run.
@settings(
    max_examples=int(os.environ.get("HOSTILE_TEXT_EXAMPLES", "1000")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(name=hostile, unit=hostile, dosage_text=hostile, condition=hostile, value=hostile, steroid=hostile)
def test_hostile_record_text_never_becomes_markup(name, unit, dosage_text, condition, value, steroid) -> None:
    _check(evaluate_offline(_animal_insulin_patient(name, unit, dosage_text), now=NOW), [name])
    _check(evaluate_offline(_autoimmune_patient(condition, value, unit), now=NOW), [condition])
    _check(evaluate_offline(_order_request(name, steroid), now=NOW), [name])


def test_escaped_markdown_renders_as_the_text_itself() -> None:
    text = "Hypurin <b>Porcine</b> [x](javascript:y) *z*"
    assert visible_text(render(record_text.markdown(text))).strip() == text
    assert "<b>" not in render(record_text.markdown(text))
