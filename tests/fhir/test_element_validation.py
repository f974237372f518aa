"""The element-memoised validation (``cds_hooks.fhir.element_validation``) is a fast path only: it must
call a resource valid exactly when the whole-model validation does, on damaged resources as on good ones."""

from __future__ import annotations

from fhir.resources.R4B import get_fhir_model_class
from hypothesis import HealthCheck, given, settings

from cds_hooks.fhir.element_validation import ElementMemo, complex_elements
from cds_hooks.fhir.resource_index import validate_model, validate_read
from tests.builders import porcine_statement
from tests.fuzz.conftest import EXAMPLES
from tests.fuzz.test_prefetch_fuzz import SEEDS, mutated_resource


def _agrees(memo: ElementMemo, resource: dict) -> None:
    try:
        model = get_fhir_model_class(resource["resourceType"])
    except (KeyError, ValueError, TypeError):
        return
    whole = validate_model(model, resource)
    fast = memo.is_valid(model, resource)
    if fast:  # never more lenient than the whole model
        assert whole.problem is None and not whole.set_aside, whole
    else:  # and never falls back when the whole model finds nothing (or it would save nothing)
        assert whole.problem is not None or whole.set_aside, repr(resource)


@given(resource=mutated_resource())
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_the_fast_path_agrees_with_the_whole_model_on_damaged_resources(resource):
    memo = ElementMemo()
    _agrees(memo, resource)
    _agrees(memo, resource)  # the second time from the memo


def test_the_fast_path_agrees_on_the_seed_resources_and_reuses_their_elements():
    memo = ElementMemo()
    for seed in SEEDS:
        _agrees(memo, seed)
    assert memo.is_valid(get_fhir_model_class("Observation"), SEEDS[0])
    before = len(memo)
    other = dict(SEEDS[0], id="o9", effectiveDateTime="2026-11-02T08:00:00Z")
    assert memo.is_valid(get_fhir_model_class("Observation"), other)
    assert len(memo) == before  # code, subject, value, range, interpretation: all from the memo


def test_an_invalid_element_falls_back_so_the_error_is_reported_as_before():
    bad = porcine_statement("p", "ms-bad")
    bad["dosage"] = [{"timing": "daily"}]  # Timing must be an object
    model = get_fhir_model_class("MedicationStatement")
    assert not ElementMemo().is_valid(model, bad)
    validation, _ = validate_read(bad)
    assert (validation.problem or "").startswith("not valid FHIR R4 (1 error(s), first at dosage")


def test_complex_elements_are_found_with_their_json_names_and_list_shape():
    fields = complex_elements(get_fhir_model_class("Observation"))
    assert fields["code"][0].__name__ == "CodeableConcept" and fields["code"][1] is False
    assert fields["referenceRange"][1] is True and fields["valueQuantity"][0].__name__ == "Quantity"
    assert "contained" not in fields and "status" not in fields
