"""One example patient's chart under construction: ids, dates relative to the anchor, and the
situation's resources in the data variants real EHRs send, built by :mod:`cds_hooks.fhir.builders`."""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from cds_hooks.fhir import builders as fhir
from cds_hooks.fhir.builders import ICD10, LOINC, SNOMED

Codings = tuple[str, str, str]  # (system, code, display)
Amount = tuple[float, str, str | None]  # (value, printed unit, UCUM code or None)

SUBCUT = fhir.concept(fhir.coding(SNOMED, "34206005", "Subcutaneous route"))
ORAL = fhir.concept(fhir.coding(SNOMED, "26643006", "Oral route"))
INHALED = fhir.concept(fhir.coding(SNOMED, "447694001", "Respiratory tract route"))

GLUCOSE_NAMES = {
    "41653-7": "Glucose [Mass/volume] in Capillary blood by Glucometer",
    "2345-7": "Glucose [Mass/volume] in Serum or Plasma",
    "1558-6": "Fasting glucose [Mass/volume] in Serum or Plasma",
    "2339-0": "Glucose [Mass/volume] in Blood",
    "14743-9": "Glucose [Moles/volume] in Capillary blood by Glucometer",
    "14749-6": "Glucose [Moles/volume] in Serum or Plasma",
    "14771-0": "Fasting glucose [Moles/volume] in Serum or Plasma",
    "15074-8": "Glucose [Moles/volume] in Blood",
}
ISSUED = ("final", "amended", "corrected", "preliminary")  # results that have been released


def concept(text: str, *codings: Codings) -> dict[str, Any]:
    """A CodeableConcept from (system, code, display) triples, text first as the examples carry it."""
    return {"text": text, **fhir.concept(*(fhir.coding(*c) for c in codings))}


def _quantity(amount: Amount) -> dict[str, Any]:
    value, unit, ucum = amount
    return fhir.quantity(value, unit, ucum or None)


@dataclass
class Chart:
    """One patient's resources under construction, all ids prefixed with the patient id."""

    number: int
    slug: str
    today: date
    rng: random.Random
    resources: list[dict[str, Any]] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)

    @property
    def pid(self) -> str:
        return f"ex{self.number:02d}"

    @property
    def requester(self) -> dict[str, str]:
        return fhir.reference(f"Practitioner/{self.pid}-practitioner")

    def new_id(self, kind: str) -> str:
        self.counters[kind] = self.counters.get(kind, 0) + 1
        return f"{self.pid}-{kind}-{self.counters[kind]:03d}"

    def day(self, days_ago: float) -> str:
        return (self.today - timedelta(days=int(days_ago))).isoformat()

    def at(self, days_ago: float, hour: int = 8, minute: int = 0) -> str:
        return f"{self.day(days_ago)}T{hour:02d}:{minute:02d}:00Z"

    def add(self, resource: dict[str, Any]) -> dict[str, Any]:
        self.resources.append(resource)
        return resource

    # ------------------------------------------------------------------ observations

    def lab(
        self,
        code: str,
        display: str,
        days_ago: float,
        *,
        system: str = LOINC,
        text: str | None = None,
        quantity: Amount | None = None,
        string: str | None = None,
        concept: dict[str, Any] | None = None,
        ratio: tuple[float, float] | None = None,
        status: str = "final",
        interpretation: str | None = None,
        high: Amount | None = None,
        when: str = "dateTime",
        hour: int = 8,
        minute: int = 0,
        category: str = "laboratory",
        kind: str = "obs",
    ) -> dict[str, Any]:
        """One Observation; ``quantity`` is (value, printed unit, UCUM code or None); ``when`` is
        ``dateTime``, ``period`` or ``none`` (a test registered, not yet taken)."""
        stamp = self.at(days_ago, hour, minute)
        released = when != "none" and status in ISSUED
        elements: dict[str, Any] = {}
        if quantity is None:
            elements["valueString"] = string
            elements["valueCodeableConcept"] = concept if string is None else None
            if string is None and concept is None and ratio is not None:
                numerator, denominator = ratio
                elements["valueRatio"] = {
                    "numerator": {"value": numerator},
                    "denominator": {"value": denominator},
                }
        if interpretation:
            elements["interpretation"] = fhir.interpretation(interpretation)
        if high is not None:
            elements["referenceRange"] = fhir.reference_range(high=_quantity(high))
        value, unit, ucum = quantity or (None, "", None)
        return self.add(
            fhir.observation(
                self.pid,
                self.new_id(kind),
                code=code,
                display=display,
                system=system,
                text=text or display,
                when=stamp if when == "dateTime" else None,
                period=(stamp, self.at(days_ago, hour + 2, minute)) if when == "period" else None,
                issued=self.at(days_ago, min(hour + 6, 23), 15) if released else None,
                value=value,
                unit=unit,
                ucum=ucum or None,
                status=status,
                category=category,
                **elements,
            )
        )

    def glucose_mgdl(self, value: float, days_ago: float, *, code: str = "41653-7", hour: int = 7, **kw: Any):
        amount = (round(value), "mg/dL", "mg/dL")
        return self.lab(code, GLUCOSE_NAMES[code], days_ago, quantity=amount, hour=hour, **kw)

    def glucose_mmol(self, value: float, days_ago: float, *, code: str = "14743-9", hour: int = 7, **kw: Any):
        amount = (round(value, 1), "mmol/L", "mmol/L")
        return self.lab(code, GLUCOSE_NAMES[code], days_ago, quantity=amount, hour=hour, **kw)

    def hba1c(self, percent: float, days_ago: float, **kw: Any):
        display = "Hemoglobin A1c/Hemoglobin.total in Blood"
        return self.lab("4548-4", display, days_ago, quantity=(percent, "%", "%"), **kw)

    def hba1c_ifcc(self, mmol_mol: float, days_ago: float, **kw: Any):
        display = "Hemoglobin A1c/Hemoglobin.total in Blood by IFCC protocol"
        return self.lab("59261-8", display, days_ago, quantity=(mmol_mol, "mmol/mol", "mmol/mol"), **kw)

    def weight(self, kg: float | None, days_ago: float, *, lb: float | None = None):
        quantity = (round(kg, 1), "kg", "kg") if kg is not None else (lb, "lb", "[lb_av]")
        return self.lab("29463-7", "Body weight", days_ago, quantity=quantity, category="vital-signs", hour=9)

    def glucose_diary(
        self, values: Iterable[float], *, start_days_ago: int, unit: str = "mg/dL", every_hours: int = 12
    ) -> None:
        """Point-of-care readings, oldest first, ``every_hours`` apart from ``start_days_ago``."""
        for i, value in enumerate(values):
            hours = i * every_hours
            days_ago = start_days_ago - hours // 24
            hour = 7 + hours % 24 if hours % 24 < 16 else 21
            if unit == "mg/dL":
                self.glucose_mgdl(value, days_ago, hour=hour)
            else:
                self.glucose_mmol(value, days_ago, hour=hour)

    def stable_diary(
        self, low: float, high: float, *, days: int = 12, start_days_ago: int = 16, unit="mg/dL"
    ):
        values = [self.rng.uniform(low, high) for _ in range(days * 2)]
        self.glucose_diary(values, start_days_ago=start_days_ago, unit=unit)

    # ------------------------------------------------------------------ conditions

    def condition(
        self,
        display: str,
        *,
        icd: str | None = None,
        snomed: str | None = None,
        text: str | None = None,
        onset_days_ago: float | None = None,
        onset: str | None = None,
        status: str = "active",
        verification: str = "confirmed",
    ) -> dict[str, Any]:
        """A problem-list entry coded in SNOMED CT and/or ICD-10-CM, or by text alone."""
        codings = [(SNOMED, snomed, display)] if snomed else []
        codings += [(ICD10, icd, display)] if icd else []
        if not onset and onset_days_ago is not None:
            onset = self.day(onset_days_ago)
        return self.add(
            fhir.condition(
                self.pid,
                self.new_id("cond"),
                code=concept(text or display, *codings),
                clinical=status,
                verification=verification,
                onset=onset or None,
                recorded=onset or self.day(400),
            )
        )

    # ------------------------------------------------------------------ medications

    def medication(self, text: str, coding: list[dict[str, str]], form: str | None = None) -> dict[str, Any]:
        """A Medication on the server, for a medicationReference to point at."""
        code = fhir.concept(*coding, text=text)
        return self.add(fhir.medication(self.new_id("med"), code=code, form=form))

    def statement(
        self,
        concept: dict[str, Any] | None,
        *,
        status: str = "active",
        dosage: list[dict[str, Any]] | None = None,
        start_days_ago: float = 900,
        end_days_ago: float | None = None,
        start: str | None = None,
        end: str | None = None,
        reference: str | None = None,
        contained: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        rid = self.new_id("medstmt")
        if end or end_days_ago is not None:
            end = end or self.day(end_days_ago or 0)
        return self.add(
            fhir.medication_statement(
                self.pid,
                rid,
                drug=concept,
                drug_reference=reference,
                status=status,
                start=start or self.day(start_days_ago),
                end=end,
                asserted=self.day(self.rng.randint(5, 40)),
                dosage=dosage,
                contained=contained,
            )
        )

    def service_request(
        self, code: str, display: str, authored_days_ago: float, *, status: str = "active"
    ) -> dict[str, Any]:
        """A laboratory order (ServiceRequest) for a LOINC test, authored ``authored_days_ago``."""
        return self.add(
            fhir.service_request(
                self.pid,
                self.new_id("sr"),
                code=fhir.concept(fhir.coding(LOINC, code, display), text=display),
                category=fhir.concept(fhir.coding(SNOMED, "108252007", "Laboratory procedure")),
                status=status,
                authored=self.at(authored_days_ago, 10),
                requester=self.requester,
            )
        )

    def request(
        self,
        concept: dict[str, Any] | None,
        *,
        status: str = "active",
        dosage: list[dict[str, Any]] | None = None,
        authored_days_ago: float = 60,
        reference: str | None = None,
        contained: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        return self.add(
            fhir.medication_request(
                self.pid,
                self.new_id("medreq"),
                drug=concept,
                drug_reference=reference,
                status=status,
                authored=self.day(authored_days_ago),
                requester=self.requester,
                dosage=dosage,
                contained=contained,
            )
        )


def insulin_dose(
    units: float,
    *,
    code: str | None = None,
    frequency: int | None = None,
    period: float = 1,
    period_unit: str = "d",
    text: str | None = None,
    when: list[str] | None = None,
) -> dict[str, Any]:
    """An insulin Dosage: ``units`` per administration, timed by a GTS code or by timing.repeat."""
    timing = fhir.timing(
        code=code, when=when, frequency=frequency or 1, period=period, period_unit=period_unit
    )
    return fhir.dosage(
        text or f"{units:g} units subcutaneously" + (f" {code}" if code else ""),
        timing=timing,
        route=SUBCUT,
        dose=fhir.quantity(units, "U", "[iU]"),
    )


def tablet_dose(
    text: str, *, mg: float, code: str = "QD", route: dict[str, Any] | None = None
) -> dict[str, Any]:
    return fhir.dosage(text, timing=fhir.timing(code=code), route=route or ORAL, dose=fhir.quantity(mg, "mg"))
