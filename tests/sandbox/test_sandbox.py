"""The real CDS Hooks Sandbox (headless Chromium) against the service and the real FHIR test server.

patient-view for one example per rule id and two without cards: the cards the Sandbox renders are the
service's cards for that patient, and their rule ids are the manifest's. Rx View / Rx Sign with a
systemic glucocorticoid for a hyperglycaemic example: the card (info on select, warning on sign);
accepting its suggestion and dismissing it with an override reason each store exactly one feedback row,
and accepting leaves the ordered medication in the Sandbox's order form. JWT required, trusting the
Sandbox's key: every call accepted, a replayed token refused. Setup: tests/sandbox/conftest.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from cds_hooks.cli.demo import ORDER_MEDICATION, ORDER_RULE, SERVICE_ID, load_manifest, order_example
from cds_hooks.hooks.registry import ORDER_SELECT_ID, ORDER_SIGN_ID
from tests.sandbox.conftest import CARD_SELECTOR, Sandbox, Service, start_service

MANIFEST = load_manifest()
EXAMPLES = MANIFEST["examples"]
LEVELS = {"info": 0, "warning": 1, "critical": 2}


# Issue 22: the patients a clinician reads the switch safety on — steroid plus switch (ex24), a child
# (ex46), a pregnant woman (ex47), a porcine order on hold beside current glargine (ex51).
CLINICAL_V3 = ("ex24", "ex46", "ex47", "ex51")


def patient_view_cases() -> list[tuple[str, list[str]]]:
    """One example per rule id (one firing that rule alone when there is one), the patients of
    ``CLINICAL_V3`` and two without cards."""
    picked: dict[str, dict[str, Any]] = {}
    for rule in MANIFEST["rule_ids"]:
        firing = [item for item in EXAMPLES if rule in item["expected_rules"]]
        alone = [item for item in firing if item["expected_rules"] == [rule]]
        item = (alone or firing)[0]
        picked.setdefault(item["patient_id"], item)
    for item in EXAMPLES:
        if item["patient_id"] in CLINICAL_V3:
            picked.setdefault(item["patient_id"], item)
    quiet = [item for item in EXAMPLES if not item["expected_rules"]][:2]
    return [(item["patient_id"], item["expected_rules"]) for item in [*picked.values(), *quiet]]


PATIENT_VIEW = patient_view_cases()
ORDERING = order_example(EXAMPLES)


def rule_ids(body: dict[str, Any]) -> list[str]:
    return sorted(card["source"]["topic"]["code"] for card in body["cards"])


def as_rendered(body: dict[str, Any]) -> list[tuple[str, str]]:
    """The service's cards in the order the Sandbox shows them (most severe first, stable)."""
    cards = sorted(body["cards"], key=lambda c: -LEVELS.get(c["indicator"], 0))
    return [(c["indicator"], c["summary"]) for c in cards]


def preflights(exchanges: list[Any], path: str) -> list[Any]:
    return [e for e in exchanges if e.method == "OPTIONS" and e.path == path]


def assert_preflight_answered(exchanges: list[Any], path: str, origin: str) -> None:
    answered = preflights(exchanges, path)
    assert answered, f"no CORS preflight reached {path}"
    for exchange in answered:
        assert exchange.status in (200, 204)
        assert exchange.headers.get("access-control-allow-origin") in ("*", origin.rstrip("/"))
        assert "authorization" in exchange.headers.get("access-control-allow-headers", "").lower()


def test_sandbox_link_names_both_hook_and_screen():
    """With ``screen`` alone the Sandbox keeps calling patient-view, which order services refuse."""
    from urllib.parse import parse_qs, urlsplit

    from cds_hooks.cli.demo import sandbox_url

    for screen, hook in [("rx-view", "order-select"), ("rx-sign", "order-sign")]:
        query = parse_qs(
            urlsplit(sandbox_url("http://f/fhir", "http://s/cds-services", "ex20", screen=screen)).query
        )
        assert query["screen"] == [screen] and query["hook"] == [hook]


@pytest.mark.parametrize(("patient_id", "expected"), PATIENT_VIEW, ids=[p for p, _ in PATIENT_VIEW])
def test_patient_view_renders_the_cards_of_the_manifest(open_sandbox, service, patient_id, expected):
    mark = service.recorder.mark()
    tab = open_sandbox(service, patient_id)
    body = tab.load(SERVICE_ID)
    assert rule_ids(body) == sorted(expected)
    tab.wait_for_rendered(len(body["cards"]))
    rendered = tab.rendered_cards()
    print(f"{patient_id} patient-view rendered: {json.dumps(rendered)}")
    assert rendered == as_rendered(body)
    assert all(summary for _, summary in rendered)
    if not expected:
        assert tab.page.get_by_text("No recommendations to display").is_visible()
    assert tab.unexpected_console_errors() == []
    exchanges = service.recorder.since(mark)
    assert_preflight_answered(exchanges, "/cds-services", tab.sandbox_base)
    assert_preflight_answered(exchanges, f"/cds-services/{SERVICE_ID}", tab.sandbox_base)
    assert [e.status for e in exchanges if e.method != "OPTIONS"] == [200, 200]  # discovery, hook


def _glucocorticoid_card(body: dict[str, Any], indicator: str) -> dict[str, Any]:
    assert rule_ids(body) == [ORDER_RULE], body
    card = body["cards"][0]
    assert card["indicator"] == indicator
    return card


@pytest.fixture
def ordering_patient() -> str:
    assert ORDERING is not None, f"no example fires {ORDER_RULE} alone"
    return ORDERING["patient_id"]


@pytest.fixture(scope="module")
def accepted_on_rx_view(
    sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """Rx View for the ordering example, the steroid picked, its card's first suggestion accepted: once,
    for the two tests below (what the service stored; what the Sandbox did with the order)."""
    assert ORDERING is not None, f"no example fires {ORDER_RULE} alone"
    service = start_service(tmp_path_factory.mktemp("rx-view-accept"), jwt="off")
    context, tab = sandbox.open(service, ORDERING["patient_id"], screen="rx-view")
    try:
        opening = tab.load(ORDER_SELECT_ID)  # the empty draft Rx View sends when it opens
        body = tab.order(ORDER_MEDICATION, ORDER_SELECT_ID)
        tab.wait_for_rendered(len(body["cards"]))
        rendered = tab.rendered_cards()
        print(f"{ORDERING['patient_id']} rx-view rendered: {json.dumps(rendered)}")
        card = _glucocorticoid_card(body, "info")
        suggestion = card["suggestions"][0]
        with tab.page.expect_response(lambda r: r.url.endswith(f"/{ORDER_SELECT_ID}/feedback")) as answer:
            tab.page.get_by_role("button", name=suggestion["label"], exact=True).click()
        yield {
            "tab": tab,
            "service": service,
            "opening": opening,
            "card": card,
            "rendered": rendered,
            "feedback_status": answer.value.status,
        }
    finally:
        context.close()
        service.stop()


def test_rx_view_info_card_and_accepting_its_suggestion_stores_one_row(accepted_on_rx_view, request):
    flow = accepted_on_rx_view
    try:
        assert flow["opening"] == {"cards": []}  # nothing to judge before a medication is picked
        card = flow["card"]
        assert flow["rendered"] == [("info", card["summary"])]
        assert flow["feedback_status"] == 200
        rows = flow["service"].feedback_rows(card["uuid"])
        assert len(rows) == 1
        assert rows[0]["outcome"] == "accepted" and rows[0]["known_card"] is True
        assert json.loads(rows[0]["accepted_suggestions"]) == [card["suggestions"][0]["uuid"]]
        assert flow["tab"].unexpected_console_errors() == []
    finally:
        flow["tab"].screenshot(request.node.name)


def test_rx_view_accept_leaves_the_proposed_medication_in_the_order_form(accepted_on_rx_view, request):
    """The Sandbox applies only a suggestion's first action: a delete first would empty its order form
    (the draft gone, nothing in its place); with the create first the order being written stays."""
    flow = accepted_on_rx_view
    try:
        first_actions = [s["actions"][0]["type"] for s in flow["card"].get("suggestions", [])]
        assert first_actions and all(t in ("create", "update") for t in first_actions), first_actions
        box = flow["tab"].page.locator('input[name="medication-input"]')
        assert box.input_value() == ORDER_MEDICATION
    finally:
        flow["tab"].screenshot(request.node.name)


def test_rx_view_dismiss_with_an_override_reason(open_sandbox, fresh_service, ordering_patient):
    tab = open_sandbox(fresh_service, ordering_patient, screen="rx-view")
    tab.load(ORDER_SELECT_ID)
    card = _glucocorticoid_card(tab.order(ORDER_MEDICATION, ORDER_SELECT_ID), "info")
    tab.wait_for_rendered(1)
    reason = card["overrideReasons"][0]
    tab.page.locator(CARD_SELECTOR).get_by_role("button", name="select dismiss reason").click()
    with tab.page.expect_response(lambda r: r.url.endswith(f"/{ORDER_SELECT_ID}/feedback")) as answer:
        tab.page.get_by_role("menuitem", name=f"Override: {reason['display']}").click()
    assert answer.value.status == 200
    tab.page.locator(CARD_SELECTOR).first.wait_for(state="detached")  # the Sandbox removes it
    rows = fresh_service.feedback_rows(card["uuid"])
    assert len(rows) == 1
    assert rows[0]["outcome"] == "overridden"
    assert (rows[0]["override_system"], rows[0]["override_code"]) == (reason["system"], reason["code"])
    assert tab.unexpected_console_errors() == []


def test_rx_sign_card_is_a_warning_and_accepting_stores_one_row(
    open_sandbox, fresh_service, ordering_patient
):
    tab = open_sandbox(fresh_service, ordering_patient, screen="rx-sign")
    tab.goto()
    card = _glucocorticoid_card(tab.order(ORDER_MEDICATION, ORDER_SIGN_ID, sign=True), "warning")
    tab.wait_for_rendered(1)
    print(f"{ordering_patient} rx-sign rendered: {json.dumps(tab.rendered_cards())}")
    assert tab.rendered_cards() == [("warning", card["summary"])]
    with tab.page.expect_response(lambda r: r.url.endswith(f"/{ORDER_SIGN_ID}/feedback")) as answer:
        tab.page.get_by_role("button", name=card["suggestions"][0]["label"], exact=True).click()
    assert answer.value.status == 200
    assert [r["outcome"] for r in fresh_service.feedback_rows(card["uuid"])] == ["accepted"]
    assert tab.unexpected_console_errors() == []


def test_jwt_required_sandbox_tokens_accepted_and_a_replay_refused(
    open_sandbox, jwt_service: Service, ordering_patient
):
    mark = jwt_service.recorder.mark()
    tab = open_sandbox(jwt_service, ordering_patient)
    with tab.page.expect_request(lambda r: r.method == "POST" and r.url.endswith(f"/{SERVICE_ID}")) as sent:
        body = tab.load(SERVICE_ID)
    assert ORDER_RULE in rule_ids(body)
    tab.wait_for_rendered(len(body["cards"]))
    card = body["cards"][0]
    with tab.page.expect_response(lambda r: r.url.endswith(f"/{SERVICE_ID}/feedback")) as answer:
        tab.page.locator(CARD_SELECTOR).first.get_by_role("button", name="Dismiss", exact=True).click()
    assert answer.value.status == 200
    assert [r["outcome"] for r in jwt_service.feedback_rows(card["uuid"])] == ["overridden"]

    calls = [e for e in jwt_service.recorder.since(mark) if e.method != "OPTIONS"]
    kinds = [(e.method, e.path) for e in calls]
    assert kinds == [
        ("GET", "/cds-services"),
        ("POST", f"/cds-services/{SERVICE_ID}"),
        ("POST", f"/cds-services/{SERVICE_ID}/feedback"),
    ]
    assert all(e.authorized and e.status == 200 for e in calls), [(e.path, e.status) for e in calls]
    assert tab.unexpected_console_errors() == []

    # The same token again (a captured request replayed within its 5-minute lifetime) is refused.
    request = sent.value
    replay = requests.post(
        request.url,
        data=request.post_data,
        headers={"Authorization": request.headers["authorization"], "Content-Type": "application/json"},
        timeout=30,
    )
    assert replay.status_code == 401
    assert replay.json()["resourceType"] == "OperationOutcome"
