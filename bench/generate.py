"""Deterministic synthetic ``patient-view`` requests with N resources in prefetch.

One patient, ``N`` resources in total (the Patient included): about 60 % Observations (labs over the
knowledge's codes, plus unrelated vitals, CBC, lipids, chemistry), 20 % MedicationStatements and
MedicationRequests, 20 % Conditions. Nine rule-triggering resources are always present, inserted at
seeded random positions among the others, so the same cards fire at every N:

- a porcine insulin statement completed about two years ago (recent past animal insulin exposure),
- glucose 48 mg/dL and 312 mg/dL five days apart (labile glucose, hyperglycaemia),
- insulin 186 µIU/mL in a patient on no insulin (markedly elevated insulin off insulin),
- HbA1c 8.4 %, C-peptide 6.8 ng/mL,
- active systemic lupus erythematosus and "other specified diabetes mellitus",
- an active prednisone 20 mg prescription (current systemic glucocorticoid).

Expected cards: ``insulin-antibody-workup``, ``type-b-insulin-resistance`` (suspected) and
``glucocorticoid-hyperglycemia``. The filler never changes them: knowledge-coded results are kept in
non-triggering ranges, medications are non-insulin/non-systemic-steroid (or past), and conditions match
no value set. Everything is derived from ``random.Random(seed)`` and ``now``: the same arguments give
the same request, byte for byte.

    python -m bench.generate 200 > request.json
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from cds_hooks.fhir import builders as fhir
from cds_hooks.fhir.builders import ATC, ICD10, LOINC, RXNORM, SNOMED

Resource = dict[str, Any]

# A fixed clock for the in-process figures (the HTTP service uses the wall clock: see ``generate``).
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SIZES = (10, 200, 2000, 5000)
DEFAULT_SEED = 6
PATIENT_ID = "bench-p1"
SERVICE_ID = "immune-insulin-resistance"
EXPECTED_RULES = ("insulin-antibody-workup", "type-b-insulin-resistance", "glucocorticoid-hyperglycemia")
PREFETCH_KEYS = (
    "patient",
    "observations",
    "labResults",
    "medicationStatements",
    "medicationRequests",
    "conditions",
    "serviceRequests",  # no pending tests: an empty searchset
)
HISTORY_DAYS = 5 * 365  # filler is spread uniformly over the last five years
FHIR_BASE = "https://ehr.example.org/fhir"  # the entries' fullUrl: where the prefetch was read from

ROUTE_ORAL = fhir.concept(fhir.coding(SNOMED, "26643006", "Oral route"), text="oral")
ROUTE_SC = fhir.concept(fhir.coding(SNOMED, "34206005", "Subcutaneous route"), text="subcutaneous")
ROUTE_TOPICAL = fhir.concept(fhir.coding(SNOMED, "6064005", "Topical route"), text="topical")
ROUTE_INHALED = fhir.concept(fhir.coding(SNOMED, "447694001", "Respiratory tract route"), text="inhaled")
FLAGS = {"H": "High", "L": "Low", "N": "Normal"}


# ---------------------------------------------------------------------------------------------- helpers


def _ts(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="seconds")


def observation(
    rid: str,
    pid: str,
    code: tuple[str, str],
    when: datetime,
    *,
    value: float | None = None,
    unit: tuple[str, str] = ("", ""),
    category: str = "laboratory",
    status: str = "final",
    ref_range: tuple[float, float] | None = None,
    components: list[dict[str, Any]] | None = None,
) -> Resource:
    """An Observation as EHRs send it: category, LOINC code with display, dates, quantity, range."""
    loinc, display = code
    printed, ucum = unit
    elements: dict[str, Any] = {"component": components or None}
    if ref_range is not None and value is not None:
        low, high = ref_range
        flag = "H" if value > high else "L" if value < low else "N"
        elements["referenceRange"] = fhir.reference_range(
            fhir.quantity(low, printed, ucum), fhir.quantity(high, printed, ucum)
        )
        elements["interpretation"] = fhir.interpretation(flag, FLAGS[flag])
    return fhir.observation(
        pid,
        rid,
        code=loinc,
        display=display,
        text=display,
        when=_ts(when),
        issued=_ts(when + timedelta(hours=2)),
        value=value,
        unit=printed,
        ucum=ucum,
        status=status,
        category=category,
        encounter=f"Encounter/{pid}-enc-{when:%Y%m%d}",
        updated=_ts(when + timedelta(hours=3)),
        **elements,
    )


def _dosage(text: str, route: dict[str, Any], per_day: int, dose: tuple[float, str, str]) -> dict[str, Any]:
    value, unit, code = dose
    return fhir.dosage(
        text, timing=fhir.timing(frequency=per_day), route=route, dose=fhir.quantity(value, unit, code)
    )


def medication(
    rtype: str,
    rid: str,
    pid: str,
    concept: dict[str, Any],
    status: str,
    start: datetime,
    dosage: dict[str, Any],
    end: datetime | None = None,
) -> Resource:
    """A MedicationStatement or MedicationRequest with an inline medicationCodeableConcept."""
    if rtype == "MedicationStatement":
        return fhir.medication_statement(
            pid,
            rid,
            drug=concept,
            status=status,
            start=start.date().isoformat(),
            end=end.date().isoformat() if end is not None else None,
            asserted=_ts(end or start),
            dosage=[dosage],
            updated=_ts(start),
        )
    return fhir.medication_request(
        pid,
        rid,
        drug=concept,
        status=status,
        authored=_ts(start),
        requester=fhir.reference("Practitioner/bench-dr", "Dr. A. Bench"),
        dosage=[dosage],
        updated=_ts(start),
    )


def condition(
    rid: str,
    pid: str,
    icd: tuple[str, str],
    snomed: tuple[str, str] | None,
    onset: datetime,
    clinical: str = "active",
    verification: str = "confirmed",
    category: str = "problem-list-item",
) -> Resource:
    """A Condition coded in ICD-10-CM (and SNOMED CT when given), with clinical/verification status."""
    codings = [fhir.coding(ICD10, *icd)]
    if snomed:
        codings.append(fhir.coding(SNOMED, *snomed))
    abated = clinical in ("resolved", "inactive", "remission")
    return fhir.condition(
        pid,
        rid,
        code=fhir.concept(*codings, text=icd[1]),
        clinical=clinical,
        verification=verification,
        category=category,
        onset=_ts(onset),
        recorded=_ts(onset + timedelta(days=2)),
        abated=_ts(onset + timedelta(days=30)) if abated else None,
        updated=_ts(onset),
    )


def patient(pid: str) -> Resource:
    return fhir.patient(
        pid,
        updated="2026-01-10T09:00:00+00:00",
        identifier=[{"system": "https://ehr.example.org/mrn", "value": "MRN-0042-6"}],
        active=True,
        name=[{"use": "official", "family": "Benchmark", "given": ["Ruth", "Ada"]}],
        telecom=[{"system": "phone", "value": "+1 555 0100", "use": "home"}],
        birth_date="1968-03-14",
        address=[{"line": ["1 Test Street"], "city": "Springfield", "postalCode": "01101", "country": "US"}],
    )


# ---------------------------------------------------------------------------------------------- triggers

GLUCOSE = ("2345-7", "Glucose [Mass/volume] in Serum or Plasma")
MG_DL, MMOL_L = ("mg/dL", "mg/dL"), ("mmol/L", "mmol/L")
# (id suffix, LOINC, days ago, value, unit, reference range): the labs that fire the rules.
TRIGGER_LABS = [
    ("glu-low", GLUCOSE, 9, 48, MG_DL, (70, 99)),
    ("glu-high", GLUCOSE, 4, 312, MG_DL, (70, 99)),
    ("insulin", ("20448-7", "Insulin [Units/volume] in Serum or Plasma"), 6, 186, ("uIU/mL", "u[IU]/mL"),
     (2.6, 24.9)),
    ("hba1c", ("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood"), 20, 8.4, ("%", "%"), (4.0, 5.6)),
    ("cpep", ("1986-9", "C peptide [Mass/volume] in Serum or Plasma"), 6, 6.8, ("ng/mL", "ng/mL"),
     (0.8, 3.85)),
]  # fmt: skip


def trigger_resources(pid: str, now: datetime) -> dict[str, list[Resource]]:
    """The nine resources that fire the three expected rules, by prefetch key."""
    day = timedelta(days=1)
    pork = fhir.concept(
        fhir.coding(ATC, "A10AC03", "insulin (pork)"), text="Hypurin Porcine Isophane 100 units/mL"
    )
    prednisone = fhir.concept(
        fhir.coding(RXNORM, "312615", "predniSONE 20 MG Oral Tablet"),
        fhir.coding(ATC, "H02AB07", "prednisone"),
        text="Prednisone 20 mg oral tablet",
    )
    return {
        "observations": [
            observation(f"{pid}-trig-{name}", pid, code, now - ago * day, value=v, unit=unit, ref_range=ref)
            for name, code, ago, v, unit, ref in TRIGGER_LABS
        ],
        "medicationStatements": [
            medication(
                "MedicationStatement",
                f"{pid}-trig-pork",
                pid,
                pork,
                "completed",
                datetime(2009, 2, 1, tzinfo=UTC),
                _dosage("18 units twice daily", ROUTE_SC, 2, (18, "U", "[iU]")),
                end=now - 700 * day,  # within the 3-year exposure window (issue 14)
            )
        ],
        "medicationRequests": [
            medication(
                "MedicationRequest",
                f"{pid}-trig-prednisone",
                pid,
                prednisone,
                "active",
                now - 30 * day,
                _dosage("20 mg by mouth once daily", ROUTE_ORAL, 1, (20, "mg", "mg")),
            )
        ],
        "conditions": [
            condition(
                f"{pid}-trig-sle",
                pid,
                ("M32.9", "Systemic lupus erythematosus, unspecified"),
                ("55464009", "Systemic lupus erythematosus"),
                datetime(2015, 5, 12, tzinfo=UTC),
            ),
            condition(
                f"{pid}-trig-dm",
                pid,
                ("E13.9", "Other specified diabetes mellitus without complications"),
                ("73211009", "Diabetes mellitus"),
                datetime(2008, 11, 3, tzinfo=UTC),
            ),
        ],
    }


# ---------------------------------------------------------------------------------------------- filler

# maker(rng, id, patient id, when) -> Observation
ObsMaker = Callable[[random.Random, str, str, datetime], Resource]


def _lab(
    code: tuple[str, str], units: list[tuple[tuple[str, str], float, float]], ref: tuple[float, float] | None
) -> ObsMaker:
    """A quantitative lab in one of several units; value drawn uniformly from that unit's range."""

    def make(rng: random.Random, rid: str, pid: str, when: datetime) -> Resource:
        unit, low, high = rng.choice(units)
        value = round(rng.uniform(low, high), 1)
        ref_range = ref if unit == units[0][0] else None  # the range is given in the first unit
        status = rng.choices(
            ["final", "amended", "preliminary", "cancelled", "entered-in-error"], [93, 2, 2, 2, 1]
        )[0]
        return observation(rid, pid, code, when, value=value, unit=unit, status=status, ref_range=ref_range)

    return make


def _vital(
    code: tuple[str, str], unit: tuple[str, str], low: float, high: float, digits: int = 0
) -> ObsMaker:
    def make(rng: random.Random, rid: str, pid: str, when: datetime) -> Resource:
        value = round(rng.uniform(low, high), digits)
        return observation(rid, pid, code, when, value=value, unit=unit, category="vital-signs")

    return make


def _blood_pressure(rng: random.Random, rid: str, pid: str, when: datetime) -> Resource:
    components = [
        {
            "code": fhir.concept(fhir.coding(LOINC, "8480-6", "Systolic blood pressure")),
            "valueQuantity": fhir.quantity(rng.randint(108, 148), "mm[Hg]"),
        },
        {
            "code": fhir.concept(fhir.coding(LOINC, "8462-4", "Diastolic blood pressure")),
            "valueQuantity": fhir.quantity(rng.randint(64, 92), "mm[Hg]"),
        },
    ]
    return observation(
        rid, pid, ("85354-9", "Blood pressure panel"), when, category="vital-signs", components=components
    )


def _old_ana(rng: random.Random, rid: str, pid: str, when: datetime) -> Resource:
    """An ANA titre from long ago (outside every lookback window): classified, then left out by date."""
    old = when - timedelta(days=400)
    obs = observation(rid, pid, ("5048-4", "Nuclear Ab [Titer] in Serum by Immunofluorescence"), old)
    obs["valueRatio"] = {"numerator": {"value": 1}, "denominator": {"value": rng.choice([160, 320, 640])}}
    return obs


# (weight, prefetch key, maker). Knowledge-coded results stay below every threshold (glucose 80-190
# mg/dL, HbA1c < 6.5 %, insulin < 50 µIU/mL) and above the hypoglycaemia limits, so they never add
# evidence or change a card.
OBSERVATION_MIX: list[tuple[float, str, ObsMaker]] = [
    (14, "observations", _lab(GLUCOSE, [(MG_DL, 85, 189), (MMOL_L, 4.7, 10.4)], (70, 99))),
    (5, "observations", _lab(("41653-7", "Glucose [Mass/volume] in Capillary blood by Glucometer"),
                             [(MG_DL, 90, 185)], None)),
    (3, "observations", _lab(("1558-6", "Fasting glucose [Mass/volume] in Serum or Plasma"),
                             [(MG_DL, 80, 120)], (70, 99))),
    (3, "observations", _lab(("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood"),
                             [(("%", "%"), 5.4, 6.4), (("mmol/mol", "mmol/mol"), 36, 46)], (4.0, 5.6))),
    (1.5, "observations", _lab(("20448-7", "Insulin [Units/volume] in Serum or Plasma"),
                               [(("uIU/mL", "u[IU]/mL"), 3, 45), (("pmol/L", "pmol/L"), 20, 270)],
                               (2.6, 24.9))),
    (1, "observations", _lab(("1986-9", "C peptide [Mass/volume] in Serum or Plasma"),
                             [(("ng/mL", "ng/mL"), 0.8, 3.5), (("nmol/L", "nmol/L"), 0.27, 1.15)],
                             (0.8, 3.85))),
    (0.5, "observations", _old_ana),
    (5, "observations", _vital(("29463-7", "Body weight"), ("kg", "kg"), 68, 74, 1)),
    # Vital signs (some EHRs answer a code-filtered search with more than was asked).
    (6, "observations", _vital(("8867-4", "Heart rate"), ("/min", "/min"), 58, 96)),
    (6, "observations", _blood_pressure),
    (3, "observations", _vital(("8310-5", "Body temperature"), ("Cel", "Cel"), 36.1, 37.6, 1)),
    (3, "observations", _vital(("9279-1", "Respiratory rate"), ("/min", "/min"), 12, 20)),
    (3, "observations", _vital(("2708-6", "Oxygen saturation in Arterial blood"), ("%", "%"), 94, 100)),
    (1, "observations", _vital(("8302-2", "Body height"), ("cm", "cm"), 164, 166, 1)),
    (2, "observations", _vital(("39156-5", "Body mass index (BMI) [Ratio]"), ("kg/m2", "kg/m2"),
                               25, 27.5, 1)),
    # CBC, lipids, chemistry: the "newest laboratory results" key.
    (3, "labResults", _lab(("6690-2", "Leukocytes [#/volume] in Blood by Automated count"),
                           [(("10*3/uL", "10*3/uL"), 3.5, 11)], (4.5, 11))),
    (3, "labResults", _lab(("718-7", "Hemoglobin [Mass/volume] in Blood"),
                           [(("g/dL", "g/dL"), 10.5, 15)], (12, 15.5))),
    (3, "labResults", _lab(("4544-3", "Hematocrit [Volume Fraction] of Blood by Automated count"),
                           [(("%", "%"), 32, 45)], (36, 46))),
    (3, "labResults", _lab(("777-3", "Platelets [#/volume] in Blood by Automated count"),
                           [(("10*3/uL", "10*3/uL"), 140, 400)], (150, 400))),
    (2, "labResults", _lab(("789-8", "Erythrocytes [#/volume] in Blood by Automated count"),
                           [(("10*6/uL", "10*6/uL"), 3.6, 5.2)], (4.0, 5.2))),
    (2, "labResults", _lab(("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma"),
                           [(MG_DL, 150, 260)], (0, 200))),
    (2, "labResults", _lab(("2571-8", "Triglyceride [Mass/volume] in Serum or Plasma"),
                           [(MG_DL, 80, 320)], (0, 150))),
    (2, "labResults", _lab(("2085-9", "Cholesterol in HDL [Mass/volume] in Serum or Plasma"),
                           [(MG_DL, 35, 75)], (40, 200))),
    (2, "labResults", _lab(("13457-7", "Cholesterol in LDL [Mass/volume] in Serum or Plasma by calculation"),
                           [(MG_DL, 70, 180)], (0, 100))),
    (3, "labResults", _lab(("2160-0", "Creatinine [Mass/volume] in Serum or Plasma"),
                           [(MG_DL, 0.6, 1.2)], (0.5, 1.1))),
    (3, "labResults", _lab(("2951-2", "Sodium [Moles/volume] in Serum or Plasma"),
                           [(MMOL_L, 134, 145)], (136, 145))),
    (3, "labResults", _lab(("2823-3", "Potassium [Moles/volume] in Serum or Plasma"),
                           [(MMOL_L, 3.4, 5.1)], (3.5, 5.1))),
    (2, "labResults", _lab(("3094-0", "Urea nitrogen [Mass/volume] in Serum or Plasma"),
                           [(MG_DL, 8, 24)], (7, 20))),
    (2, "labResults", _lab(("1742-6",
                            "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma"),
                           [(("U/L", "U/L"), 10, 60)], (7, 56))),
    (2, "labResults", _lab(("1920-8",
                            "Aspartate aminotransferase [Enzymatic activity/volume] in Serum or Plasma"),
                           [(("U/L", "U/L"), 10, 50)], (10, 40))),
    (1, "labResults", _lab(("3016-3", "Thyrotropin [Units/volume] in Serum or Plasma"),
                           [(("mIU/L", "m[IU]/L"), 0.5, 4.5)], (0.4, 4.0))),
]  # fmt: skip

# (name, RxNorm, ATC, dose, route, per day, statuses allowed): non-insulin, non-systemic-steroid
# medicines, plus topical/inhaled steroids and past courses of prednisone and glargine (past only).
MEDICATIONS: list[tuple[str, str, str, tuple[float, str, str], dict[str, Any], int, tuple[str, ...]]] = [
    ("Metformin 500 mg oral tablet", "861007", "A10BA02", (500, "mg", "mg"), ROUTE_ORAL, 2, ()),
    ("Lisinopril 10 mg oral tablet", "314076", "C09AA03", (10, "mg", "mg"), ROUTE_ORAL, 1, ()),
    ("Amlodipine 5 mg oral tablet", "197361", "C08CA01", (5, "mg", "mg"), ROUTE_ORAL, 1, ()),
    ("Atorvastatin 20 mg oral tablet", "617310", "C10AA05", (20, "mg", "mg"), ROUTE_ORAL, 1, ()),
    ("Levothyroxine 75 mcg oral tablet", "966222", "H03AA01", (75, "ug", "ug"), ROUTE_ORAL, 1, ()),
    ("Omeprazole 20 mg delayed-release capsule", "402014", "A02BC01", (20, "mg", "mg"), ROUTE_ORAL, 1, ()),
    ("Hydroxychloroquine 200 mg oral tablet", "979092", "P01BA02", (200, "mg", "mg"), ROUTE_ORAL, 2, ()),
    ("Sertraline 50 mg oral tablet", "312940", "N06AB06", (50, "mg", "mg"), ROUTE_ORAL, 1, ()),
    ("Cholecalciferol 1000 unit oral tablet", "316672", "A11CC05", (1, "{tbl}", "{tbl}"), ROUTE_ORAL, 1, ()),
    ("Aspirin 81 mg chewable tablet", "243670", "B01AC06", (81, "mg", "mg"), ROUTE_ORAL, 1, ()),
    ("Furosemide 20 mg oral tablet", "310429", "C03CA01", (20, "mg", "mg"), ROUTE_ORAL, 1, ()),
    ("Ibuprofen 400 mg oral tablet", "197805", "M01AE01", (400, "mg", "mg"), ROUTE_ORAL, 3,
     ("completed", "stopped")),
    ("Amoxicillin 500 mg oral capsule", "308191", "J01CA04", (500, "mg", "mg"), ROUTE_ORAL, 3,
     ("completed",)),
    ("Hydrocortisone 1 % topical cream", "106258", "D07AA02", (1, "{appl}", "{appl}"), ROUTE_TOPICAL, 2, ()),
    ("Budesonide 200 mcg/dose inhaler", "1797841", "R03BA02", (2, "{puff}", "{puff}"), ROUTE_INHALED, 2, ()),
    ("Prednisone 10 mg oral tablet (flare course)", "312617", "H02AB07", (10, "mg", "mg"), ROUTE_ORAL, 1,
     ("completed", "stopped")),
    ("Insulin glargine 100 units/mL pen", "261551", "A10AE04", (12, "U", "[iU]"), ROUTE_SC, 1,
     ("completed", "stopped")),
]  # fmt: skip
STATEMENT_STATUSES = (["active", "completed", "stopped", "intended", "entered-in-error"], [45, 30, 15, 5, 5])
REQUEST_STATUSES = (["active", "completed", "stopped", "cancelled", "draft"], [45, 30, 15, 5, 5])

# Unrelated conditions (no value set matches them): (ICD-10-CM, SNOMED CT).
CONDITIONS: list[tuple[tuple[str, str], tuple[str, str]]] = [
    (("I10", "Essential (primary) hypertension"), ("59621000", "Essential hypertension")),
    (("K21.9", "Gastro-esophageal reflux disease without esophagitis"),
     ("235595009", "Gastroesophageal reflux disease")),
    (("M17.9", "Osteoarthritis of knee, unspecified"), ("239873007", "Osteoarthritis of knee")),
    (("J45.909", "Unspecified asthma, uncomplicated"), ("195967001", "Asthma")),
    (("F32.9", "Major depressive disorder, single episode, unspecified"),
     ("35489007", "Depressive disorder")),
    (("G47.33", "Obstructive sleep apnea (adult) (pediatric)"),
     ("78275009", "Obstructive sleep apnea syndrome")),
    (("E03.9", "Hypothyroidism, unspecified"), ("40930008", "Hypothyroidism")),
    (("J06.9", "Acute upper respiratory infection, unspecified"),
     ("54150009", "Upper respiratory infection")),
    (("N39.0", "Urinary tract infection, site not specified"),
     ("68566005", "Urinary tract infectious disease")),
    (("M54.50", "Low back pain, unspecified"), ("279039007", "Low back pain")),
    (("G43.909", "Migraine, unspecified, not intractable"), ("37796009", "Migraine")),
    (("E55.9", "Vitamin D deficiency, unspecified"), ("34713006", "Vitamin D deficiency")),
    (("D50.9", "Iron deficiency anemia, unspecified"), ("87522002", "Iron deficiency anemia")),
    (("J30.9", "Allergic rhinitis, unspecified"), ("61582004", "Allergic rhinitis")),
    (("M81.0", "Age-related osteoporosis without current pathological fracture"),
     ("64859006", "Osteoporosis")),
    (("F41.9", "Anxiety disorder, unspecified"), ("197480006", "Anxiety disorder")),
    (("M10.9", "Gout, unspecified"), ("90560007", "Gout")),
    (("I48.91", "Unspecified atrial fibrillation"), ("49436004", "Atrial fibrillation")),
    (("L40.0", "Psoriasis vulgaris"), ("9014002", "Psoriasis")),
    (("K58.9", "Irritable bowel syndrome without diarrhea"), ("10743008", "Irritable bowel syndrome")),
]  # fmt: skip
CLINICAL_STATUSES = (["active", "resolved", "inactive", "remission", "recurrence"], [40, 35, 15, 5, 5])
VERIFICATION_STATUSES = (
    ["confirmed", "provisional", "unconfirmed", "refuted", "entered-in-error"],
    [85, 6, 4, 3, 2],
)


def _when(rng: random.Random, now: datetime) -> datetime:
    """A filler timestamp, uniform over the history, on a day's clinic hours (never in the future)."""
    days = rng.uniform(1, HISTORY_DAYS)
    moment = now - timedelta(days=days)
    return moment.replace(
        hour=rng.randint(7, 18), minute=rng.choice((0, 15, 30, 45)), second=0, microsecond=0
    )


def _filler_medication(rng: random.Random, rtype: str, rid: str, pid: str, now: datetime) -> Resource:
    name, rxnorm, atc, dose, route, per_day, allowed = rng.choice(MEDICATIONS)
    statuses, weights = STATEMENT_STATUSES if rtype == "MedicationStatement" else REQUEST_STATUSES
    status = rng.choice(allowed) if allowed else rng.choices(statuses, weights)[0]
    concept = fhir.concept(
        fhir.coding(RXNORM, rxnorm, name), fhir.coding(ATC, atc, name.split()[0].lower()), text=name
    )
    start = _when(rng, now)
    end = start + timedelta(days=rng.randint(7, 400)) if status in ("completed", "stopped") else None
    if end is not None and end > now:
        end = now - timedelta(days=1)
    unit_text = dose[1].strip("{}")
    text = f"{dose[0]:g} {unit_text} {route['text']} {per_day} time(s) daily"
    return medication(rtype, rid, pid, concept, status, start, _dosage(text, route, per_day, dose), end)


def _filler_condition(rng: random.Random, rid: str, pid: str, now: datetime) -> Resource:
    icd, snomed = rng.choice(CONDITIONS)
    clinical = rng.choices(*CLINICAL_STATUSES)[0]
    verification = rng.choices(*VERIFICATION_STATUSES)[0]
    category = rng.choice(("problem-list-item", "encounter-diagnosis"))
    return condition(rid, pid, icd, snomed, _when(rng, now), clinical, verification, category)


def _insert_spread(rng: random.Random, items: list[Resource], extra: list[Resource]) -> list[Resource]:
    """``items`` with each of ``extra`` inserted at a seeded random position."""
    out = list(items)
    for resource in extra:
        out.insert(rng.randint(0, len(out)), resource)
    return out


# ---------------------------------------------------------------------------------------------- request


def split_counts(n: int) -> dict[str, int]:
    """Filler counts per resource family so the total (Patient and triggers included) is exactly ``n``."""
    triggers = 9
    if n < 1 + triggers:
        raise ValueError(f"N must be at least {1 + triggers} (the Patient and the triggering resources)")
    filler = n - 1 - triggers
    meds = round(filler * 0.2)
    conds = round(filler * 0.2)
    return {"observations": filler - meds - conds, "medications": meds, "conditions": conds}


def generate_prefetch(
    n: int, *, seed: int = DEFAULT_SEED, now: datetime = NOW, pid: str = PATIENT_ID
) -> dict[str, Any]:
    """The prefetch of a patient with exactly ``n`` resources (Patient included), one Bundle per key."""
    rng = random.Random(f"{seed}:{n}")
    counts = split_counts(n)
    keys: dict[str, list[Resource]] = {k: [] for k in PREFETCH_KEYS if k != "patient"}
    weights = [w for w, _, _ in OBSERVATION_MIX]
    for i in range(counts["observations"]):
        _, key, make = rng.choices(OBSERVATION_MIX, weights)[0]
        keys[key].append(make(rng, f"{pid}-obs-{i:05d}", pid, _when(rng, now)))
    for i in range(counts["medications"]):
        rtype = rng.choice(("MedicationStatement", "MedicationRequest"))
        key = "medicationStatements" if rtype == "MedicationStatement" else "medicationRequests"
        keys[key].append(_filler_medication(rng, rtype, f"{pid}-med-{i:05d}", pid, now))
    for i in range(counts["conditions"]):
        keys["conditions"].append(_filler_condition(rng, f"{pid}-cond-{i:05d}", pid, now))
    for key, resources in trigger_resources(pid, now).items():
        keys[key] = _insert_spread(rng, keys[key], resources)
    # Searches come back newest first (the templates ask for _sort=-date).
    for key in ("observations", "labResults"):
        keys[key].sort(key=lambda r: r.get("effectiveDateTime", ""), reverse=True)
    prefetch: dict[str, Any] = {"patient": patient(pid)}
    for key, resources in keys.items():
        prefetch[key] = fhir.searchset(resources, base=FHIR_BASE)
    return prefetch


def generate(
    n: int, *, seed: int = DEFAULT_SEED, now: datetime = NOW, pid: str = PATIENT_ID
) -> dict[str, Any]:
    """A complete patient-view request whose prefetch holds exactly ``n`` resources.

    ``now`` anchors every date: use :data:`NOW` (and pass it to the evaluation) for reproducible
    in-process figures, and the wall clock for a running service (which evaluates at its own now)."""
    rng = random.Random(f"{seed}:{n}:hook")
    return {
        "hook": "patient-view",
        "hookInstance": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "context": {"userId": "Practitioner/bench-dr", "patientId": pid},
        "prefetch": generate_prefetch(n, seed=seed, now=now, pid=pid),
    }


def resources_of(request: dict[str, Any]) -> list[Resource]:
    """Every resource in a request's prefetch (the Patient and all Bundle entries)."""
    out: list[Resource] = []
    for value in request.get("prefetch", {}).values():
        if isinstance(value, dict) and value.get("resourceType") == "Bundle":
            out += [e["resource"] for e in value.get("entry", [])]
        elif isinstance(value, dict):
            out.append(value)
    return out


def count_by_type(request: dict[str, Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for resource in resources_of(request):
        counts[resource["resourceType"]] = counts.get(resource["resourceType"], 0) + 1
    return dict(sorted(counts.items()))


def transaction_bundle(request: dict[str, Any]) -> dict[str, Any]:
    """The request's resources as a FHIR transaction with ``PUT Type/id`` entries (ids kept)."""
    return fhir.transaction(resources_of(request))


def encode(request: dict[str, Any]) -> bytes:
    """The request body as sent over HTTP (compact JSON, UTF-8)."""
    return json.dumps(request, separators=(",", ":"), ensure_ascii=False).encode()


def digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:16]


def main(argv: list[str] | None = None) -> None:
    """Print the request with N resources: ``python -m bench.generate N [seed]``."""
    args = sys.argv[1:] if argv is None else argv
    n = int(args[0]) if args else 200
    seed = int(args[1]) if len(args) > 1 else DEFAULT_SEED
    sys.stdout.write(json.dumps(generate(n, seed=seed), indent=2) + "\n")


if __name__ == "__main__":
    main()
