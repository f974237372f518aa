"""Issue 25 point 4: Medplum's CDS Hooks helpers (npm ``@medplum/core`` 5.x: ``getCdsServices``,
``buildCdsRequest``, ``callCdsService``), a client nobody here wrote, against the running service with every
example patient — prefetch only (``buildCdsRequest`` fills the discovery's templates from the FHIR server
through ``MedplumClient``) and with a ``fhirServer`` and no prefetch.

@medplum/core 5.x needs Node >= 22.18: scripts/install-node.sh uses Debian's nodejs when it is new enough,
else npm's ``node`` package; the test is skipped with the reason only when neither can be had."""

from __future__ import annotations

import pytest

from tests.durability.service import REPO_ROOT, ServiceProcess
from tests.install_scripts import install_or_skip

from .conftest import EXPECTED, MANIFEST_PATH, mismatches, run_driver, write_table

NODE_PATH_FILE = REPO_ROOT / "build" / "tools" / "node-path"
DRIVER = REPO_ROOT / "tests" / "clients" / "medplum" / "driver.mjs"


def node_22() -> str:
    install_or_skip("install-node.sh", NODE_PATH_FILE, "Node >= 22.18")
    return NODE_PATH_FILE.read_text().strip()


@pytest.fixture(scope="module")
def results(service: ServiceProcess, examples_server) -> dict:  # type: ignore[no-untyped-def]
    command = [
        node_22(),
        str(DRIVER),
        f"{service.base_url}/cds-services",
        examples_server.base_url,
        str(MANIFEST_PATH),
    ]
    data = run_driver(command, "medplum")
    received = {"prefetchOnly": {}, "fhirServer": {}}
    for example in data["examples"]:
        for mode in received:
            answer = example[mode]
            rules = (
                sorted(c["source"]["topic"]["code"] for c in answer["cards"])
                if answer["status"] == 200
                else None
            )
            received[mode][example["patient_id"]] = rules
    data["received"] = received
    write_table("medplum", received["prefetchOnly"], received["fhirServer"])
    return data


def test_d2_discovery_through_get_cds_services(results):
    assert results["node"].startswith("v2") and int(results["node"][1:].split(".")[0]) >= 22
    assert results["services"] == ["immune-insulin-resistance", "insulin-order-select", "insulin-order-sign"]


def test_p1_build_cds_request_fills_every_prefetch_key(results):
    keys = sorted(results["discovery"]["services"][0]["prefetch"])
    assert all(e["prefetchKeys"] == keys for e in results["examples"])


def test_p6_every_example_gets_its_expected_rule_ids_with_prefetch_only(results):
    errors = [
        (e["patient_id"], e["prefetchOnly"])
        for e in results["examples"]
        if e["prefetchOnly"]["status"] != 200
    ]
    assert errors == []
    assert mismatches(results["received"]["prefetchOnly"]) == []


def test_f1_every_example_gets_its_expected_rule_ids_with_a_fhir_server(results):
    errors = [
        (e["patient_id"], e["fhirServer"]) for e in results["examples"] if e["fhirServer"]["status"] != 200
    ]
    assert errors == []
    assert mismatches(results["received"]["fhirServer"]) == []


def test_o2_cards_carry_the_rule_id_as_topic_and_hook_instances_are_uuids(results):
    import uuid

    for example in results["examples"]:
        uuid.UUID(example["hookInstance"])  # Medplum's generateId() passes the R1 check
        for card in example["prefetchOnly"]["cards"]:
            assert card["source"]["topic"]["code"] in EXPECTED[example["patient_id"]]
