"""Response and card structure (O1–O6, J2) and determinism."""

from __future__ import annotations

import json
import uuid

from tests.builders import SERVICE_URL, empty_prefetch, porcine_request, request, topics


def _walk_for_empty(value, path="$"):
    """J2: no null, "", [] or {} anywhere (cards: [] at the top is the one exception)."""
    if value is None or value == "" or value == [] or value == {}:
        yield path
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _walk_for_empty(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk_for_empty(v, f"{path}[{i}]")


def test_o1_no_relevant_data_gives_empty_cards(client):
    r = client.post(SERVICE_URL, json=request("empty", empty_prefetch("empty")))
    assert r.status_code == 200
    assert r.get_json() == {"cards": []}


def test_o2_o6_porcine_card_is_complete_and_has_no_empty_members(client):
    r = client.post(SERVICE_URL, json=porcine_request())
    assert r.status_code == 200
    body = r.get_json()
    assert topics(body) == ["animal-insulin-switch"]
    card = body["cards"][0]
    assert list(_walk_for_empty(body)) == []
    uuid.UUID(card["uuid"])
    assert len(card["summary"]) < 140
    assert card["indicator"] == "info"  # no sign of antibody-mediated resistance (issue 14 item 4)
    assert "animal" in card["detail"].lower() and "Hypurin Porcine Neutral" in card["detail"]
    # O3: source with label, absolute url and topic Coding whose code is the rule id.
    assert card["source"]["label"]
    assert card["source"]["url"].startswith("http")
    assert card["source"]["topic"]["system"].startswith("https://")
    # O2/O4/O5: suggestions with uuid, label, actions; selectionBehavior present with suggestions.
    assert card["selectionBehavior"] in ("at-most-one", "any")
    suggestion = card["suggestions"][0]
    uuid.UUID(suggestion["uuid"])
    action = suggestion["actions"][0]
    assert action["type"] == "create" and action["description"]
    med_request = action["resource"]
    assert med_request["resourceType"] == "MedicationRequest"
    assert med_request["intent"] == "proposal" and med_request["status"] == "draft"
    assert med_request["subject"] == {"reference": "Patient/p1"}
    assert "human" in med_request["medicationCodeableConcept"]["text"].lower()
    # O2: overrideReasons each with display; O6: links with label, url, type.
    assert card["overrideReasons"] and all(reason["display"] for reason in card["overrideReasons"])
    assert all(
        link["type"] in ("absolute", "smart") and link["url"].startswith("http") for link in card["links"]
    )
    # The SMART app link (docs/timeline.md): the launch URL, with this card's rule and uuid as appContext.
    smart = [link for link in card["links"] if link["type"] == "smart"]
    assert len(smart) == 1 and smart[0]["url"].endswith("/app/launch")
    assert json.loads(smart[0]["appContext"]) == {
        "rule": card["source"]["topic"]["code"],
        "card": card["uuid"],
    }


def test_suggested_resources_are_valid_fhir_r4(client):
    from fhir.resources.R4B import get_fhir_model_class

    card = client.post(SERVICE_URL, json=porcine_request()).get_json()["cards"][0]
    for suggestion in card["suggestions"]:
        for action in suggestion["actions"]:
            resource = action["resource"]
            get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    assert card["suggestions"][0]["actions"][0]["type"] == "create"


def test_same_input_gives_the_same_cards_uuids_aside(client):
    body = porcine_request()

    def strip(value):
        if isinstance(value, dict):
            # The smart link's appContext names the card's uuid too.
            return {k: strip(v) for k, v in value.items() if k not in ("uuid", "appContext")}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    first = client.post(SERVICE_URL, json=body).get_json()
    second = client.post(SERVICE_URL, json=body).get_json()
    assert strip(first) == strip(second)
    assert first["cards"][0]["uuid"] != second["cards"][0]["uuid"]


def test_the_one_page_link_serves_the_rules_page(client):
    card = client.post(SERVICE_URL, json=porcine_request()).get_json()["cards"][0]
    # One link to the rule's page (issue 14 C17), next to the SMART timeline app's link (issue 12).
    assert [link["type"] for link in card["links"]] == ["absolute", "smart"]
    path = "/" + card["links"][0]["url"].split("/", 3)[3]
    assert path == "/sources/animal-insulin-switch"
    r = client.get(path)
    assert r.status_code == 200 and r.mimetype == "text/html"
    assert "Animal-derived insulin" in r.get_data(as_text=True)
    assert "](" not in card["detail"] and "http" not in card["detail"]


def test_card_links_use_the_public_base_url_when_configured(tmp_path):
    from cds_hooks.app import create_app
    from cds_hooks.clinical.knowledge import default_knowledge
    from tests.conftest import make_settings

    app = create_app(
        make_settings(tmp_path, public_base_url="https://cds.example.org/ir"), knowledge=default_knowledge()
    )
    card = app.test_client().post(SERVICE_URL, json=porcine_request()).get_json()["cards"][0]
    assert card["source"]["url"] == "https://cds.example.org/ir/sources/animal-insulin-switch"
    assert card["links"][0]["url"] == "https://cds.example.org/ir/sources/animal-insulin-switch"


def test_card_links_default_to_the_host_the_request_reached(client):
    card = client.post(SERVICE_URL, json=porcine_request(), base_url="http://ehr-proxy.local:9000").get_json()
    assert card["cards"][0]["links"][0]["url"].startswith("http://ehr-proxy.local:9000/sources/")


def test_o4_every_suggestion_says_whether_it_is_recommended():
    """O4: ``isRecommended`` is optional in 2.0.1, but client models (HealthChain's ``Suggestion``) require
    it; every suggestion of every example patient and vignette states it, at most one True with
    ``at-most-one`` (cds-resp-1)."""
    from tests.snapshots.test_card_snapshot import CURRENT

    suggestions = 0
    for case, cards in CURRENT.items():
        for card in cards:
            flags = [s.get("isRecommended") for s in card.get("suggestions", [])]
            assert all(isinstance(flag, bool) for flag in flags), (case, card["summary"], flags)
            if card.get("selectionBehavior") == "at-most-one":
                assert flags.count(True) <= 1, (case, card["summary"])
            suggestions += len(flags)
    assert suggestions > 40
