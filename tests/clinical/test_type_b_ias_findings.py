"""Issue 22 D10, D11, A6: the findings behind type B, insulin autoimmune syndrome and antibodies to human
insulin, at the level of facts (the vignettes 280-306 cover the cards)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cds_hooks.clinical.facts.model import Evidence, LabResult, PatientFacts
from cds_hooks.clinical.findings import insulin_c_peptide_ratio, secretagogue, type_b_support
from cds_hooks.clinical.knowledge import Knowledge, load_knowledge
from cds_hooks.hooks.registry import prefetch_templates

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def k() -> Knowledge:
    return load_knowledge()


def lab(kind: str, value: float, *, positive: bool | None = None, when: datetime = NOW) -> LabResult:
    return LabResult(kind=kind, when=when, value=value, unit=None, positive=positive,
                     evidence=Evidence(f"Observation/{kind}-{value}", f"{kind} {value}"))  # fmt: skip


def facts(*results: LabResult) -> PatientFacts:
    labs: dict[str, list[LabResult]] = {}
    for r in results:
        labs.setdefault(r.kind, []).append(r)
    return PatientFacts(patient_id="p", now=NOW, labs=labs)


@pytest.mark.parametrize(
    ("result", "present"),
    [
        (lab("bmi", 29.9), True), (lab("bmi", 30.0), False),
        (lab("triglycerides", 149), True), (lab("triglycerides", 150), False),
        (lab("shbg", 140, positive=True), True), (lab("shbg", 140, positive=False), False),
        (lab("shbg", 100), True), (lab("shbg", 99), False),
        (lab("adiponectin", 20), True), (lab("adiponectin", 19.9), False),
    ],
)  # fmt: skip
def test_each_type_b_feature_at_its_edge(k: Knowledge, result: LabResult, present: bool) -> None:
    """Issue 22 D10: BMI < 30, triglycerides < 150 mg/dL, SHBG high (laboratory flag first, else >= 100
    nmol/L), adiponectin high (flag first, else >= 20 µg/mL)."""
    assert bool(type_b_support(facts(result), k, None)) is present


def test_dose_feature_is_at_least_3_u_per_kg(k: Knowledge) -> None:
    """Issue 22 D10: 300 U/day at 100 kg = 3.00 U/kg/day counts, 299 does not."""
    weight = lab("body_weight", 100)
    f = PatientFacts(patient_id="p", now=NOW, labs={"body_weight": [weight]}, latest_weight_kg=weight)
    assert type_b_support(f, k, 300.0)
    assert not type_b_support(f, k, 299.0)


def test_insulin_c_peptide_molar_ratio_same_sample(k: Knowledge) -> None:
    """Issue 22 D11: insulin 320 µIU/mL × 6 = 1920 pmol/L ÷ C-peptide 2.4 ng/mL × 331 = 794 pmol/L = 2.4;
    a C-peptide of another sample gives no ratio."""
    ratio = insulin_c_peptide_ratio(facts(lab("insulin", 320), lab("c_peptide", 2.4)), k)
    note = ratio.evidence[-1].text
    assert "molar ratio 2.4" in note and "1920 pmol/L" in note and "794 pmol/L" in note and "above 1" in note
    other = lab("c_peptide", 2.4, when=datetime(2026, 5, 1, tzinfo=UTC))
    assert not insulin_c_peptide_ratio(facts(lab("insulin", 320), other), k)


def test_positive_screen_is_a_secretagogue() -> None:
    """Issue 22 D11: a positive hypoglycaemic agent screen counts like a current sulfonylurea."""
    screen = LabResult(kind="sulfonylurea_screen", when=NOW, value=None, unit=None, positive=True,
                       evidence=Evidence("Observation/s", "screen positive"))  # fmt: skip
    assert secretagogue(facts(screen))
    assert not secretagogue(facts())


def test_new_lab_codes_flow_into_the_prefetch(k: Knowledge) -> None:
    """Issue 22 D10/D11: the new lab kinds' LOINC codes are in the observations prefetch template."""
    template = prefetch_templates(k)["observations"]
    for code in ("2571-8", "13967-5", "47828-9", "10451-3", "29512-1"):
        assert f"http://loinc.org|{code}" in template
