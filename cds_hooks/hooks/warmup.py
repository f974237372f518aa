"""Warm a worker before it serves: the first request must not pay for imports, classifier memos,
FHIR model classes and regex compilation (a cold first call took 5–20 × a warm one).

:func:`warm_up` evaluates a small synthetic record through every hook, then the shipped example patients
through patient-view (their varied codes, texts and resource shapes fill the concept memos and load the
FHIR model classes a real record needs), exactly as a request would, and throws the cards away: nothing
is logged, stored or sent anywhere.
"""

from __future__ import annotations

import logging
import time
import weakref
from datetime import UTC, datetime, timedelta
from typing import Any

from cds_hooks.clinical.knowledge import Knowledge
from cds_hooks.fhir import builders as fhir
from cds_hooks.fhir import json_codec
from cds_hooks.fhir.json_access import bundle_resources
from cds_hooks.fhir.resource_index import ResourceIndex, load_model_classes
from cds_hooks.hooks.dispatch import HOOKS, evaluate_hook
from cds_hooks.hooks.example_files import examples_dir

log = logging.getLogger(__name__)

# Knowledge objects this process has already warmed up with (an app factory may run many times).
_WARMED: weakref.WeakSet[Knowledge] = weakref.WeakSet()

PATIENT = "warm-up"


def _observation(
    rid: str, loinc: str, display: str, value: float, unit: str, when: datetime
) -> dict[str, Any]:
    return fhir.observation(
        PATIENT, rid, code=loinc, display=display, when=when.isoformat(), value=value, unit=unit
    )


def synthetic_record(now: datetime) -> list[dict[str, Any]]:
    """A made-up patient on porcine insulin and prednisolone with labile glucose, an insulin antibody
    result, SLE and a weight: enough to exercise every classifier, finding and card renderer."""
    day = timedelta(days=1)
    glucose = [45, 320, 60, 290, 52, 350]
    prednisolone = fhir.concept(
        fhir.coding(fhir.ATC, "H02AB06", "prednisolone"), text="prednisolone 5 mg tablet"
    )
    resources: list[dict[str, Any]] = [
        fhir.patient(PATIENT, birth_date="1970-01-01"),
        fhir.medication_statement(
            PATIENT,
            "warm-porcine",
            drug=fhir.concept(text="Hypurin Porcine Isophane 100 units/mL"),
            start=(now - 400 * day).isoformat(),
            dosage=[_daily(fhir.quantity(30, "U", None), times=2)],
        ),
        fhir.medication_request(
            PATIENT,
            "warm-prednisolone",
            drug=prednisolone,
            authored=(now - 20 * day).isoformat(),
            dosage=[_daily(fhir.quantity(40, "mg", None), times=1)],
        ),
        fhir.condition(
            PATIENT,
            "warm-sle",
            code=fhir.concept(fhir.coding(fhir.ICD10, "M32.9")),
            verification=None,
            category=None,
        ),
        _observation("warm-weight", "29463-7", "Body weight", 60, "kg", now - 10 * day),
        _observation("warm-hba1c", "4548-4", "Hemoglobin A1c", 9.1, "%", now - 15 * day),
        _observation("warm-insulin", "20448-7", "Insulin", 180, "u[IU]/mL", now - 12 * day),
        _observation("warm-ab", "8072-3", "Insulin Ab", 25, "U/mL", now - 12 * day),
    ]
    for i, value in enumerate(glucose):
        resources.append(
            _observation(f"warm-glu-{i}", "2345-7", "Glucose", value, "mg/dL", now - (i + 1) * day)
        )
    return resources


def _daily(dose: dict[str, Any], *, times: int) -> dict[str, Any]:
    return fhir.dosage(timing=fhir.timing(frequency=times), dose=dose)


def _draft_orders(now: datetime) -> dict[str, Any]:
    """The order being signed in order-select / order-sign: a draft prednisone 20 mg."""
    draft = fhir.medication_request(
        PATIENT,
        "warm-draft",
        status="draft",
        drug=fhir.concept(fhir.coding(fhir.ATC, "H02AB07", "prednisone")),
        authored=now.isoformat(),
        dosage=[fhir.dosage(dose=fhir.quantity(20, "mg", None))],
    )
    return fhir.collection([draft])


def warm_up(knowledge: Knowledge, *, now: datetime | None = None) -> float:
    """Run every hook over the synthetic record and the examples, once per knowledge in this process
    (what it warms — memos, model classes — lives as long as the knowledge); the seconds it took.

    A failure is logged and swallowed: a worker that could not warm up still serves (cold)."""
    started = time.perf_counter()
    if knowledge in _WARMED:
        return 0.0
    try:
        load_model_classes()
        _run_hooks(knowledge, now or datetime.now(UTC))
        _run_examples(knowledge, now or datetime.now(UTC))
        _WARMED.add(knowledge)
    except Exception:
        log.exception("warm-up failed; the first request of this worker will be slower")
    seconds = time.perf_counter() - started
    log.debug("worker warmed up in %.0f ms", seconds * 1000)
    return seconds


def _run_hooks(knowledge: Knowledge, now: datetime) -> list[dict[str, Any]]:
    drafts = _draft_orders(now)
    responses = []
    for hook in HOOKS:
        index = ResourceIndex()
        for resource in synthetic_record(now):
            index.add(resource)
        context: dict[str, Any] = {"patientId": PATIENT, "userId": "Practitioner/warm-up"}
        if hook != "patient-view":
            context["draftOrders"] = drafts
            if hook == "order-select":
                context["selections"] = ["MedicationRequest/warm-draft"]
        response = evaluate_hook(
            index, hook=hook, context=context, patient_id=PATIENT, knowledge=knowledge, now=now
        )
        json_codec.dumps(response)  # the encoder's first call allocates too
        responses.append(response)
    return responses


def _run_examples(knowledge: Knowledge, now: datetime) -> int:
    """Every example patient through patient-view; the number evaluated (0 when none are installed)."""
    try:
        directory = examples_dir()
    except FileNotFoundError:
        return 0
    count = 0
    for path in sorted(directory.glob("*.json")):
        bundle = json_codec.loads(path.read_bytes())
        if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
            continue  # manifest.json
        index = ResourceIndex()
        for resource in bundle_resources(bundle):
            index.add(resource)
        patients = index.of_type("Patient")
        if not patients or not isinstance(patients[0].get("id"), str):
            continue
        patient_id = patients[0]["id"]
        context = {"patientId": patient_id, "userId": "Practitioner/warm-up"}
        evaluate_hook(
            index, hook="patient-view", context=context, patient_id=patient_id, knowledge=knowledge, now=now
        )
        count += 1
    return count
