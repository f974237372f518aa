"""The service registry: what discovery lists and what each service endpoint answers.

Prefetch templates are generated from the knowledge data (the LOINC codes of every lab kind the rules
read), so a code added to a value set is fetched without touching Python. The Observation keys carry a
window: the longest lookback in the knowledge. What the service fetches itself is always bounded by it;
discovery advertises the bound (``{{today() - N days}}``, a token not every CDS Client fills) only when
``CDS_HOOKS_PREFETCH_DATE_BOUND`` is on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cds_hooks.clinical.knowledge import Knowledge

LOINC = "http://loinc.org"

PATIENT_VIEW_ID = "immune-insulin-resistance"
ORDER_SELECT_ID = "insulin-order-select"
ORDER_SIGN_ID = "insulin-order-sign"

# What discovery advertises (CDS Hooks 3.0 `version` and `hookVersion`): the specification this service
# implements, and the version of each hook definition (CDS Hooks Library) whose context it reads.
SPECIFICATION_VERSION = "2.0.1"
HOOK_VERSIONS = {"patient-view": "1.0", "order-select": "1.0", "order-sign": "1.0"}


@dataclass(frozen=True)
class ServiceDefinition:
    id: str
    hook: str
    title: str
    description: str
    usage_requirements: str
    prefetch: dict[str, str]
    # Prefetch key -> days back its search needs (a ``date`` bound on the search, stop paging past it).
    windows: Mapping[str, int] = field(default_factory=dict)

    def discovery_entry(self) -> dict[str, Any]:
        return {
            "hook": self.hook,
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "usageRequirements": self.usage_requirements,
            "prefetch": dict(self.prefetch),
            # CDS Hooks 3.0 (D5): the specification version implemented and the hook definition's version.
            # 2.0.1 clients ignore members they do not know.
            "version": SPECIFICATION_VERSION,
            "hookVersion": HOOK_VERSIONS[self.hook],
        }


def lookback_days(knowledge: Knowledge) -> int:
    """The longest lookback in the knowledge: every lab kind's ``lookback_days`` and every threshold in
    days, plus one day so a date-only bound never cuts into the window in any time zone."""
    days = [lab.lookback_days for lab in knowledge.labs.values()]
    days += [
        math.ceil(t.value)
        for t in knowledge.thresholds.values()
        if t.unit == "days" and t.name not in NOT_OBSERVATION_WINDOWS
    ]
    return max(days) + 1


# Thresholds in days that bound something other than Observations (a new window threshold counts by
# default: reading a little more is safe, reading too little is not).
NOT_OBSERVATION_WINDOWS = frozenset({"medication_request_current_days"})


# Keys whose results only count within the lookback window (Observations, searched by ``date``).
WINDOWED_KEYS = ("observations", "labResults")


def date_bound(days: int) -> str:
    """The search parameter bounding a windowed key, as a prefetch token the client fills."""
    return f"date=ge{{{{today() - {days} days}}}}"


def prefetch_templates(knowledge: Knowledge, *, date_bounded: bool = False) -> dict[str, str]:
    """Templates within the CDS Hooks 2.0 query restrictions (P3) — a read, type-level searches by
    patient reference, token equality (OR-comma), ``_sort`` and ``_count`` — plus ``_include`` of the
    medications the statements and requests reference (outside P3's recommended subset, which has no way
    to ask for them; every FHIR server we know supports it); with ``date_bounded`` the
    Observation searches also carry ``date=ge{{today() - N days}}`` (the 3.0 FHIRPath token)."""
    codes: list[str] = []
    for lab in knowledge.labs.values():
        for code in lab.valueset.codes(LOINC):
            token = f"{LOINC}|{code}"
            if token not in codes:
                codes.append(token)
    patient = "{{context.patientId}}"
    bound = f"&{date_bound(lookback_days(knowledge))}" if date_bounded else ""
    return {
        "patient": f"Patient/{patient}",
        # Every lab and vital the rules read, by LOINC.
        "observations": f"Observation?patient={patient}&code={','.join(codes)}{bound}&_sort=-date&_count=200",
        # Antibody results often carry only a local code and text: the newest laboratory results,
        # matched in code by text. Paged by `next` links up to the configured cap.
        "labResults": f"Observation?patient={patient}&category=laboratory{bound}&_sort=-date&_count=200",
        # Real records repeat these per visit: big pages keep them within the paging cap.
        # With the Medications they reference (`medicationReference`): an EHR that prefetches and sends no
        # fhirServer must send them too, or the medication cannot be judged (412).
        "medicationStatements": (
            f"MedicationStatement?patient={patient}&_include=MedicationStatement:medication&_count=200"
        ),
        "medicationRequests": (
            f"MedicationRequest?patient={patient}&_include=MedicationRequest:medication&_count=200"
        ),
        # No clinical-status filter: recurrence and relapse count too; filtered in code.
        "conditions": f"Condition?patient={patient}&_count=200",
        # Tests already ordered are not proposed again: status filtered in code (active, on-hold, draft).
        "serviceRequests": f"ServiceRequest?patient={patient}&_count=200",
        # Insulin pumps and CGMs (issue 22 A3, A4): a pump means no dose is proposed; status filtered in code.
        "devices": f"Device?patient={patient}&_count=50",
    }


def build_services(knowledge: Knowledge, *, date_bounded: bool = False) -> dict[str, ServiceDefinition]:
    """The three services; ``date_bounded`` (``CDS_HOOKS_PREFETCH_DATE_BOUND``): advertise the window."""
    templates = prefetch_templates(knowledge, date_bounded=date_bounded)
    windows = dict.fromkeys(WINDOWED_KEYS, lookback_days(knowledge))
    patient_view = ServiceDefinition(
        id=PATIENT_VIEW_ID,
        hook="patient-view",
        title="Immune-mediated insulin resistance",
        description=(
            "Looks for animal (porcine/bovine) insulin use, insulin-antibody resistance, type B insulin "
            "resistance, insulin autoimmune syndrome, insulin resistance in ataxia-telangiectasia and "
            "glucocorticoid-induced hyperglycaemia, and suggests the switch to human insulin, the workup "
            "and referral."
        ),
        usage_requirements=(
            "Needs the patient's Observations (glucose, HbA1c, insulin, C-peptide, insulin and "
            "insulin-receptor antibodies, ANA, body weight), MedicationStatements, MedicationRequests "
            "(with referenced Medications), Conditions, ServiceRequests (tests already ordered) and "
            "Devices (insulin pumps, CGMs), by prefetch or from fhirServer."
        ),
        prefetch=templates,
        windows=windows,
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
        windows=windows,
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
        windows=windows,
    )
    return {s.id: s for s in (patient_view, order_select, order_sign)}
