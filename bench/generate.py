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
import tomllib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cds_hooks.clinical.knowledge import default_knowledge
from cds_hooks.fhir import builders as fhir
from cds_hooks.fhir.builders import ATC, ICD10, LOINC, RXNORM, SNOMED
from cds_hooks.hooks.registry import ORDER_SELECT_ID, ORDER_SIGN_ID, prefetch_templates

Resource = dict[str, Any]

# A fixed clock for the in-process figures (the HTTP service uses the wall clock: see ``generate``).
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SIZES = (10, 200, 2000, 5000)
DEFAULT_SEED = 6
PATIENT_ID = "bench-p1"
SERVICE_ID = "immune-insulin-resistance"
EXPECTED_RULES = ("insulin-antibody-workup", "type-b-insulin-resistance", "glucocorticoid-hyperglycemia")
# What the service asks for, in its order (serviceRequests comes back empty: no pending tests).
PREFETCH_KEYS = tuple(prefetch_templates(default_knowledge()))
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
        code=fhir.lab_code(loinc, display, text=display),
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


def trigger_resources(
    pid: str, now: datetime, jitter: random.Random | None = None
) -> dict[str, list[Resource]]:
    """The nine resources that fire the three expected rules, by prefetch key. ``jitter`` (the pool's
    patients) moves each trigger lab's value by up to 2 %, within the range that fires the same rules."""
    day = timedelta(days=1)

    def value(v: float) -> float:
        return v if jitter is None else round(v * jitter.uniform(0.98, 1.02), 1)

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
            observation(
                f"{pid}-trig-{name}", pid, code, now - ago * day, value=value(v), unit=unit, ref_range=ref
            )
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


FILLER = tomllib.loads(Path(__file__).with_name("filler.toml").read_text(encoding="utf-8"))
MAKERS: dict[str, ObsMaker] = {"blood_pressure": _blood_pressure, "old_ana": _old_ana}


def _maker(row: dict[str, Any]) -> ObsMaker:
    """The maker a row of filler.toml's ``observation`` describes."""
    if "lab" in row:
        units = [((printed, ucum), low, high) for printed, ucum, low, high in row["units"]]
        return _lab(tuple(row["lab"]), units, tuple(row["range"]) if "range" in row else None)
    if "vital" in row:
        return _vital(tuple(row["vital"]), tuple(row["unit"]), row["low"], row["high"], row.get("digits", 0))
    return MAKERS[row["make"]]


# (weight, prefetch key, maker, fewest days ago), from filler.toml.
OBSERVATION_MIX: list[tuple[float, str, ObsMaker, float]] = [
    (row["weight"], row["key"], _maker(row), row.get("older_than_days", 1)) for row in FILLER["observation"]
]

ROUTES = {"oral": ROUTE_ORAL, "subcutaneous": ROUTE_SC, "topical": ROUTE_TOPICAL, "inhaled": ROUTE_INHALED}
# (name, RxNorm, ATC, dose, route, per day, statuses allowed), from filler.toml.
MEDICATIONS: list[tuple[str, str, str, tuple[float, str, str], dict[str, Any], int, tuple[str, ...]]] = [
    (
        m["name"],
        m["rxnorm"],
        m["atc"],
        tuple(m["dose"]),
        ROUTES[m["route"]],
        m["per_day"],
        tuple(m["statuses"]),
    )
    for m in FILLER["medication"]
]
STATEMENT_STATUSES = (["active", "completed", "stopped", "intended", "entered-in-error"], [45, 30, 15, 5, 5])
REQUEST_STATUSES = (["active", "completed", "stopped", "cancelled", "draft"], [45, 30, 15, 5, 5])

# Unrelated conditions: (ICD-10-CM, SNOMED CT), from filler.toml.
CONDITIONS: list[tuple[tuple[str, str], tuple[str, str]]] = [
    (tuple(c["icd10"]), tuple(c["snomed"])) for c in FILLER["condition"]
]
CLINICAL_STATUSES = (["active", "resolved", "inactive", "remission", "recurrence"], [40, 35, 15, 5, 5])
VERIFICATION_STATUSES = (
    ["confirmed", "provisional", "unconfirmed", "refuted", "entered-in-error"],
    [85, 6, 4, 3, 2],
)


def _when(rng: random.Random, now: datetime, older_than_days: float = 1) -> datetime:
    """A filler timestamp, uniform over the history, on a day's clinic hours (never in the future)."""
    days = rng.uniform(older_than_days, HISTORY_DAYS)
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
    n: int, *, seed: int = DEFAULT_SEED, now: datetime = NOW, pid: str = PATIENT_ID, jitter: bool = False
) -> dict[str, Any]:
    """The prefetch of a patient with exactly ``n`` resources (Patient included), one Bundle per key;
    ``jitter``: the trigger labs' values vary too (see :func:`trigger_resources`)."""
    rng = random.Random(f"{seed}:{n}")
    counts = split_counts(n)
    keys: dict[str, list[Resource]] = {k: [] for k in PREFETCH_KEYS if k != "patient"}
    weights = [w for w, _, _, _ in OBSERVATION_MIX]
    for i in range(counts["observations"]):
        _, key, make, older_than = rng.choices(OBSERVATION_MIX, weights)[0]
        keys[key].append(make(rng, f"{pid}-obs-{i:05d}", pid, _when(rng, now, older_than)))
    for i in range(counts["medications"]):
        rtype = rng.choice(("MedicationStatement", "MedicationRequest"))
        key = "medicationStatements" if rtype == "MedicationStatement" else "medicationRequests"
        keys[key].append(_filler_medication(rng, rtype, f"{pid}-med-{i:05d}", pid, now))
    for i in range(counts["conditions"]):
        keys["conditions"].append(_filler_condition(rng, f"{pid}-cond-{i:05d}", pid, now))
    for key, resources in trigger_resources(pid, now, rng if jitter else None).items():
        keys[key] = _insert_spread(rng, keys[key], resources)
    # Searches come back newest first (the templates ask for _sort=-date).
    for key in ("observations", "labResults"):
        keys[key].sort(key=lambda r: r.get("effectiveDateTime", ""), reverse=True)
    prefetch: dict[str, Any] = {"patient": patient(pid)}
    for key, resources in keys.items():
        prefetch[key] = fhir.searchset(resources, base=FHIR_BASE)
    return prefetch


def generate(
    n: int, *, seed: int = DEFAULT_SEED, now: datetime = NOW, pid: str = PATIENT_ID, jitter: bool = False
) -> dict[str, Any]:
    """A complete patient-view request whose prefetch holds exactly ``n`` resources.

    ``now`` anchors every date: use :data:`NOW` (and pass it to the evaluation) for reproducible
    in-process figures, and the wall clock for a running service (which evaluates at its own now)."""
    rng = random.Random(f"{seed}:{n}:hook")
    return {
        "hook": "patient-view",
        "hookInstance": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "context": {"userId": "Practitioner/bench-dr", "patientId": pid},
        "prefetch": generate_prefetch(n, seed=seed, now=now, pid=pid, jitter=jitter),
    }


# ---------------------------------------------------------------------------------------------- pool

POOL_SIZE = 1000  # distinct patients of the "new patient" load: every request a different record


def pool_patient(i: int, n: int = 200, *, seed: int = DEFAULT_SEED, now: datetime = NOW) -> dict[str, Any]:
    """Patient ``i`` of the pool: its own id, resource ids, filler (codes, values, dates, statuses) and
    trigger values; the same code systems and the same three expected cards as :func:`generate`."""
    return generate(n, seed=seed * 1_000_003 + i + 1, now=now, pid=f"bench-pool-{i:05d}", jitter=True)


def pool(
    size: int = POOL_SIZE, n: int = 200, *, seed: int = DEFAULT_SEED, now: datetime = NOW
) -> list[dict[str, Any]]:
    """``size`` distinct patients of ``n`` resources (about 22 ms each to generate)."""
    return [pool_patient(i, n, seed=seed, now=now) for i in range(size)]


# ---------------------------------------------------------------------------------------------- chart session

SESSION_DOSES_MG = (10, 20, 30)  # the order form's dose, changed twice before signing


def draft_prednisone(pid: str, dose_mg: float) -> Resource:
    """A draft prednisone prescription, as the order form holds it while the clinician edits the dose."""
    drug = fhir.concept(
        fhir.coding(RXNORM, "312615", "predniSONE 20 MG Oral Tablet"),
        fhir.coding(ATC, "H02AB07", "prednisone"),
        text="Prednisone oral tablet",
    )
    return fhir.medication_request(
        pid,
        f"{pid}-draft-1",
        drug=drug,
        status="draft",
        intent="order",
        dosage=[_dosage(f"{dose_mg:g} mg by mouth once daily", ROUTE_ORAL, 1, (dose_mg, "mg", "mg"))],
    )


def chart_session(request: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """One chart session over ``request``'s record: (service id, request) for a patient-view, three
    order-selects (the dose changed on the form each time) and an order-sign, all with the same prefetch."""
    pid = request["context"]["patientId"]
    rng = random.Random(f"session:{request['hookInstance']}")

    def order(hook: str, dose: float) -> dict[str, Any]:
        draft = draft_prednisone(pid, dose)
        context: dict[str, Any] = {**request["context"], "draftOrders": fhir.collection([draft])}
        if hook == "order-select":
            context["selections"] = [f"MedicationRequest/{draft['id']}"]
        hook_instance = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        return {
            "hook": hook,
            "hookInstance": hook_instance,
            "context": context,
            "prefetch": request["prefetch"],
        }

    return [
        (SERVICE_ID, request),
        *((ORDER_SELECT_ID, order("order-select", dose)) for dose in SESSION_DOSES_MG),
        (ORDER_SIGN_ID, order("order-sign", SESSION_DOSES_MG[-1])),
    ]


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
