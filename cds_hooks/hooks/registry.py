"""The service registry: what discovery lists and what each service endpoint answers.

Prefetch templates are generated from the knowledge data (the LOINC codes of every lab kind the rules
read), so a code added to a value set is fetched without touching Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cds_hooks.clinical.knowledge import Knowledge

LOINC = "http://loinc.org"

PATIENT_VIEW_ID = "immune-insulin-resistance"
ORDER_SELECT_ID = "insulin-order-select"
ORDER_SIGN_ID = "insulin-order-sign"


@dataclass(frozen=True)
class ServiceDefinition:
    id: str
    hook: str
    title: str
    description: str
    usage_requirements: str
    prefetch: dict[str, str]

    def discovery_entry(self) -> dict[str, Any]:
        return {
            "hook": self.hook,
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "usageRequirements": self.usage_requirements,
            "prefetch": dict(self.prefetch),
        }


def prefetch_templates(knowledge: Knowledge) -> dict[str, str]:
    """Templates within the CDS Hooks 2.0 query restrictions (P3): a read, type-level searches by
    patient reference, token equality (OR-comma), ``_sort`` and ``_count``."""
    codes: list[str] = []
    for lab in knowledge.labs.values():
        for code in lab.valueset.codes(LOINC):
            token = f"{LOINC}|{code}"
            if token not in codes:
                codes.append(token)
    patient = "{{context.patientId}}"
    return {
        "patient": f"Patient/{patient}",
        # Every lab and vital the rules read, by LOINC.
        "observations": f"Observation?patient={patient}&code={','.join(codes)}&_sort=-date&_count=200",
        # Antibody results often carry only a local code and text: the newest laboratory results,
        # matched in code by text. Paged by `next` links up to the configured cap.
        "labResults": f"Observation?patient={patient}&category=laboratory&_sort=-date&_count=200",
        "medicationStatements": f"MedicationStatement?patient={patient}",
        "medicationRequests": f"MedicationRequest?patient={patient}",
        # No clinical-status filter: recurrence and relapse count too; filtered in code.
        "conditions": f"Condition?patient={patient}",
        # Tests already ordered are not proposed again: status filtered in code (active, on-hold, draft).
        "serviceRequests": f"ServiceRequest?patient={patient}",
    }


def build_services(knowledge: Knowledge) -> dict[str, ServiceDefinition]:
    templates = prefetch_templates(knowledge)
    patient_view = ServiceDefinition(
        id=PATIENT_VIEW_ID,
        hook="patient-view",
        title="Immune-mediated insulin resistance",
        description=(
            "Looks for animal (porcine/bovine) insulin use, insulin-antibody resistance, type B insulin "
            "resistance, insulin resistance in ataxia-telangiectasia and glucocorticoid-induced "
            "hyperglycaemia, and suggests the switch to human insulin, the workup and referral."
        ),
        usage_requirements=(
            "Needs the patient's Observations (glucose, HbA1c, insulin, C-peptide, insulin and "
            "insulin-receptor antibodies, ANA, body weight), MedicationStatements, MedicationRequests "
            "(with referenced Medications), Conditions and ServiceRequests (tests already ordered), by "
            "prefetch or from fhirServer."
        ),
        prefetch=templates,
    )
    order_usage = (
        "Needs context.draftOrders (a Bundle of draft MedicationRequests; other resource types are "
        "ignored) and the same patient data as the patient-view service, by prefetch or from fhirServer."
    )
    order_select = ServiceDefinition(
        id=ORDER_SELECT_ID,
        hook="order-select",
        title="Insulin and glucocorticoid orders: immune insulin resistance (on select)",
        description=(
            "When an order is selected: flags animal (porcine/bovine) insulin and proposes recombinant human "
            "insulin, advises glucose monitoring for systemic glucocorticoids in patients with "
            "hyperglycaemia, and suggests a type B insulin resistance workup for extreme insulin doses in "
            "patients with autoimmune disease. Only the selected draft orders are judged."
        ),
        usage_requirements=order_usage + " context.selections names the draft orders to judge.",
        prefetch=templates,
    )
    order_sign = ServiceDefinition(
        id=ORDER_SIGN_ID,
        hook="order-sign",
        title="Insulin and glucocorticoid orders: immune insulin resistance (on sign)",
        description=(
            "Before orders are signed: the same checks as on select, over every draft order, as warnings."
        ),
        usage_requirements=order_usage,
        prefetch=templates,
    )
    return {s.id: s for s in (patient_view, order_select, order_sign)}
