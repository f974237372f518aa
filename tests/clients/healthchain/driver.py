"""Drives HealthChain's CDS Hooks client (``healthchain.sandbox.SandboxClient`` with its ``CDSRequest`` and
``CDSResponse`` models) against the running service. Runs in .venv-clients (scripts/install-healthchain.sh),
started by tests/clients/test_healthchain.py:

    .venv-clients/bin/python tests/clients/healthchain/driver.py SERVICES_URL FHIR_BASE MANIFEST OUT.json

Every example patient of the manifest is sent twice through ``SandboxClient.send_requests``: with prefetch
only (the discovery's templates filled from the FHIR server as an EHR would — HealthChain has no FHIR
client of its own — and loaded as HealthChain loads prefetch) and with a ``fhirServer`` and no prefetch.
Every card returned is also validated with HealthChain's own response models; and ``load_from_path`` is
run as its documentation shows (it makes up a random ``patientId`` for the prefetch it loads).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
from healthchain.models import CDSRequest, CDSResponse
from healthchain.models.hooks import PatientViewContext
from healthchain.models.responses.cdsdiscovery import CDSServiceInformation
from healthchain.models.responses.cdsresponse import Card, Suggestion
from healthchain.sandbox import SandboxClient
from healthchain.sandbox.requestconstructors import CdsRequestConstructor
from healthchain.sandbox.workflows import Workflow
from pydantic import ValidationError

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from tests.clients.ehr import fill_prefetch  # standard library only


def rule_ids(response: dict[str, Any]) -> list[str] | None:
    if "cards" not in response:
        return None  # send_requests answers {} for an HTTP error
    return sorted(card["source"]["topic"]["code"] for card in response["cards"])


def errors(model: Any, value: dict[str, Any]) -> list[str]:
    try:
        model.model_validate(value)
    except ValidationError as exc:
        return [f"{'.'.join(str(p) for p in e['loc'])}: {e['type']}" for e in exc.errors()]
    return []


def main(services_url: str, fhir_base: str, manifest_path: str, out_path: str) -> None:
    manifest = json.loads(Path(manifest_path).read_text())
    discovery = CDSServiceInformation.model_validate(httpx.get(services_url, timeout=30).json())
    service = next(s for s in discovery.services if s.hook == "patient-view")
    url = f"{services_url}/{service.id}"

    client = SandboxClient(url=url, workflow=Workflow.patient_view, timeout=60)
    constructor = CdsRequestConstructor()
    examples = [e["patient_id"] for e in manifest["examples"]]
    for pid in examples:
        context = {"userId": "Practitioner/example", "patientId": pid}
        prefetch = fill_prefetch(fhir_base, service.prefetch or {}, context)
        # All keywords: its validate_workflow decorator looks among the keywords once any is given.
        request = constructor.construct_request(
            prefetch_data=prefetch, workflow=Workflow.patient_view, context=context
        )
        client.requests.append(request)
    for pid in examples:
        context = PatientViewContext(userId="Practitioner/example", patientId=pid)
        client.requests.append(CDSRequest(hook="patient-view", context=context, fhirServer=fhir_base))
    responses = client.send_requests()

    result: dict[str, Any] = {
        "services": [s.id for s in discovery.services],
        "prefetchOnly": {},
        "fhirServer": {},
    }
    for pid, response in zip(examples, responses[: len(examples)], strict=True):
        result["prefetchOnly"][pid] = rule_ids(response)
    for pid, response in zip(examples, responses[len(examples) :], strict=True):
        result["fhirServer"][pid] = rule_ids(response)

    # HealthChain's models on every card: suggestions alone, cards without and with their links.
    cards = [card for response in responses for card in response.get("cards", [])]
    result["cards"] = len(cards)
    result["suggestions"] = sum(len(card.get("suggestions", [])) for card in cards)
    result["suggestionErrors"] = [
        e for c in cards for s in c.get("suggestions", []) for e in errors(Suggestion, s)
    ]
    result["cardErrors"] = [
        e for c in cards for e in errors(Card, {k: v for k, v in c.items() if k != "links"})
    ]
    result["linkErrors"] = sorted({e for c in cards for e in errors(Card, c)})
    result["responseParsed"] = sum(1 for r in responses if "cards" in r and not errors(CDSResponse, r))

    # load_from_path as documented: the prefetch of ex01 from a file, with HealthChain's made-up patientId.
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ex01.json"
        path.write_text(json.dumps(fill_prefetch(fhir_base, service.prefetch or {}, {"patientId": "ex01"})))
        loaded = SandboxClient(url=url, workflow=Workflow.patient_view).load_from_path(path)
        sent = loaded.requests[0].model_dump(exclude_none=True, mode="json")
        answer = httpx.post(url, json=sent, timeout=60)
        result["loadFromPath"] = {
            "patientId": sent["context"]["patientId"],
            "status": answer.status_code,
            "body": answer.json(),
            "sendRequests": loaded.send_requests(),
        }
    Path(out_path).write_text(json.dumps(result, indent=1))
    print(f"healthchain driver: {len(examples)} examples, {len(responses)} responses")


if __name__ == "__main__":
    main(*sys.argv[1:5])
