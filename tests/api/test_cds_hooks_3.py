"""Issue 25 point 5: CDS Hooks 3.0-ballot readiness without breaking 2.0.1 clients (docs/cds-hooks-3.md).

Each test names the checklist rule it covers (../shared/reference/cds-hooks-2.0-checklist.md)."""

from __future__ import annotations

import pytest

from tests.builders import SERVICE_URL, request
from tests.snapshots.test_card_snapshot import CURRENT

HOOKS = {"patient-view", "order-select", "order-sign"}


def test_d5_every_service_advertises_the_specification_and_hook_version(client):
    services = client.get("/cds-services").get_json()["services"]
    assert {s["hook"] for s in services} == HOOKS
    for service in services:
        assert service["version"] == "2.0.1"  # what this service implements (semver)
        assert service["hookVersion"] == "1.0"  # the CDS Hooks Library hook definitions read
        # The 2.0.1 members are all still there.
        assert {"hook", "id", "title", "description", "usageRequirements", "prefetch"} <= set(service)


@pytest.mark.parametrize(
    "body, status",
    [
        ({"hook": "patient-view"}, 400),
        (request("p1", {}), 412),  # nothing to read the record from
    ],
)
def test_e3_error_bodies_carry_details_text_and_diagnostics(client, body, status):
    r = client.post(SERVICE_URL, json=body)
    assert r.status_code == status
    issue = r.get_json()["issue"][0]
    assert issue["details"] == {"text": issue["diagnostics"]}
    assert issue["diagnostics"]


def test_e3_unknown_service_and_route_carry_details_text(client):
    for path in ("/cds-services/nope", "/no-such-route"):
        r = client.post(path, json={})
        issue = r.get_json()["issue"][0]
        assert r.status_code == 404 and issue["details"]["text"] == issue["diagnostics"]


def test_o2_o8_every_override_reason_is_a_coding_with_display():
    """O2/O8: overrideReasons are Codings that MUST have display (2.0.1; 3.0 adds an example value set)."""
    reasons = [r for cards in CURRENT.values() for card in cards for r in card.get("overrideReasons", [])]
    assert reasons
    for reason in reasons:
        assert reason["system"] and reason["code"] and reason["display"], reason


def test_r1_hook_instance_is_typed_uuid_in_openapi(client):
    schema = client.get("/openapi.json").get_json()["components"]["schemas"]["ServiceRequest"]
    assert schema["properties"]["hookInstance"]["format"] == "uuid"
