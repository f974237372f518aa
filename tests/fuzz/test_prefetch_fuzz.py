"""Malformed FHIR inside prefetch (hypothesis): wrong types, missing fields, absurd values, huge strings,
deep nesting, unknown resource types, bad dates and units. The service must answer 200 or a clean 4xx."""

from __future__ import annotations

import copy
import json
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds_hooks.clinical.knowledge import default_knowledge
from cds_hooks.hooks.registry import prefetch_templates
from tests.builders import ATC, LOINC, SERVICE_URL, UCUM
from tests.fuzz.checks import check_answer
from tests.fuzz.conftest import EXAMPLES

SEEDS = [
    {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "20448-7"}], "text": "Insulin"},
        "effectiveDateTime": "2026-11-01T08:00:00Z",
        "subject": {"reference": "Patient/f"},
        "valueQuantity": {"value": 120, "unit": "uIU/mL", "system": UCUM, "code": "u[IU]/mL"},
        "referenceRange": [{"high": {"value": 25}}],
        "interpretation": [{"coding": [{"code": "H"}]}],
    },
    {
        "resourceType": "Observation",
        "id": "o2",
        "status": "final",
        "code": {"text": "Insulin receptor antibody"},
        "issued": "2026-10-01T08:00:00Z",
        "valueString": "Positive",
        "subject": {"reference": "Patient/f"},
    },
    {
        "resourceType": "Observation",
        "id": "o3",
        "status": "amended",
        "code": {"coding": [{"system": LOINC, "code": "5048-4"}]},
        "effectivePeriod": {"start": "2026-09-01"},
        "valueRatio": {"numerator": {"value": 1}, "denominator": {"value": 160}},
        "subject": {"reference": "Patient/f"},
    },
    {
        "resourceType": "MedicationStatement",
        "id": "m1",
        "status": "active",
        "medicationCodeableConcept": {"coding": [{"system": ATC, "code": "A10AB03"}], "text": "Pork insulin"},
        "dosage": [
            {
                "timing": {"repeat": {"frequency": 3, "period": 1, "periodUnit": "d"}},
                "doseAndRate": [{"doseQuantity": {"value": 80, "unit": "U"}}],
            }
        ],
        "subject": {"reference": "Patient/f"},
    },
    {
        "resourceType": "MedicationRequest",
        "id": "m2",
        "status": "active",
        "intent": "order",
        "medicationReference": {"reference": "#med"},
        "subject": {"reference": "Patient/f"},
        "contained": [{"resourceType": "Medication", "id": "med", "code": {"text": "Prednisone"}}],
    },
    {
        "resourceType": "Condition",
        "id": "c1",
        "clinicalStatus": {"coding": [{"code": "active"}]},
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "M32.14"}]},
        "subject": {"reference": "Patient/f"},
    },
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False),
    st.text(max_size=40),
    st.sampled_from(
        [
            "",
            "9999-99-99",
            "2026-13-45T25:61:00Z",
            "1:0",
            "1:-5",
            "mmol/L",
            "µIU/mL",
            "NaN",
            "Infinity",
            "x" * 20_000,
            "Patient/../../etc",
            "#missing",
            "\u0000\ufffd",
        ]
    ),
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


def _paths(value, prefix=()):
    if isinstance(value, dict):
        for k, v in value.items():
            yield (*prefix, k)
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield (*prefix, i)
            yield from _paths(v, (*prefix, i))


@st.composite
def mutated_resource(draw):
    resource = copy.deepcopy(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        paths = list(_paths(resource))
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = resource
        for step in path[:-1]:
            parent = parent[step]
        if draw(st.booleans()) and isinstance(parent, dict):
            parent.pop(path[-1], None)
        else:
            parent[path[-1]] = draw(json_values)
    if draw(st.integers(0, 9)) == 0:
        resource["resourceType"] = draw(st.sampled_from(["Nonsense", "Bundle", "OperationOutcome", "", 7]))
    return resource


def _deep(depth: int):
    value: object = {"resourceType": "Observation"}
    for _ in range(depth):
        value = {"code": value}
    return value


bundles = st.builds(
    lambda rs: {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in rs]},
    st.lists(mutated_resource(), max_size=6),
)
# Anything at all in a prefetch slot (mostly refused with 400: the value must be a resource or null).
any_prefetch_value = st.one_of(
    bundles,
    st.none(),
    mutated_resource(),
    json_values,
    st.builds(_deep, st.integers(min_value=50, max_value=800)),
)

KEYS = list(prefetch_templates(default_knowledge()))  # every key the service asks for


def _post(app, values):
    body = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/x", "patientId": "f"},
        "prefetch": values,
    }
    response = app.test_client().post(SERVICE_URL, data=json.dumps(body), content_type="application/json")
    check_answer(response.status_code, response.get_data(), response.content_type or "")


@given(values=st.fixed_dictionaries({k: st.one_of(bundles, st.none()) for k in KEYS}))
@settings(max_examples=EXAMPLES * 2, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_damaged_resources_reach_the_rules_without_breaking_them(fuzz_app, values):
    """Well-formed Bundles of damaged resources: these get past request validation into facts and rules."""
    _post(fuzz_app, values)


@given(values=st.fixed_dictionaries({k: any_prefetch_value for k in KEYS}))
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_arbitrary_prefetch_values_are_refused_cleanly(fuzz_app, values):
    _post(fuzz_app, values)


@given(drafts=st.lists(mutated_resource(), max_size=5), selections=st.lists(st.text(max_size=30), max_size=3))
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_malformed_draft_orders_never_break_the_order_services(fuzz_app, drafts, selections):
    body = {
        "hook": "order-select",
        "hookInstance": str(uuid.uuid4()),
        "context": {
            "userId": "Practitioner/x",
            "patientId": "f",
            "selections": selections,
            "draftOrders": {"resourceType": "Bundle", "entry": [{"resource": d} for d in drafts]},
        },
        "prefetch": {k: None for k in KEYS},
    }
    response = fuzz_app.test_client().post(
        "/cds-services/insulin-order-select", data=json.dumps(body), content_type="application/json"
    )
    check_answer(response.status_code, response.get_data(), response.content_type or "")


def test_the_process_is_still_up_after_fuzzing(fuzz_app):
    response = fuzz_app.test_client().get("/healthz")
    assert response.status_code == 200
