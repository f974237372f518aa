"""Issue 25 point 4: HealthChain (PyPI ``healthchain`` 0.16), a CDS Hooks client library nobody here wrote,
against the running service with every example patient — prefetch only and with a ``fhirServer`` — through
its ``SandboxClient`` and checked with its own ``CDSRequest``/``CDSResponse`` models.

HealthChain lives in .venv-clients (scripts/install-healthchain.sh): it pins fhir.resources < 8.2, which the
service's own environment must not get. The driver (healthchain/driver.py) runs there, once for all
examples; this module compares what it received."""

from __future__ import annotations

import pytest

from tests.durability.service import REPO_ROOT, ServiceProcess
from tests.install_scripts import install_or_skip

from .conftest import EXPECTED, MANIFEST_PATH, mismatches, run_driver, write_table

VENV_PYTHON = REPO_ROOT / ".venv-clients" / "bin" / "python"


@pytest.fixture(scope="module")
def results(service: ServiceProcess, examples_server) -> dict:  # type: ignore[no-untyped-def]
    install_or_skip("install-healthchain.sh", VENV_PYTHON, "healthchain (into .venv-clients)")
    driver = REPO_ROOT / "tests" / "clients" / "healthchain" / "driver.py"
    command = [
        str(VENV_PYTHON),
        str(driver),
        f"{service.base_url}/cds-services",
        examples_server.base_url,
        str(MANIFEST_PATH),
    ]
    data = run_driver(command, "healthchain")
    write_table("healthchain", data["prefetchOnly"], data["fhirServer"])
    return data


def test_d2_discovery_parses_in_healthchains_model(results):
    assert results["services"] == ["immune-insulin-resistance", "insulin-order-select", "insulin-order-sign"]


def test_p6_every_example_gets_its_expected_rule_ids_with_prefetch_only(results):
    assert mismatches(results["prefetchOnly"]) == []


def test_f1_every_example_gets_its_expected_rule_ids_with_a_fhir_server(results):
    assert mismatches(results["fhirServer"]) == []


def test_o4_every_suggestion_passes_healthchains_suggestion_model(results):
    """O4: HealthChain's ``Suggestion`` requires ``isRecommended`` (optional in the spec): stated on all."""
    assert results["suggestions"] > 40
    assert results["suggestionErrors"] == []
    assert results["cardErrors"] == []  # every card, its links aside, is a valid HealthChain Card


def test_o6_healthchains_link_model_wants_its_own_autolaunchable_spelling(results):
    """O6: the spec's optional member is ``autolaunchable``; HealthChain's ``Link`` requires
    ``autoLaunchable``. That is its bug (docs/clients.md): the service keeps the spec and leaves the optional
    member out, so HealthChain's ``CDSResponse`` refuses every answer with links and hands back the raw JSON,
    which is what the rule ids above are read from."""
    assert results["linkErrors"] and all(e.endswith("autoLaunchable: missing") for e in results["linkErrors"])
    with_cards = sum(1 for rules in EXPECTED.values() if rules)
    assert results["responseParsed"] == 2 * (len(EXPECTED) - with_cards)  # only the empty answers parse


def test_p6_load_from_path_with_its_made_up_patient_id_is_refused(results):
    """P6 (issue 25 point 2): ``load_from_path`` sends ex01's prefetch under a random ``patientId``; the
    service refuses it (400 naming the key and the resource) instead of answering ex01's card for someone
    else; SandboxClient's send_requests records the error as an empty response."""
    loaded = results["loadFromPath"]
    assert loaded["patientId"] != "ex01"
    assert loaded["status"] == 400
    issue = loaded["body"]["issue"][0]
    assert loaded["body"]["resourceType"] == "OperationOutcome"
    assert issue["diagnostics"].startswith("prefetch['patient'] holds Patient/ex01")
    assert loaded["sendRequests"] == [{}]
