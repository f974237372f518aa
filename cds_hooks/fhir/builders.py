"""FHIR R4 resources as plain JSON dicts, built one way for every producer of synthetic records.

The example patients (``scripts/examples/``), the benchmark's patient pool (``bench/generate.py``), the
worker warm-up (:mod:`cds_hooks.hooks.warmup`) and the tests (``tests/builders.py``) all build their
resources here, so a resource has one shape wherever it comes from. Pure functions, no clinical
knowledge: callers bring the codes, values and dates (as FHIR strings, on their own clock).

Elements come out in FHIR's element order and only when given (``None`` leaves one out), so a record
reads like one an EHR sends and the committed examples stay byte-stable. ``**elements`` add any further
element, after the core ones and in the order given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

Resource = dict[str, Any]

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ATC = "http://www.whocc.no/atc"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
GTS = "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation"


def _given(*pairs: tuple[str, Any], **elements: Any) -> Resource:
    """The pairs (then ``elements``) whose value is not ``None``, in order: one place drops the absent."""
    return {key: value for key, value in (*pairs, *elements.items()) if value is not None}


# ------------------------------------------------------------------------------------------ data types


def coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    return _given(("system", system), ("code", code), ("display", display))


def concept(*codings: dict[str, str], text: str | None = None) -> dict[str, Any]:
    """A CodeableConcept; with no coding it is text only (how local and free-text entries arrive)."""
    return _given(("coding", list(codings) or None), ("text", text))


def reference(target: str, display: str | None = None) -> dict[str, str]:
    """A Reference to ``Type/id`` (or ``#id`` of a contained resource)."""
    return _given(("reference", target), ("display", display))


def ref(resource: Resource) -> str:
    """``Type/id`` of a resource: its reference, and its URL in a transaction."""
    return f"{resource['resourceType']}/{resource['id']}"


def quantity(value: float, unit: str, code: str | None = "") -> dict[str, Any]:
    """A UCUM Quantity; ``code`` defaults to the printed unit, and ``None`` leaves the unit uncoded
    (as some EHRs send it)."""
    if code is None:
        return {"value": value, "unit": unit}
    return {"value": value, "unit": unit, "system": UCUM, "code": code or unit}


def interpretation(flag: str, display: str | None = None) -> list[dict[str, Any]]:
    """Observation.interpretation from a v3 flag (``H``, ``L``, ``N``, ``POS``...)."""
    return [concept(coding(INTERPRETATION, flag, display))]


def reference_range(low: dict[str, Any] | None = None, high: dict[str, Any] | None = None) -> list[Any]:
    return [_given(("low", low), ("high", high))]


def timing(
    *,
    frequency: int = 1,
    period: float = 1,
    period_unit: str = "d",
    when: list[str] | None = None,
    code: str | None = None,
) -> dict[str, Any]:
    """A Timing: a GTS abbreviation (``BID``) when ``code`` is given, else event times (``when``),
    else ``frequency`` times per ``period`` ``period_unit``."""
    if code:
        return {"code": {"coding": [{"system": GTS, "code": code}], "text": code}}
    if when:
        return {"repeat": {"when": when}}
    return {"repeat": {"frequency": frequency, "period": period, "periodUnit": period_unit}}


def dosage(
    text: str | None = None,
    *,
    timing: dict[str, Any] | None = None,
    route: dict[str, Any] | None = None,
    dose: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Dosage; ``dose`` is the doseQuantity (see :func:`quantity`)."""
    rate = [{"doseQuantity": dose}] if dose is not None else None
    return _given(("text", text), ("timing", timing), ("route", route), ("doseAndRate", rate))


def _meta(updated: str | None) -> dict[str, str] | None:
    return {"lastUpdated": updated} if updated else None


# ------------------------------------------------------------------------------------------- resources


def patient(
    rid: str,
    *,
    gender: str = "female",
    birth_date: str | None = None,
    updated: str | None = None,
    identifier: list[dict[str, Any]] | None = None,
    active: bool | None = None,
    name: list[dict[str, Any]] | None = None,
    telecom: list[dict[str, Any]] | None = None,
    address: list[dict[str, Any]] | None = None,
) -> Resource:
    return _given(
        ("resourceType", "Patient"),
        ("id", rid),
        ("meta", _meta(updated)),
        ("identifier", identifier),
        ("active", active),
        ("name", name),
        ("telecom", telecom),
        ("gender", gender),
        ("birthDate", birth_date),
        ("address", address),
    )


def observation(
    patient_id: str,
    rid: str,
    *,
    code: str,
    display: str,
    system: str = LOINC,
    text: str | None = None,
    when: str | None = None,
    period: tuple[str, str] | None = None,
    issued: str | None = None,
    value: float | None = None,
    unit: str = "",
    ucum: str | None = "",
    status: str = "final",
    category: str = "laboratory",
    encounter: str | None = None,
    updated: str | None = None,
    **elements: Any,
) -> Resource:
    """An Observation of ``code`` (LOINC unless ``system`` says otherwise) taken ``when`` (or over
    ``period``), with a valueQuantity when ``value`` is given (``unit``, ``ucum`` as in :func:`quantity`).
    Other value types, interpretation, referenceRange or components go in ``elements``."""
    group = concept(coding(OBS_CATEGORY, category, category.replace("-", " ").title()))
    return _given(
        ("resourceType", "Observation"),
        ("id", rid),
        ("meta", _meta(updated)),
        ("status", status),
        ("category", [group]),
        ("code", concept(coding(system, code, display), text=text)),
        ("subject", reference(f"Patient/{patient_id}")),
        ("encounter", reference(encounter) if encounter else None),
        ("effectiveDateTime", when),
        ("effectivePeriod", {"start": period[0], "end": period[1]} if period else None),
        ("issued", issued),
        ("valueQuantity", quantity(value, unit, ucum) if value is not None else None),
        **elements,
    )


def medication(
    rid: str, *, code: dict[str, Any], status: str | None = "active", form: str | None = None
) -> Resource:
    """A Medication, for a medicationReference to point at (on the server, or contained)."""
    return _given(
        ("resourceType", "Medication"),
        ("id", rid),
        ("code", code),
        ("status", status),
        ("form", {"text": form} if form else None),
    )


def _medication_use(
    rtype: str,
    rid: str,
    updated: str | None,
    contained: list[Resource] | None,
    drug: dict[str, Any] | None,
    drug_reference: str | None,
) -> tuple[list[tuple[str, Any]], list[tuple[str, Any]]]:
    """The elements MedicationStatement and MedicationRequest share: the head, and the medicine."""
    return [
        ("resourceType", rtype),
        ("id", rid),
        ("meta", _meta(updated)),
        ("contained", contained),
    ], [
        ("medicationCodeableConcept", drug),
        ("medicationReference", reference(drug_reference) if drug_reference else None),
    ]


def medication_statement(
    patient_id: str,
    rid: str,
    *,
    drug: dict[str, Any] | None = None,
    drug_reference: str | None = None,
    status: str = "active",
    start: str | None = None,
    end: str | None = None,
    asserted: str | None = None,
    dosage: list[dict[str, Any]] | None = None,
    contained: list[Resource] | None = None,
    updated: str | None = None,
) -> Resource:
    """What the patient takes (or took): ``drug`` is the medicationCodeableConcept, ``drug_reference``
    a Medication's ``Type/id`` or ``#contained-id``; ``start``/``end`` make the effectivePeriod."""
    head, medicine = _medication_use("MedicationStatement", rid, updated, contained, drug, drug_reference)
    period = _given(("start", start), ("end", end)) or None
    return _given(
        *head,
        ("status", status),
        *medicine,
        ("subject", reference(f"Patient/{patient_id}")),
        ("effectivePeriod", period),
        ("dateAsserted", asserted),
        ("dosage", dosage or None),
    )


def medication_request(
    patient_id: str,
    rid: str,
    *,
    drug: dict[str, Any] | None = None,
    drug_reference: str | None = None,
    status: str = "active",
    intent: str = "order",
    authored: str | None = None,
    requester: dict[str, str] | None = None,
    dosage: list[dict[str, Any]] | None = None,
    contained: list[Resource] | None = None,
    updated: str | None = None,
) -> Resource:
    """A prescription (or, ``status="draft"``, an order being written): ``drug`` and ``drug_reference``
    as in :func:`medication_statement`; ``dosage`` is the dosageInstruction."""
    head, medicine = _medication_use("MedicationRequest", rid, updated, contained, drug, drug_reference)
    return _given(
        *head,
        ("status", status),
        ("intent", intent),
        *medicine,
        ("subject", reference(f"Patient/{patient_id}")),
        ("authoredOn", authored),
        ("requester", requester),
        ("dosageInstruction", dosage or None),
    )


def condition(
    patient_id: str,
    rid: str,
    *,
    code: dict[str, Any],
    clinical: str = "active",
    verification: str | None = "confirmed",
    category: str | None = "problem-list-item",
    onset: str | None = None,
    recorded: str | None = None,
    abated: str | None = None,
    updated: str | None = None,
) -> Resource:
    """A Condition with its clinical status (and, unless ``None``, verification status and category)."""
    status = concept(coding(CLINICAL, clinical))
    verified = concept(coding(VERIFICATION, verification)) if verification else None
    return _given(
        ("resourceType", "Condition"),
        ("id", rid),
        ("meta", _meta(updated)),
        ("clinicalStatus", status),
        ("verificationStatus", verified),
        ("category", [concept(coding(CONDITION_CATEGORY, category))] if category else None),
        ("code", code),
        ("subject", reference(f"Patient/{patient_id}")),
        ("onsetDateTime", onset),
        ("recordedDate", recorded),
        ("abatementDateTime", abated),
    )


def service_request(
    patient_id: str,
    rid: str,
    *,
    code: dict[str, Any],
    category: dict[str, Any] | None = None,
    status: str = "active",
    intent: str = "order",
    authored: str | None = None,
    requester: dict[str, str] | None = None,
) -> Resource:
    """An order for a test or referral (what the record says is already under way)."""
    return _given(
        ("resourceType", "ServiceRequest"),
        ("id", rid),
        ("status", status),
        ("intent", intent),
        ("category", [category] if category else None),
        ("code", code),
        ("subject", reference(f"Patient/{patient_id}")),
        ("authoredOn", authored),
        ("requester", requester),
    )


# --------------------------------------------------------------------------------------------- bundles


def searchset(
    resources: Iterable[Resource], *, base: str | None = None, next_url: str | None = None
) -> Resource:
    """A search result, as a prefetch value or a FHIR server's answer. With ``base``, entries carry
    ``fullUrl`` and ``search.mode`` as servers send them; ``next_url`` adds the next-page link."""
    resources = list(resources)
    entries = [
        _given(
            ("fullUrl", f"{base}/{ref(r)}" if base else None),
            ("resource", r),
            ("search", {"mode": "match"} if base else None),
        )
        for r in resources
    ]
    link = [{"relation": "next", "url": next_url}] if next_url else None
    return _given(
        ("resourceType", "Bundle"),
        ("type", "searchset"),
        ("total", len(resources)),
        ("entry", entries),
        ("link", link),
    )


def transaction(
    resources: Iterable[Resource],
    *,
    bundle_id: str | None = None,
    tag: dict[str, str] | None = None,
    full_url: Callable[[str], str] | None = None,
) -> Resource:
    """A transaction of ``PUT Type/id`` entries, so the ids stay ours on the FHIR server; ``tag``
    labels the Bundle (meta.tag), ``full_url`` names each entry from its ``Type/id``."""
    entries = [
        _given(
            ("fullUrl", full_url(ref(r)) if full_url else None),
            ("resource", r),
            ("request", {"method": "PUT", "url": ref(r)}),
        )
        for r in resources
    ]
    return _given(
        ("resourceType", "Bundle"),
        ("id", bundle_id),
        ("meta", {"tag": [tag]} if tag else None),
        ("type", "transaction"),
        ("entry", entries),
    )


def collection(resources: Iterable[Resource]) -> Resource:
    """A collection Bundle: what CDS Hooks sends as ``context.draftOrders``."""
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}
