"""Build ``PatientFacts`` from a resource index: labs, medications, conditions, pending tests, the patient's
birth date and devices."""

from __future__ import annotations

from datetime import datetime

from cds_hooks.clinical.facts.conditions import collect_conditions
from cds_hooks.clinical.facts.labs import collect_labs
from cds_hooks.clinical.facts.medications import collect_medications
from cds_hooks.clinical.facts.model import PatientFacts
from cds_hooks.clinical.facts.patient import collect_devices, patient_fact
from cds_hooks.clinical.facts.pending import collect_pending
from cds_hooks.clinical.knowledge import Knowledge
from cds_hooks.fhir.resource_index import ResourceIndex


def build_facts(index: ResourceIndex, knowledge: Knowledge, patient_id: str, now: datetime) -> PatientFacts:
    labs, unusable, last = collect_labs(index.of_type("Observation"), knowledge, now, problem=index.rejection)
    weights = labs.get("body_weight", [])
    return PatientFacts(
        patient_id=patient_id,
        now=now,
        labs=labs,
        unusable=unusable,
        medications=collect_medications(index, knowledge, now, unusable=unusable),
        conditions=collect_conditions(index, knowledge, unusable=unusable),
        latest_weight_kg=weights[0] if weights else None,
        last_result=last,
        pending=collect_pending(index, knowledge, now),
        patient=patient_fact(index, patient_id),
        devices=collect_devices(index, knowledge),
    )
